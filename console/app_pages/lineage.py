"""Lineage: the graph of datasets, tables and columns that data_lineage records. Choose a table or
column (from the list, or by clicking it in the graph) to see what it is made from and what is
made from it."""

from __future__ import annotations

from collections import defaultdict

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from console import components as c
from console import data
from headwater.views.lineage import column_layout, layout, table_id

st.title("Lineage")
names = data.pipeline_table()["name"].to_list()
picked = st.selectbox("Pipeline", ["(all)", *names], key="lineage_pipeline")
graph = data.lineage_graph(None if picked == "(all)" else picked)
if not graph.nodes:
    c.empty("No lineage recorded yet: it is written when a run loads a table.")
    st.stop()

tables = sorted((n for n in graph.nodes.values() if n.kind == "table"), key=lambda n: (n.label, n.dataset))
columns = sorted((n for n in graph.nodes.values() if n.kind == "column"), key=lambda n: n.label)
options = [n.id for n in tables] + [n.id for n in columns]


def label(node_id: str) -> str:
    node = graph.nodes[node_id]
    where = node.dataset if len(node.dataset) < 50 else "…" + node.dataset[-48:]
    return f"{'▦' if node.kind == 'table' else '·'} {node.label}  ({where})"


# a click in the graph picks the node (the chart's selection is read before the picker is drawn)
clicked = st.session_state.get("lineage_chart")
points = (clicked or {}).get("selection", {}).get("points", []) if clicked else []
if points:
    node = points[0].get("customdata")
    if isinstance(node, list):
        node = node[0]
    if node in graph.nodes and node != st.session_state.get("lineage_last_click"):
        st.session_state["lineage_node"] = node
        st.session_state["lineage_last_click"] = node
if st.session_state.get("lineage_node") not in options:
    st.session_state.pop("lineage_node", None)

deepest = max(tables, key=lambda n: (graph.depth().get(n.id, 0), n.label))
chosen = st.selectbox(
    "Table or column", options, index=options.index(deepest.id), format_func=label, key="lineage_node"
)
up = graph.upstream(chosen)
down = graph.downstream(chosen)
focus_table = table_id(graph.nodes[chosen].dataset, graph.nodes[chosen].table or "")
up_tables, down_tables = set(graph.tables(up)), set(graph.tables(down))

# ---- the graph: tables (or columns) laid out left to right by how far they are from their sources
level = st.radio("Graph of", ["Tables", "Columns"], horizontal=True, key="lineage_level")
made_here = {t for t in graph.table_edges()["target"].to_list()}


def colour(node_id: str, table: str) -> str:
    if node_id == chosen or (graph.nodes[chosen].kind != "column" and table == focus_table):
        return "#d64545"
    if node_id in up_ids or (level == "Tables" and table in up_tables):
        return "#3a7bd5"
    if node_id in down_ids or (level == "Tables" and table in down_tables):
        return "#e67e22"
    return "#9aa5b1"


up_ids, down_ids = {n.id for n in up}, {n.id for n in down}
if level == "Tables":
    pos = layout(graph)
    links = [
        (r["source"], r["target"], {r["source"], r["target"]} <= up_tables | down_tables | {focus_table})
        for r in graph.table_edges().iter_rows(named=True)
    ]
    ids = list(pos)
    tables_of = dict(zip(ids, ids, strict=True))
    labels = [graph.nodes[t].label for t in ids]
else:  # the chosen node's columns and every column up- and downstream of them
    related = [*graph.members(chosen), *up_ids, *down_ids]
    pos = column_layout(graph, list(dict.fromkeys(related)))
    ids = list(pos)
    links = [(s, t, True) for s, t in graph.links_among(set(ids))]
    tables_of = {i: table_id(graph.nodes[i].dataset, graph.nodes[i].table or "") for i in ids}
    labels = [graph.nodes[i].label for i in ids]

fig = go.Figure()
for source, target, on_path in links:
    (x0, y0), (x1, y1) = pos[source], pos[target]
    fig.add_annotation(
        x=x1,
        y=y1,
        ax=x0,
        ay=y0,
        xref="x",
        yref="y",
        axref="x",
        ayref="y",
        showarrow=True,
        arrowhead=3,
        arrowsize=1.2,
        arrowwidth=2.5 if on_path else 1,
        arrowcolor="#0b6e99" if on_path else "#c3cad3",
        standoff=10,
        startstandoff=10,
    )
fig.add_trace(
    go.Scatter(
        x=[pos[i][0] for i in ids],
        y=[pos[i][1] for i in ids],
        mode="markers+text",
        text=labels,
        textposition="top center",
        textfont={"size": 12 if level == "Tables" else 10},
        customdata=ids,
        hovertext=[graph.nodes[i].dataset for i in ids],
        hovertemplate="%{text}<br>%{hovertext}<extra></extra>",
        marker={
            "size": 26 if level == "Tables" else 14,
            "color": [colour(i, tables_of[i]) for i in ids],
            "line": {"width": 2, "color": "white"},
            # squares: tables Headwater loads; circles: the sources they are made from
            "symbol": ["square" if tables_of[i] in made_here else "circle" for i in ids],
        },
    )
)
per_lane: dict[float, int] = defaultdict(int)
for x, _ in pos.values():
    per_lane[x] += 1
fig.update_layout(
    title=f"{level} (red: chosen · blue: upstream · orange: downstream; ● source ■ loaded) — click to choose",
    showlegend=False,
    height=max(320, 160 + (90 if level == "Tables" else 44) * max(per_lane.values())),
    xaxis={"visible": False, "range": [-0.5, max(per_lane) + 0.5]},
    yaxis={"visible": False},
    clickmode="event+select",
)
c.plotly(
    fig, key="lineage_chart", on_select="rerun", selection_mode="points", config={"displayModeBar": False}
)

# ---- what the chosen node is made from and what is made from it
node = graph.nodes[chosen]
st.subheader(node.label)
st.caption(f"{node.kind} in {node.dataset}")
how = graph.edges
m = st.columns(4)
m[0].metric("Upstream columns", len(up))
m[1].metric("Upstream tables", len(up_tables))
m[2].metric("Downstream columns", len(down))
m[3].metric("Downstream tables", len(down_tables))


def listing(nodes: list, key: str) -> None:  # type: ignore[type-arg]
    if not nodes:
        st.caption("none")
        return
    frame = pl.DataFrame(
        [{"table": n.table, "column": n.column, "dataset": n.dataset} for n in nodes],
        schema={"table": pl.String, "column": pl.String, "dataset": pl.String},
    )
    c.table(frame, hide_index=True, width="stretch", key=key)


left, right = st.columns(2)
with left:
    st.markdown("**Upstream** (what it is made from, nearest first)")
    listing(up, "upstream")
with right:
    st.markdown("**Downstream** (what is made from it, nearest first)")
    listing(down, "downstream")

st.markdown("**How each column is made**")
made = how.filter(
    (pl.col("target_dataset") == node.dataset)
    & (pl.col("target_table") == node.table)
    & ((pl.col("target_column") == node.column) if node.kind == "column" else pl.lit(True))
)
if made.is_empty():
    st.caption("It is a source: nothing recorded makes it.")
else:
    c.table(
        made.select(
            pl.col("target_column").alias("column"),
            pl.col("transformation_type").alias("how"),
            pl.concat_str(pl.col("source_table"), pl.lit("."), pl.col("source_column")).alias("from"),
            pl.col("transformations").list.join(" → ").alias("ops"),
            pl.col("pipeline_name").alias("pipeline"),
        ).sort("column", "from"),
        hide_index=True,
        width="stretch",
        key="made_from",
    )
