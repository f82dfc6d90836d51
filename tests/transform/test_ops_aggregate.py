"""Aggregate ops (aggregate, window, rank, running_total, top_n) against DuckDB SQL over the same frames:
GROUP BY, window functions with explicit frames, QUALIFY. `_i` (the input row number) breaks ties the
way the ops document: in input order."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from headwater.transform.lineage import ALL_ROWS, Kind, Origin
from headwater.transform.registry import OpContext, parse_op
from tests.transform.helpers import parse_error, run
from tests.transform.lineage_check import assert_lineage_matches

FRAME = pl.DataFrame(
    {
        "g": ["a", "b", "a", "a", "b", "a", "ü", None, "a"],
        "o": [3, 1, 1, 2, None, 2, 7, 4, None],
        "v": [10, 20, None, 30, 40, 50, None, 5, -4],
        "f": [1.25, None, 2.5, -1.0, 3.0, 0.125, None, 8.0, 2.5],
    }
)


def duck(sql: str, frame: pl.DataFrame) -> pl.DataFrame:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("t", frame.with_row_index("_i"))
    return con.sql(sql).pl()


def same(got: pl.DataFrame, expected: pl.DataFrame, dtypes: dict[str, pl.DataType]) -> None:
    """Equal values; DuckDB's integer sums and counts are HUGEINT/BIGINT, so the types are checked apart."""
    assert {c: got.schema[c] for c in dtypes} == dtypes
    assert_frame_equal(got, expected.select(got.columns), check_dtypes=False)


# aggregate

AGGS = {
    "rows": ({"fn": "count"}, "count(*)", pl.UInt32),
    "n": ({"fn": "count", "column": "v"}, "count(v)", pl.UInt32),
    "nulls": ({"fn": "count_null", "column": "v"}, "count(*) FILTER (WHERE v IS NULL)", pl.UInt32),
    "distinct": ({"fn": "count_distinct", "column": "f"}, "count(DISTINCT f)", pl.UInt32),
    "total": ({"fn": "sum", "column": "v"}, "sum(v)", pl.Int64),
    "avg": ({"fn": "mean", "column": "f", "round": 2}, "round(avg(f), 2)", pl.Float64),
    "med": ({"fn": "median", "column": "v"}, "median(v)", pl.Float64),
    "lo": ({"fn": "min", "column": "f"}, "min(f)", pl.Float64),
    "hi": ({"fn": "max", "column": "v"}, "max(v)", pl.Int64),
    "sd": ({"fn": "std", "column": "f", "round": 6}, "round(stddev_samp(f), 6)", pl.Float64),
    "first_v": (
        {"fn": "first", "column": "v"},
        "first(v ORDER BY _i) FILTER (WHERE v IS NOT NULL)",
        pl.Int64,
    ),
    "last_v": ({"fn": "last", "column": "v"}, "last(v ORDER BY _i) FILTER (WHERE v IS NOT NULL)", pl.Int64),
}


def test_aggregate_every_function_against_duckdb() -> None:
    op = {"aggregate": {"by": ["g"], "aggs": {name: spec for name, (spec, _, _) in AGGS.items()}}}
    got = run(op, FRAME)
    sql = ", ".join(f"{expr} AS {name}" for name, (_, expr, _) in AGGS.items())
    expected = duck(
        f"SELECT g, {sql} FROM t GROUP BY g ORDER BY min(_i)", FRAME
    )  # groups in first-seen order
    same(got, expected, {name: dtype for name, (_, _, dtype) in AGGS.items()})


def test_aggregate_nulls_are_ignored_as_in_sql() -> None:
    """A group whose values are all null: count 0, count_distinct 0, sum/mean/first null (not 0)."""
    frame = pl.DataFrame({"g": ["x", "x", "y"], "v": [None, None, 1]}, schema={"g": pl.String, "v": pl.Int64})
    aggs = {n: AGGS[n][0] for n in ("n", "nulls", "distinct", "total", "first_v", "avg", "rows")}
    aggs["distinct"] = {"fn": "count_distinct", "column": "v"}
    aggs["avg"] = {"fn": "mean", "column": "v"}
    got = run({"aggregate": {"by": ["g"], "aggs": aggs}}, frame)
    assert got.row(0, named=True) == {
        "g": "x",
        "n": 0,
        "nulls": 2,
        "distinct": 0,
        "total": None,
        "first_v": None,
        "avg": None,
        "rows": 2,
    }
    assert got.row(1, named=True) == {
        "g": "y",
        "n": 1,
        "nulls": 0,
        "distinct": 1,
        "total": 1,
        "first_v": 1,
        "avg": 1.0,
        "rows": 1,
    }


