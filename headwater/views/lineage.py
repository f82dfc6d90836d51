"""The lineage graph from data_lineage: datasets hold tables, tables hold columns, and column edges
say how a target column is made from source columns. Upstream and downstream of any node."""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import sqlalchemy as sa

from headwater.store.tables import data_lineage
from headwater.views.frames import frame

EDGES: dict[str, Any] = {
    "pipeline_name": pl.String,
    "source_dataset": pl.String,
    "source_table": pl.String,
    "source_column": pl.String,
    "target_dataset": pl.String,
    "target_table": pl.String,
    "target_column": pl.String,
    "transformation_type": pl.String,
    "transformations": pl.List(pl.String),
}


def table_id(dataset: str, table: str) -> str:
    return f"{dataset}::{table}"


def column_id(dataset: str, table: str, column: str) -> str:
    return f"{dataset}::{table}.{column}"


@dataclass(frozen=True)
class Node:
    id: str
    kind: str
    """dataset | table | column"""
    label: str
    dataset: str
    table: str | None = None
    column: str | None = None


@dataclass
class LineageGraph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=EDGES))
    _up: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    _down: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, node: Node) -> None:
        self.nodes.setdefault(node.id, node)

    def link(self, source: str, target: str) -> None:
        self._down[source].add(target)
        self._up[target].add(source)

    def _walk(self, start: str, links: dict[str, set[str]]) -> list[str]:
        seen, queue, order = {start}, deque([start]), []
        while queue:
            for nxt in sorted(links.get(queue.popleft(), ())):
                if nxt not in seen:
                    seen.add(nxt)
                    order.append(nxt)
                    queue.append(nxt)
        return order

    def members(self, node_id: str) -> list[str]:
        """A dataset or table stands for its columns."""
        node = self.nodes[node_id]
        if node.kind == "column":
            return [node_id]
        return [
            n.id
            for n in self.nodes.values()
            if n.kind == "column"
            and n.dataset == node.dataset
            and (node.kind == "dataset" or n.table == node.table)
        ]

    def _related(self, node_id: str, links: dict[str, set[str]]) -> list[Node]:
        if node_id not in self.nodes:
            return []
        starts = self.members(node_id)
        found: dict[str, None] = {}
        for start in starts:
            for n in self._walk(start, links):
                if n not in starts:
                    found[n] = None
        return [self.nodes[n] for n in found]

    def links_among(self, ids: set[str]) -> list[tuple[str, str]]:
        """The column edges (source, target) with both ends in `ids`."""
        return [(s, t) for s in sorted(ids) for t in sorted(self._down.get(s, ())) if t in ids]

    def upstream(self, node_id: str) -> list[Node]:
        """Every column this node's columns are made from, nearest first."""
        return self._related(node_id, self._up)

    def downstream(self, node_id: str) -> list[Node]:
        """Every column made from this node's columns, nearest first."""
        return self._related(node_id, self._down)

    def tables(self, columns: list[Node]) -> list[str]:
        """The tables (ids) the columns belong to, in order."""
        return list(dict.fromkeys(table_id(c.dataset, c.table or "") for c in columns))

    def table_edges(self) -> pl.DataFrame:
        """source table id, target table id, pipeline, columns (how many column edges)."""
        return (
            self.edges.group_by(
                "source_dataset", "source_table", "target_dataset", "target_table", "pipeline_name"
            )
            .agg(pl.len().alias("columns"))
            .with_columns(
                (pl.col("source_dataset") + "::" + pl.col("source_table")).alias("source"),
                (pl.col("target_dataset") + "::" + pl.col("target_table")).alias("target"),
            )
            .sort("source", "target")
        )

    def depth(self) -> dict[str, int]:
        """Each table's column in a left-to-right layout: 0 for tables nothing feeds, else one more
        than the deepest table that feeds it."""
        edges = self.table_edges()
        feeds: dict[str, set[str]] = defaultdict(set)
        for s, t in zip(edges["source"], edges["target"], strict=True):
            if s != t:
                feeds[t].add(s)
        tables = [n.id for n in self.nodes.values() if n.kind == "table"]
        memo: dict[str, int] = {}

        def level(t: str, path: frozenset[str]) -> int:
            if t in memo:
                return memo[t]
            parents = [p for p in feeds.get(t, ()) if p not in path]  # a cycle does not recurse forever
            memo[t] = 1 + max((level(p, path | {t}) for p in parents), default=-1)
            return memo[t]

        return {t: level(t, frozenset()) for t in tables}


