"""Check an op's declared lineage against what it does, by perturbation: change one input column's
values and see which output columns change. Every output column that changes must declare that
input column as a source (unless the column only decides which rows are kept or their order:
`Op.row_inputs`), and every declared source must change its output column when perturbed (so the
example frame must be rich enough to show it)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl

from headwater.transform import Op, OpContext
from headwater.transform.lineage import ALL_ROWS, Origin
from headwater.transform.registry import parse_op


def perturb(series: pl.Series) -> pl.Series:
    """Different values of the same type in every non-null position."""
    dtype = series.dtype
    if dtype.is_numeric():
        return series * 2 + 7 if dtype.is_integer() or dtype.is_float() else series + 1
    if dtype == pl.String:
        return series + "~x"
    if dtype == pl.Boolean:
        return ~series
    if dtype == pl.Date:
        return series + timedelta(days=40)
    if isinstance(dtype, pl.Datetime):
        return series + timedelta(days=40, hours=5)
    if isinstance(dtype, pl.List):
        return series.list.reverse().list.concat(series.list.head(1))
    if isinstance(dtype, pl.Struct):
        return pl.DataFrame({f.name: perturb(series.struct.field(f.name)) for f in dtype.fields}).to_struct(
            series.name
        )
    raise TypeError(f"no perturbation for {dtype}")


def _run(op: Op, frame: pl.DataFrame, others: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    ctx = OpContext({k: v.lazy() for k, v in others.items()})
    return op.apply(frame.lazy(), ctx).collect()


def _changed(before: pl.DataFrame, after: pl.DataFrame) -> set[str]:
    if before.height != after.height:
        return set(before.columns)
    return {c for c in before.columns if c not in after.columns or not before[c].equals(after[c])}


CHECKED: set[str] = set()
"""Names of the ops whose lineage was checked in this session (see tests/transform/conftest.py)."""


def assert_lineage_matches(
    op: Op | dict[str, Any],
    frame: pl.DataFrame,
    others: Mapping[str, pl.DataFrame] | None = None,
    check_every_source_matters: bool = True,
) -> None:
    if isinstance(op, dict):
        op = parse_op(op, 0)
    CHECKED.add(op.name)
    others = dict(others or {})
    ctx = OpContext({k: v.lazy() for k, v in others.items()})
    declared = op.lineage(frame.schema, ctx)
    base = _run(op, frame, others)
    assert set(declared) == set(base.columns), f"lineage covers {sorted(declared)}, output has {base.columns}"
    row_inputs = set(op.row_inputs())

    def check(origin_frame: str, column: str, changed: set[str]) -> None:
        for out in changed:
            sources = declared[out].sources
            assert Origin(origin_frame, column) in sources or Origin(origin_frame, ALL_ROWS) in sources, (
                f"{op.name}: output {out!r} changes with input {origin_frame or 'input'}.{column} "
                f"but declares only {sorted((o.frame, o.column) for o in sources)}"
            )

    for column in frame.columns:
        if column in row_inputs:
            continue
        changed = _changed(base, _run(op, frame.with_columns(perturb(frame[column])), others))
        check("", column, changed)
    for name, other in others.items():
        for column in other.columns:
            if column in op.matching_inputs().get(name, []):
                continue  # a key of the other side: decides which rows match
            changed = _changed(
                base, _run(op, frame, {**others, name: other.with_columns(perturb(other[column]))})
            )
            check(name, column, changed)

    if check_every_source_matters:
        for out, lin in declared.items():
            for origin in lin.sources:
                if origin.column == ALL_ROWS or (origin.frame == "" and origin.column in row_inputs):
                    continue
                if origin.column in op.matching_inputs().get(origin.frame, []):
                    continue
                if origin.frame == "":
                    after = _run(op, frame.with_columns(perturb(frame[origin.column])), others)
                else:
                    src = others[origin.frame]
                    after = _run(
                        op, frame, {**others, origin.frame: src.with_columns(perturb(src[origin.column]))}
                    )
                assert out in _changed(base, after), (
                    f"{op.name}: declares {origin.frame or 'input'}.{origin.column} -> {out!r}, but "
                    "changing it does not change that output on the example frame (make the example richer)"
                )


def sample_frame() -> pl.DataFrame:
    """A small frame with the common types and nulls, for tests that need one."""
    return pl.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "name": ["Ann", "bob", None, "Dee"],
            "amount": [10.5, None, -3.25, 0.0],
            "qty": [1, 5, None, 2],
            "day": [date(2024, 1, 31), date(2024, 2, 29), None, date(2023, 12, 1)],
            "at": [datetime(2024, 1, 1, 8), None, datetime(2024, 3, 9, 23, 59), datetime(2023, 7, 4, 12)],
            "ok": [True, False, None, True],
        }
    )