def test_aggregate_empty_frame_and_several_keys() -> None:
    op = {"aggregate": {"by": ["g", "o"], "aggs": {name: spec for name, (spec, _, _) in AGGS.items()}}}
    empty = run(op, FRAME.clear())
    assert empty.height == 0
    assert dict(empty.schema) == {"g": pl.String, "o": pl.Int64, **{n: d for n, (_, _, d) in AGGS.items()}}
    got = run({"aggregate": {"by": ["g", "o"], "aggs": {"total": {"fn": "sum", "column": "v"}}}}, FRAME)
    expected = duck("SELECT g, o, sum(v) AS total FROM t GROUP BY g, o ORDER BY min(_i)", FRAME)
    same(got, expected, {"total": pl.Int64})


def test_aggregate_parameters_are_checked() -> None:
    assert "sum needs a column" in parse_error({"aggregate": {"by": ["g"], "aggs": {"s": {"fn": "sum"}}}})
    assert "fn" in parse_error({"aggregate": {"by": ["g"], "aggs": {"s": {"fn": "mode", "column": "v"}}}})
    assert "round" in parse_error(
        {"aggregate": {"by": ["g"], "aggs": {"s": {"fn": "sum", "column": "v", "round": 99}}}}
    )
    assert "at least 1" in parse_error({"aggregate": {"by": [], "aggs": {"rows": {"fn": "count"}}}})


def test_aggregate_lineage() -> None:
    values = {n: AGGS[n][0] for n in ("total", "avg", "med", "lo", "hi", "first_v", "last_v")}
    assert_lineage_matches({"aggregate": {"by": ["g"], "aggs": values}}, FRAME)
    # count, count_null and count_distinct depend on a column only through its nulls and repeats, which
    # the perturbation (an injective change that keeps nulls) leaves alone: check the other direction only
    counts = {n: AGGS[n][0] for n in ("rows", "n", "nulls", "distinct")}
    assert_lineage_matches(
        {"aggregate": {"by": ["g"], "aggs": counts}}, FRAME, check_every_source_matters=False
    )
    lineage = parse_op({"aggregate": {"by": ["g"], "aggs": counts}}, 0).lineage(FRAME.schema, OpContext())
    assert lineage["rows"].sources == {Origin("", ALL_ROWS)} and lineage["n"].sources == {Origin("", "v")}
    assert all(lin.kind is Kind.AGGREGATION for name, lin in lineage.items() if name != "g")


# window

WINDOW_SQL = {"sum": "sum", "mean": "avg", "min": "min", "max": "max", "count": "count"}


@pytest.mark.parametrize("rows", [None, 1, 2, 3])
@pytest.mark.parametrize("partition", [["g"], []])
def test_window_against_duckdb(rows: int | None, partition: list[str]) -> None:
    aggs = {f"{fn}_v": {"fn": fn, "column": "v"} for fn in WINDOW_SQL} | {"rows": {"fn": "count"}}
    frame_params = {"order_by": ["o"], "rows": rows} if rows else {}
    got = run({"window": {"partition_by": partition, **frame_params, "aggs": aggs}}, FRAME)
    over = f"PARTITION BY {', '.join(partition)}" if partition else ""
    if rows:
        over += f" ORDER BY o NULLS LAST, _i ROWS BETWEEN {rows - 1} PRECEDING AND CURRENT ROW"
    cols = ", ".join(f"{sql}(v) OVER ({over}) AS {fn}_v" for fn, sql in WINDOW_SQL.items())
    expected = duck(f"SELECT g, o, v, f, {cols}, count(*) OVER ({over}) AS rows FROM t ORDER BY _i", FRAME)
    types = {
        "sum_v": pl.Int64,
        "mean_v": pl.Float64,
        "min_v": pl.Int64,
        "count_v": pl.UInt32,
        "rows": pl.UInt32,
    }
    same(got, expected, types)


def test_window_means_of_floats_and_empty_frame() -> None:
    op = {
        "window": {
            "partition_by": ["g"],
            "order_by": ["o"],
            "rows": 2,
            "aggs": {"m": {"fn": "mean", "column": "f"}},
        }
    }
    got = run(op, FRAME)
    expected = duck(
        "SELECT *, avg(f) OVER (PARTITION BY g ORDER BY o NULLS LAST, _i ROWS 1 PRECEDING) AS m "
        "FROM t ORDER BY _i",
        FRAME,
    )
    assert_frame_equal(got, expected.drop("_i"))
    assert run(op, FRAME.clear()).schema == pl.Schema({**FRAME.schema, "m": pl.Float64})


