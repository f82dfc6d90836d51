"""Column lineage: which input columns make each output column, and how.

An op declares lineage for the columns it creates or changes (`Op.produces`); columns it passes on
untouched are `direct`. Lineage composes along an op chain and along a pipeline's steps, ending in
rows of `data_lineage`: source dataset/table/column -> target dataset/table/column, with the
strongest transformation on the way."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    DIRECT = "direct"  # copied or renamed, values unchanged
    JOIN = "join"  # brought in from another dataset by a join or lookup
    DERIVED = "derived"  # generated: constants, ids, flags, hashes, pseudonyms
    CALCULATION = "calculation"  # computed from values of the same row
    AGGREGATION = "aggregation"  # computed over many rows (group, window, rank, running total)


_RANK = {Kind.DIRECT: 0, Kind.JOIN: 1, Kind.DERIVED: 2, Kind.CALCULATION: 3, Kind.AGGREGATION: 4}


def strongest(kinds: Iterable[Kind]) -> Kind:
    return max(kinds, key=_RANK.__getitem__, default=Kind.DIRECT)


@dataclass(frozen=True)
class Origin:
    """A column of a frame: `frame` is "" for the op's (or step's) primary input, else a step name."""

    frame: str
    column: str


@dataclass(frozen=True)
class ColumnLineage:
    sources: frozenset[Origin]
    kind: Kind
    via: tuple[str, ...] = field(default=())
    """The ops (or steps) that touched the column, in order."""


def direct(column: str, frame: str = "") -> ColumnLineage:
    return ColumnLineage(frozenset({Origin(frame, column)}), Kind.DIRECT)


def made_from(columns: Iterable[str], kind: Kind, frame: str = "") -> ColumnLineage:
    return ColumnLineage(frozenset(Origin(frame, c) for c in columns), kind)


Lineage = dict[str, ColumnLineage]


ALL_ROWS = "*"
"""A pseudo-column: the output depends on the input's rows as a whole (e.g. a row count)."""


def compose(
    before: Lineage, step: Lineage, label: str | None = None, others: dict[str, Lineage] | None = None
) -> Lineage:
    """`step` maps its output columns to columns of its input (frame "") or of other frames; `before`
    (and `others`, per frame) say where those came from. Result: the output columns in terms of the
    earlier origins; origins with nothing known about them are kept as they are."""
    known = {"": before, **(others or {})}
    out: Lineage = {}
    for column, lin in step.items():
        sources: set[Origin] = set()
        kinds = [lin.kind]
        via: list[str] = []
        for origin in sorted(lin.sources, key=lambda o: (o.frame, o.column)):
            frame = known.get(origin.frame)
            if frame is not None and origin.column == ALL_ROWS:
                # the rows of the datasets the frame's own columns come from (not those joined in)
                sources |= {
                    Origin(o.frame, ALL_ROWS)
                    for prior in frame.values()
                    if prior.kind is not Kind.JOIN
                    for o in prior.sources
                }
            elif frame is not None and origin.column in frame:
                prior = frame[origin.column]
                sources |= prior.sources
                kinds.append(prior.kind)
                via.extend(v for v in prior.via if v not in via)
            else:
                sources.add(origin)
        via.extend(v for v in lin.via if v not in via)
        if label and lin.kind is not Kind.DIRECT:
            via.append(label)
        out[column] = ColumnLineage(frozenset(sources), strongest(kinds), tuple(via))
    return out


def identity(columns: Iterable[str], frame: str = "") -> Lineage:
    return {c: direct(c, frame) for c in columns}