def layout(graph: LineageGraph) -> dict[str, tuple[float, float]]:
    """x, y of every table: x its depth, y its place in its lane, ordered so that edges cross little
    (each lane sorted by the mean place of the tables it connects to, sweeping right then left)."""
    depth = graph.depth()
    lanes: dict[int, list[str]] = defaultdict(list)
    for t in sorted(depth, key=lambda t: graph.nodes[t].label):
        lanes[depth[t]].append(t)
    edges = graph.table_edges()
    links: dict[str, set[str]] = defaultdict(set)
    for s, t in zip(edges["source"], edges["target"], strict=True):
        links[s].add(t)
        links[t].add(s)
    place = {t: float(i) for ts in lanes.values() for i, t in enumerate(ts)}
    order = sorted(lanes)
    for sweep in (order[1:], order[-2::-1], order[1:]):
        for x in sweep:
            centre = {}
            for t in lanes[x]:
                near = [place[o] for o in links[t] if depth.get(o) != x]
                centre[t] = sum(near) / len(near) if near else place[t]
            lanes[x].sort(key=lambda t: (centre[t], graph.nodes[t].label))
            place.update({t: float(i) for i, t in enumerate(lanes[x])})
    return {t: (float(x), -i + (len(ts) - 1) / 2) for x, ts in lanes.items() for i, t in enumerate(ts)}


def column_layout(graph: LineageGraph, columns: list[str]) -> dict[str, tuple[float, float]]:
    """x, y of the given column nodes: x their table's depth; in each lane, tables in `layout`'s
    order, each table's columns stacked by name, with a gap between tables."""
    tables = layout(graph)
    by_table: dict[str, list[str]] = defaultdict(list)
    for col in sorted(columns, key=lambda c: graph.nodes[c].label):
        node = graph.nodes[col]
        by_table[table_id(node.dataset, node.table or "")].append(col)
    lanes: dict[float, list[str]] = defaultdict(list)
    for t in sorted(by_table, key=lambda t: -tables[t][1]):
        lanes[tables[t][0]].append(t)
    out: dict[str, tuple[float, float]] = {}
    for x, lane in lanes.items():
        y = 0.0
        for t in lane:
            for col in by_table[t]:
                out[col] = (x, y)
                y -= 1
            y -= 0.8
    return out


def lineage_graph(engine: sa.Engine, pipeline: str | None = None) -> LineageGraph:
    lin = data_lineage
    query = sa.select(*(lin.c[k] for k in EDGES))
    if pipeline:
        query = query.where(lin.c.pipeline_name == pipeline)
    edges = frame(engine, query, EDGES)
    graph = LineageGraph(edges=edges)
    for row in edges.iter_rows(named=True):
        for side in ("source", "target"):
            ds, tb, col = row[f"{side}_dataset"], row[f"{side}_table"], row[f"{side}_column"]
            graph.add(Node(ds, "dataset", ds, ds))
            graph.add(Node(table_id(ds, tb), "table", tb, ds, tb))
            graph.add(Node(column_id(ds, tb, col), "column", f"{tb}.{col}", ds, tb, col))
        graph.link(
            column_id(row["source_dataset"], row["source_table"], row["source_column"]),
            column_id(row["target_dataset"], row["target_table"], row["target_column"]),
        )
    return graph