def test_window_parameters_and_lineage() -> None:
    assert "order_by and rows go together" in parse_error(
        {"window": {"rows": 3, "aggs": {"c": {"fn": "count"}}}}
    )
    assert "order_by and rows go together" in parse_error(
        {"window": {"order_by": ["o"], "aggs": {"c": {"fn": "count"}}}}
    )
    assert "greater than or equal to 1" in parse_error(
        {"window": {"order_by": ["o"], "rows": 0, "aggs": {"c": {"fn": "count"}}}}
    )
    assert "mean needs a column" in parse_error({"window": {"aggs": {"c": {"fn": "mean"}}}})
    values = {
        "s": {"fn": "sum", "column": "v"},
        "m": {"fn": "mean", "column": "f"},
        "x": {"fn": "max", "column": "v"},
    }
    assert_lineage_matches({"window": {"partition_by": ["g"], "aggs": values}}, FRAME)
    assert_lineage_matches(
        {"window": {"partition_by": ["g"], "order_by": ["o"], "rows": 2, "aggs": values}}, FRAME
    )
    counts = {"c": {"fn": "count", "column": "v"}, "rows": {"fn": "count"}}
    # counts follow a column's nulls only, which the perturbation keeps (see test_aggregate_lineage)
    assert_lineage_matches({"window": {"aggs": counts}}, FRAME, check_every_source_matters=False)


# rank

METHOD_SQL = {
    "min": "rank() OVER w",
    "dense": "dense_rank() OVER w",
    "ordinal": "row_number() OVER (PARTITION BY g ORDER BY o {dir} NULLS LAST, _i)",
    "max": "rank() OVER w + count(*) OVER (PARTITION BY g, o) - 1",
}


@pytest.mark.parametrize("method", list(METHOD_SQL))
@pytest.mark.parametrize("descending", [False, True])
def test_rank_against_duckdb(method: str, descending: bool) -> None:
    op = {"rank": {"by": ["o"], "partition_by": ["g"], "method": method, "descending": descending, "as": "r"}}
    got = run(op, FRAME)
    direction = "DESC" if descending else "ASC"
    expr = METHOD_SQL[method].format(dir=direction)
    expected = duck(
        f"SELECT g, o, v, f, CASE WHEN o IS NOT NULL THEN {expr} END AS r FROM t "
        f"WINDOW w AS (PARTITION BY g ORDER BY o {direction} NULLS LAST) ORDER BY _i",
        FRAME,
    )
    same(got, expected, {"r": pl.UInt32})


def test_rank_on_several_columns_zone_aware_times_and_empty() -> None:
    t = [datetime(2024, 3, 10, 6, 59, tzinfo=UTC), datetime(2024, 3, 10, 7, 1, tzinfo=UTC), None]
    frame = pl.DataFrame({"day": [1, 1, 1, 2, 1], "ts": [t[1], t[0], t[0], t[2], t[0]], "x": [1, 2, 3, 4, 5]})
    got = run({"rank": {"by": ["day", "ts"], "as": "r"}}, frame)
    expected = duck(
        "SELECT *, CASE WHEN day IS NOT NULL AND ts IS NOT NULL "
        "THEN rank() OVER (ORDER BY day, ts NULLS LAST) END AS r FROM t ORDER BY _i",
        frame,
    )
    same(got, expected.drop("_i"), {"r": pl.UInt32})
    assert got["r"].to_list() == [4, 1, 1, None, 1]
    assert run({"rank": {"by": ["day", "ts"], "as": "r"}}, frame.clear()).schema["r"] == pl.UInt32


def test_rank_parameters_and_lineage() -> None:
    assert "method" in parse_error({"rank": {"by": ["o"], "method": "average", "as": "r"}})
    assert "as" in parse_error({"rank": {"by": ["o"]}})
    # perturbing strings appends "~x", which reorders a value and its prefix ("a" < "ab" but "a~x" > "ab~x"),
    # so the rank changes when its order column does
    frame = pl.DataFrame(
        {"grp": [1, 1, 2, 2, 1], "name": ["a", "ab", "b", None, "abc"], "x": [1.0, 2.0, None, 4.0, 5.0]}
    )
    op = {"rank": {"by": ["name"], "partition_by": ["grp"], "as": "r"}}
    assert_lineage_matches(op, frame)
    lineage = parse_op(op, 0).lineage(frame.schema, OpContext())
    assert lineage["r"].sources == {Origin("", "name")} and lineage["r"].kind is Kind.AGGREGATION


# running_total


