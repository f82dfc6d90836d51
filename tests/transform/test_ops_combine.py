"""Combine ops (join, lookup) against DuckDB SQL joins over the same frames, and hand-written frames."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from headwater.transform.lineage import Kind, Origin
from headwater.transform.registry import OpContext, OpSchemaError, chain_lineage, parse_op
from tests.transform.helpers import parse_error
from tests.transform.lineage_check import assert_lineage_matches

LEFT = pl.DataFrame(
    {
        "k": [1, 2, 3, None, 1, 5],
        "region": ["n", "s", "n", "e", "w", None],
        "amount": [10.5, None, -3.0, 7.25, 0.0, 1.0],
    }
)
RIGHT = pl.DataFrame(
    {
        "k": [1, 2, 4, None, 5],
        "name": ["Ann", None, "Dee", "Nul", "Zoë"],
        "amount": [100.0, 200.0, 400.0, 999.0, None],
    }
)


def run(op: dict[str, Any], frame: pl.DataFrame, **others: pl.DataFrame) -> pl.DataFrame:
    ctx = OpContext({k: v.lazy() for k, v in others.items()})
    return parse_op(op, 0).apply(frame.lazy(), ctx).collect()


def duck(sql: str, **frames: pl.DataFrame) -> pl.DataFrame:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, frame in frames.items():
        con.register(name, frame.with_row_index("_i"))  # _i: the row order to compare in
    return con.sql(sql).pl()


def schema_error(op: dict[str, Any], schema: pl.Schema, **others: pl.Schema) -> str:
    ctx = OpContext({k: pl.LazyFrame(schema=v) for k, v in others.items()})
    with pytest.raises(OpSchemaError) as info:
        chain_lineage(schema, [parse_op(op, 0)], ctx)
    return str(info.value)


# join

JOIN_SQL = {
    "inner": "SELECT l.k, l.region, l.amount, r.name, r.amount AS amount_right FROM l JOIN r ON l.k = r.k "
    "ORDER BY l._i, r._i",
    "left": "SELECT l.k, l.region, l.amount, r.name, r.amount AS amount_right FROM l LEFT JOIN r "
    "ON l.k = r.k ORDER BY l._i, r._i",
    "full": "SELECT coalesce(l.k, r.k) AS k, l.region, l.amount, r.name, r.amount AS amount_right "
    "FROM l FULL JOIN r ON l.k = r.k ORDER BY l._i NULLS LAST, r._i",
    "semi": "SELECT k, region, amount FROM l SEMI JOIN r USING (k) ORDER BY l._i",
    "anti": "SELECT k, region, amount FROM l ANTI JOIN r USING (k) ORDER BY l._i",
}


@pytest.mark.parametrize("how", list(JOIN_SQL))
def test_join_against_duckdb(how: str) -> None:
    got = run({"join": {"with": "r", "on": ["k"], "how": how}}, LEFT, r=RIGHT)
    assert_frame_equal(got, duck(JOIN_SQL[how], l=LEFT, r=RIGHT))  # null keys never match
    empty = run({"join": {"with": "r", "on": ["k"], "how": how}}, LEFT.clear(), r=RIGHT)
    assert empty.height == (RIGHT.height if how == "full" else 0)
    assert empty.columns == got.columns


def test_join_select_suffix_and_key_names() -> None:
    right = RIGHT.rename({"k": "id"})
    op = {"join": {"with": "r", "left_on": ["k"], "right_on": ["id"], "select": ["amount"], "suffix": "_r"}}
    got = run(op, LEFT, r=right)
    expected = duck(
        "SELECT l.k, l.region, l.amount, r.amount AS amount_r FROM l LEFT JOIN r ON l.k = r.id ORDER BY l._i",
        l=LEFT,
        r=right,
    )
    assert_frame_equal(got, expected)


def test_join_on_several_keys_of_several_types() -> None:
    t = [datetime(2024, 3, 10, 7, tzinfo=UTC), datetime(2024, 3, 10, 8, tzinfo=UTC)]
    left = pl.DataFrame({"origin": ["JFK", "JFK", "LGA"], "hour": [t[0], t[1], t[0]], "n": [1, 2, 3]})
    weather = pl.DataFrame({"origin": ["JFK", "LGA"], "hour": [t[1], t[0]], "wind": [9.5, None]})
    op = {"join": {"with": "w", "on": ["origin", "hour"], "select": ["wind"], "validate": "m:1"}}
    got = run(op, left, w=weather)
    assert_frame_equal(got, left.with_columns(wind=pl.Series([None, 9.5, None], dtype=pl.Float64)))


def test_join_validate_many_to_one_fails_on_duplicate_right_keys() -> None:
    op = {"join": {"with": "r", "on": ["k"], "validate": "m:1"}}
    unique_with_null_keys = RIGHT.vstack(RIGHT.filter(pl.col("k").is_null()))  # null keys never match
    assert run(op, LEFT, r=unique_with_null_keys).height == LEFT.height
    with pytest.raises(pl.exceptions.ComputeError, match="m:1"):
        run(op, LEFT, r=RIGHT.vstack(RIGHT.head(1)))
    with pytest.raises(pl.exceptions.ComputeError, match="1:1"):
        run({"join": {"with": "r", "on": ["k"], "validate": "1:1"}}, LEFT, r=RIGHT)  # k=1 twice on the left


def test_join_parameters_are_checked() -> None:
    assert "either on, or left_on with right_on" in parse_error({"join": {"with": "r"}})
    assert "either on" in parse_error(
        {"join": {"with": "r", "on": ["k"], "left_on": ["k"], "right_on": ["k"]}}
    )
    assert "same number" in parse_error({"join": {"with": "r", "left_on": ["k", "j"], "right_on": ["k"]}})
    assert "takes no validate or select" in parse_error(
        {"join": {"with": "r", "on": ["k"], "how": "semi", "validate": "m:1"}}
    )
    assert "how" in parse_error({"join": {"with": "r", "on": ["k"], "how": "cross"}})
    assert "nope" in schema_error({"join": {"with": "r", "on": ["nope"]}}, LEFT.schema, r=RIGHT.schema)


@pytest.mark.parametrize("how", list(JOIN_SQL))
def test_join_lineage(how: str) -> None:
    op = {"join": {"with": "r", "on": ["k"], "how": how}}
    assert_lineage_matches(op, LEFT, {"r": RIGHT})
    lineage = parse_op(op, 0).lineage(LEFT.schema, OpContext({"r": RIGHT.lazy()}))
    if how in ("semi", "anti"):
        assert set(lineage) == {"k", "region", "amount"}
        return
    assert lineage["amount_right"].sources == {Origin("r", "amount")} and lineage["name"].kind is Kind.JOIN
    expected_k = {Origin("", "k"), Origin("r", "k")} if how == "full" else {Origin("", "k")}
    assert lineage["k"].sources == expected_k


def test_join_lineage_of_other_side_columns_named_like_the_suffix() -> None:
    """A column of the other side that already ends in the suffix, and one that clashes."""
    right = pl.DataFrame({"k": [1, 2, 5], "name_right": ["a", None, "c"], "region": ["x", "y", None]})
    op = {"join": {"with": "r", "on": ["k"]}}
    lineage = parse_op(op, 0).lineage(LEFT.schema, OpContext({"r": right.lazy()}))
    assert lineage["name_right"].sources == {Origin("r", "name_right")}
    assert lineage["region_right"].sources == {Origin("r", "region")}
    assert_lineage_matches(op, LEFT, {"r": right})
    assert_lineage_matches({"join": {"with": "r", "on": ["k"], "select": ["region"]}}, LEFT, {"r": right})


# lookup

LOOKUP = {"lookup": {"with": "r", "on": ["k"], "values": {"name": "who", "amount": "limit"}}}


def test_lookup_against_duckdb_left_join() -> None:
    got = run(LOOKUP, LEFT, r=RIGHT)
    expected = duck(
        "SELECT l.k, l.region, l.amount, r.name AS who, r.amount AS limit FROM l LEFT JOIN r ON l.k = r.k "
        "ORDER BY l._i",
        l=LEFT,
        r=RIGHT,
    )
    assert_frame_equal(got, expected)
    assert got.height == LEFT.height


def test_lookup_defaults_fill_misses_only() -> None:
    op = {"lookup": {**LOOKUP["lookup"], "default": {"who": "unknown", "limit": 0}}}
    got = run(op, LEFT, r=RIGHT)
    expected = duck(
        "SELECT l.k, l.region, l.amount, CASE WHEN r._i IS NULL THEN 'unknown' ELSE r.name END AS who, "
        "CASE WHEN r._i IS NULL THEN 0.0 ELSE r.amount END AS limit "
        "FROM l LEFT JOIN r ON l.k = r.k ORDER BY l._i",
        l=LEFT,
        r=RIGHT,
    )
    assert_frame_equal(got, expected)
    assert got["who"].to_list() == ["Ann", None, "unknown", "unknown", "Ann", "Zoë"]  # k=2 found, name null
    assert got["limit"].to_list() == [100.0, 200.0, 0.0, 0.0, 100.0, None]


def test_lookup_with_key_names_dates_and_empty_frames() -> None:
    left = pl.DataFrame({"day": [date(2024, 2, 29), date(2024, 3, 1), None]})
    holidays = pl.DataFrame({"on_day": [date(2024, 2, 29)], "label": ["leap"], "since": [date(1582, 10, 15)]})
    op = {
        "lookup": {
            "with": "h",
            "left_on": ["day"],
            "right_on": ["on_day"],
            "values": ["label", "since"],
            "default": {"label": "-", "since": "2000-01-01"},
        }
    }
    got = run(op, left, h=holidays)
    assert got.rows() == [
        (date(2024, 2, 29), "leap", date(1582, 10, 15)),
        (date(2024, 3, 1), "-", date(2000, 1, 1)),
        (None, "-", date(2000, 1, 1)),
    ]
    assert run(op, left.clear(), h=holidays).schema == pl.Schema(
        {"day": pl.Date, "label": pl.String, "since": pl.Date}
    )
    assert run(op, left, h=holidays.clear())["label"].to_list() == ["-"] * 3


def test_lookup_fails_clearly_when_its_keys_repeat() -> None:
    with pytest.raises(pl.exceptions.ComputeError, match="m:1"):
        run(LOOKUP, LEFT, r=RIGHT.vstack(RIGHT.head(1)))
    repeated_nulls = RIGHT.vstack(RIGHT.filter(pl.col("k").is_null()))  # a null key never matches anyway
    assert run(LOOKUP, LEFT, r=repeated_nulls).height == LEFT.height


def test_lookup_parameters_are_checked() -> None:
    assert "either on, or left_on with right_on" in parse_error({"lookup": {"with": "r", "values": ["name"]}})
    assert "at least 1" in parse_error({"lookup": {"with": "r", "on": ["k"], "values": []}})
    assert "does not add: nope" in parse_error(
        {"lookup": {"with": "r", "on": ["k"], "values": ["name"], "default": {"nope": 1}}}
    )
    clash = {"lookup": {"with": "r", "on": ["k"], "values": ["amount"]}}
    assert "exist already; name them in values" in schema_error(clash, LEFT.schema, r=RIGHT.schema)
    wrong = {
        "lookup": {"with": "r", "on": ["k"], "values": {"amount": "limit"}, "default": {"limit": "lots"}}
    }
    assert "default 'lots' for 'limit' is not a Float64" in schema_error(wrong, LEFT.schema, r=RIGHT.schema)
    lossy = {"lookup": {"with": "r", "on": ["k"], "values": {"k2": "n"}, "default": {"n": 1.5}}}
    assert "is not a Int64" in schema_error(lossy, LEFT.schema, r=pl.Schema({"k": pl.Int64, "k2": pl.Int64}))
    assert parse_op(LOOKUP, 0).references() == ["r"]


def test_lookup_lineage() -> None:
    op = {"lookup": {**LOOKUP["lookup"], "default": {"who": "?"}}}
    assert_lineage_matches(op, LEFT, {"r": RIGHT})
    lineage = parse_op(op, 0).lineage(LEFT.schema, OpContext({"r": RIGHT.lazy()}))
    assert lineage["who"].sources == {Origin("r", "name")} and lineage["who"].kind is Kind.JOIN
    assert lineage["limit"].sources == {Origin("r", "amount")}
    assert parse_op(op, 0).matching_inputs() == {"r": ["k"]}