@pytest.mark.parametrize("partition", [["g"], []])
def test_running_total_against_duckdb(partition: list[str]) -> None:
    op = {"running_total": {"column": "v", "partition_by": partition, "order_by": ["o"], "as": "run"}}
    got = run(op, FRAME)
    by = f"PARTITION BY {', '.join(partition)}" if partition else ""
    expected = duck(
        f"SELECT *, sum(v) OVER ({by} ORDER BY o NULLS LAST, _i ROWS UNBOUNDED PRECEDING) AS run "
        "FROM t ORDER BY _i",
        FRAME,
    )
    same(got, expected.drop("_i"), {"run": pl.Int64})


def test_running_total_of_floats_nulls_and_empty() -> None:
    op = {"running_total": {"column": "f", "partition_by": ["g"], "order_by": ["o", "v"], "as": "run"}}
    got = run(op, FRAME)
    expected = duck(
        "SELECT *, sum(f) OVER (PARTITION BY g ORDER BY o NULLS LAST, v NULLS LAST, _i "
        "ROWS UNBOUNDED PRECEDING) AS run FROM t ORDER BY _i",
        FRAME,
    )
    assert_frame_equal(got, expected.drop("_i"))
    leading_nulls = pl.DataFrame(
        {"o": [1, 2, 3, 4], "v": [None, None, 2, None]}, schema={"o": pl.Int64, "v": pl.Int64}
    )
    got = run({"running_total": {"column": "v", "order_by": ["o"], "as": "run"}}, leading_nulls)
    assert got["run"].to_list() == [None, None, 2, 2]
    assert run(op, FRAME.clear()).schema["run"] == pl.Float64


def test_running_total_parameters_and_lineage() -> None:
    assert "order_by" in parse_error({"running_total": {"column": "v", "as": "run"}})
    op = {"running_total": {"column": "v", "partition_by": ["g"], "order_by": ["o"], "as": "run"}}
    assert_lineage_matches(op, FRAME)
    lineage = parse_op(op, 0).lineage(FRAME.schema, OpContext())
    assert lineage["run"].sources == {Origin("", "v")} and lineage["run"].kind is Kind.AGGREGATION


# top_n


@pytest.mark.parametrize("ties", ["first", "all"])
@pytest.mark.parametrize("descending", [True, False])
@pytest.mark.parametrize("n", [1, 2, 4])
def test_top_n_against_duckdb(ties: str, descending: bool, n: int) -> None:
    op = {"top_n": {"n": n, "by": ["g"], "order_by": "o", "descending": descending, "ties": ties}}
    got = run(op, FRAME)
    direction = "DESC" if descending else "ASC"
    place = "row_number()" if ties == "first" else "rank()"
    tiebreak = ", _i" if ties == "first" else ""
    expected = duck(
        f"SELECT g, o, v, f FROM t QUALIFY {place} OVER "
        f"(PARTITION BY g ORDER BY o {direction} NULLS LAST{tiebreak}) <= {n} ORDER BY _i",
        FRAME,
    )
    assert_frame_equal(got, expected)


def test_top_n_ties_are_documented_behaviour() -> None:
    frame = pl.DataFrame({"score": [5, 9, 9, None, 7, 9], "who": ["a", "b", "c", "d", "e", "f"]})
    first = run({"top_n": {"n": 2, "order_by": "score"}}, frame)
    assert first["who"].to_list() == ["b", "c"]  # the first two 9s in input order
    every = run({"top_n": {"n": 2, "order_by": "score", "ties": "all"}}, frame)
    assert every["who"].to_list() == ["b", "c", "f"]
    assert run({"top_n": {"n": 6, "order_by": "score"}}, frame).height == 6  # nulls come last, still kept
    # with ties: all, the nulls share the place after the last value (6th here)
    assert run({"top_n": {"n": 5, "order_by": "score", "ties": "all"}}, frame)["who"].to_list() == list(
        "abcef"
    )
    assert run({"top_n": {"n": 6, "order_by": "score", "ties": "all"}}, frame)["who"].to_list() == list(
        "abcdef"
    )
    assert run({"top_n": {"n": 2, "order_by": "score"}}, frame.clear()).schema == frame.schema


def test_top_n_parameters_and_lineage() -> None:
    assert "greater than or equal to 1" in parse_error({"top_n": {"n": 0, "order_by": "o"}})
    assert "ties" in parse_error({"top_n": {"n": 1, "order_by": "o", "ties": "random"}})
    op = {"top_n": {"n": 2, "by": ["g"], "order_by": "o"}}
    assert_lineage_matches(op, FRAME)
    lineage = parse_op(op, 0).lineage(FRAME.schema, OpContext())
    assert all(lin.kind is Kind.DIRECT for lin in lineage.values())
    assert parse_op(op, 0).row_inputs() == ["g", "o"]
