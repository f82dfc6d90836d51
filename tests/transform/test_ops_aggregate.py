"""Aggregate ops (aggregate, window, rank, running_total, top_n) against DuckDB SQL over the same frames:
GROUP BY, window functions with explicit frames, QUALIFY. `_i` (the input row number) breaks ties the
way the ops document: in input order."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from headwater.transform.lineage import ALL_ROWS, Kind, Origin
from headwater.transform.registry import OpContext, OpSchemaError, chain_lineage, parse_op
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


# aggregate in decimal arithmetic: against Python's decimal module (ROUND_HALF_UP) on the same values as text

DECIMAL_FNS = ("sum", "mean", "min", "max", "first", "last")


def _py_aggregate(texts: list[str | None], fn: str, decimals: int) -> Decimal | None:
    """The reference: exact Decimal arithmetic on the texts, rounded half away from zero."""
    values = [Decimal(t) for t in texts if t is not None]
    if not values:
        return None
    with localcontext() as ctx:
        ctx.prec = 200  # exact for these sums and means: no rounding before the last one
        result = {
            "sum": lambda: sum(values, Decimal(0)),
            "mean": lambda: sum(values, Decimal(0)) / len(values),
            "min": lambda: min(values),
            "max": lambda: max(values),
            "first": lambda: values[0],
            "last": lambda: values[-1],
        }[fn]()
        return result.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def _decimal_aggs(column: str, decimals: int) -> dict[str, dict[str, object]]:
    return {
        fn: {"fn": fn, "column": column, "round": decimals, "arithmetic": "decimal"} for fn in DECIMAL_FNS
    }


def _expected(groups: dict[str, list[str | None]], decimals: int) -> pl.DataFrame:
    rows = [
        {"g": g, **{fn: _py_aggregate(texts, fn, decimals) for fn in DECIMAL_FNS}}
        for g, texts in groups.items()
    ]
    return pl.DataFrame(rows, schema={"g": pl.String, **dict.fromkeys(DECIMAL_FNS, pl.Decimal(38, decimals))})


def _frame(groups: dict[str, list[str | None]], dtype: pl.DataType = pl.Float64) -> pl.DataFrame:
    """Column x of the texts: floats (or integers) parsed by Python, decimals built from the texts."""
    pairs = [(g, t) for g, texts in groups.items() for t in texts]
    parse = Decimal if isinstance(dtype, pl.Decimal) else int if dtype.is_integer() else float
    return pl.DataFrame(
        {"g": [g for g, _ in pairs], "x": [None if t is None else parse(t) for _, t in pairs]},
        schema={"g": pl.String, "x": dtype},
    )


TIES = {  # printed ties that floats store just below or above (1.005 is 1.00499...), nulls, an all-null group
    "ties": ["1.005", "2.675", "0.125", None, "1.015"],
    "negative": ["-1.005", "-2.675", None, "-0.125"],
    "mixed": ["1e-9", "0.005", "-0.0", "0.045", "1.0049"],
    "one": ["2.675"],
    "nulls": [None, None],
    "means": ["0.001", "0.002", "0.002"],  # mean 0.001666...
}


@pytest.mark.parametrize("decimals", [0, 1, 2, 3])
def test_aggregate_decimal_matches_python_decimal(decimals: int) -> None:
    got = run({"aggregate": {"by": ["g"], "aggs": _decimal_aggs("x", decimals)}}, _frame(TIES))
    assert_frame_equal(got, _expected(TIES, decimals))


def test_aggregate_decimal_random_values_in_groups() -> None:
    rng = random.Random(20261105)
    groups: dict[str, list[str | None]] = {
        f"g{i}": [
            None
            if rng.random() < 0.1
            else str(Decimal(rng.randint(-(10**8), 10**8)).scaleb(-rng.randint(0, 5)))
            for _ in range(rng.randint(1, 40))
        ]
        for i in range(50)
    }
    got = run({"aggregate": {"by": ["g"], "aggs": _decimal_aggs("x", 2)}}, _frame(groups))
    assert_frame_equal(got, _expected(groups, 2))


def test_aggregate_decimal_sums_100_000_values_exactly_where_floats_drift() -> None:
    rng = random.Random(7)
    mills = [rng.randint(0, 99_999) for _ in range(100_000)]
    mills[-1] += 5 - sum(mills) % 10  # the exact total ends in 5 mills: a tie at 2 decimals
    texts: list[str | None] = [str(Decimal(m).scaleb(-3)) for m in mills]
    frame = _frame({"all": texts})
    exact = sum((Decimal(t) for t in texts if t), Decimal(0))
    assert Decimal(sum(float(t) for t in texts if t)) != exact  # a running float sum drifts
    got = run({"aggregate": {"by": ["g"], "aggs": _decimal_aggs("x", 2)}}, frame)
    assert_frame_equal(got, _expected({"all": texts}, 2))
    assert got["sum"][0] == exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) == Decimal("4994361.52")


def test_aggregate_decimal_mean_rounds_the_exact_quotient() -> None:
    """1/201 = 0.004975...: a quotient rounded to 3 places first (0.005) would round up to 0.01."""
    groups: dict[str, list[str | None]] = {"below": ["1"] + ["0"] * 200, "tie": ["1"] + ["0"] * 199}
    pairs = [(g, int(t)) for g, texts in groups.items() for t in texts if t is not None]
    frame = pl.DataFrame({"g": [g for g, _ in pairs], "x": [v for _, v in pairs]})
    got = run(
        {
            "aggregate": {
                "by": ["g"],
                "aggs": {"m": {"fn": "mean", "column": "x", "round": 2, "arithmetic": "decimal"}},
            }
        },
        frame,
    )
    assert got["m"].to_list() == [Decimal("0.00"), Decimal("0.01")]
    assert got["m"].to_list() == [_py_aggregate(groups[g], "mean", 2) for g in ("below", "tie")]


@pytest.mark.parametrize("dtype", [pl.Float32, pl.Decimal(12, 10), pl.Int64])
def test_aggregate_decimal_reads_every_numeric_type_exactly(dtype: pl.DataType) -> None:
    groups: dict[str, list[str | None]] = (
        {"a": ["15", None, "-4", "7"], "b": ["3", "4"], "c": ["1", "0", "0", "0", "0", "0", "0", "0"]}
        if dtype == pl.Int64
        else TIES
    )
    got = run({"aggregate": {"by": ["g"], "aggs": _decimal_aggs("x", 2)}}, _frame(groups, dtype))
    assert_frame_equal(got, _expected(groups, 2))


def test_aggregate_decimal_empty_frame() -> None:
    got = run({"aggregate": {"by": ["g"], "aggs": _decimal_aggs("x", 2)}}, _frame(TIES).clear())
    assert got.height == 0
    assert got.schema == pl.Schema({"g": pl.String, **dict.fromkeys(DECIMAL_FNS, pl.Decimal(38, 2))})


def test_aggregate_float_arithmetic_is_unchanged_and_differs_on_printed_ties() -> None:
    frame = _frame({"a": ["1.005"], "b": ["1.015"]})
    aggs = {"f": {"fn": "sum", "column": "x", "round": 2}, "d": _decimal_aggs("x", 2)["sum"]}
    got = run({"aggregate": {"by": ["g"], "aggs": aggs}}, frame)
    assert got["f"].to_list() == [1.0, 1.01]  # the binary values 1.00499... and 1.01499...
    assert got["d"].to_list() == [Decimal("1.01"), Decimal("1.02")]


def test_aggregate_of_an_all_null_column_is_null_as_in_sql() -> None:
    """A Null-typed column (every value null, e.g. from an empty source)."""
    frame = pl.DataFrame(
        {"g": ["a", "a", "b"], "n": [None, None, None]}, schema={"g": pl.String, "n": pl.Null}
    )
    aggs = {
        "mean": {"fn": "mean", "column": "n"},
        "mean_2": {"fn": "mean", "column": "n", "round": 2},
        "sum": {"fn": "sum", "column": "n"},
        "std": {"fn": "std", "column": "n"},
        "min_2": {"fn": "min", "column": "n", "round": 2},
        "max": {"fn": "max", "column": "n"},
        "n": {"fn": "count", "column": "n"},
        "distinct": {"fn": "count_distinct", "column": "n"},
        "sum_dec": {"fn": "sum", "column": "n", "round": 2, "arithmetic": "decimal"},
        "mean_dec": {"fn": "mean", "column": "n", "round": 2, "arithmetic": "decimal"},
    }
    got = run({"aggregate": {"by": ["g"], "aggs": aggs}}, frame)
    expected = duck(
        "SELECT g, avg(n::DOUBLE) AS mean, round(avg(n::DOUBLE), 2) AS mean_2, sum(n::DOUBLE) AS sum, "
        "stddev_samp(n::DOUBLE) AS std, round(min(n::DOUBLE), 2) AS min_2, max(n) AS max, count(n) AS n, "
        "count(DISTINCT n) AS distinct, round(sum(n::DECIMAL(38, 2)), 2) AS sum_dec, "
        "round(avg(n::DECIMAL(38, 2)), 2) AS mean_dec FROM t GROUP BY g ORDER BY min(_i)",
        frame,
    )
    types = dict.fromkeys(["mean", "mean_2", "sum", "std", "min_2"], pl.Float64)
    types |= {"max": pl.Null, "n": pl.UInt32, "distinct": pl.UInt32}
    types |= dict.fromkeys(["sum_dec", "mean_dec"], pl.Decimal(38, 2))
    same(got, expected, types)
    assert got.drop("g", "n", "distinct").null_count().row(0) == (2,) * 8
    assert run({"aggregate": {"by": ["g"], "aggs": aggs}}, frame.clear()).schema == got.schema


@pytest.mark.parametrize(
    ("agg", "message"),
    [
        (
            {"fn": "mean", "column": "s"},
            "aggregate out: mean needs a numeric column, but s is String: cast it",
        ),
        ({"fn": "sum", "column": "s"}, "sum needs a numeric column, but s is String"),
        ({"fn": "min", "column": "s", "round": 2}, "min with round needs a numeric column, but s is String"),
        (
            {"fn": "sum", "column": "b", "round": 2, "arithmetic": "decimal"},
            "sum in decimal arithmetic needs a numeric column, but b is Boolean",
        ),
    ],
)
def test_aggregate_of_a_non_numeric_column_names_it(agg: dict[str, object], message: str) -> None:
    frame = pl.DataFrame({"g": ["a", "a"], "s": ["1.5", "2"], "b": [True, False]})
    op = {"aggregate": {"by": ["g"], "aggs": {"out": agg}}}
    with pytest.raises(pl.exceptions.SchemaError, match=message):
        run(op, frame)
    with pytest.raises(OpSchemaError, match=rf"op #1 \(aggregate\): SchemaError: .*{message}"):
        chain_lineage(frame.schema, [parse_op(op, 0)], OpContext())


def test_aggregate_of_text_still_counts_and_takes_min_max_and_a_mean_of_booleans() -> None:
    frame = pl.DataFrame({"g": ["a", "a"], "s": ["x", "y"], "b": [True, False]})
    aggs = {
        "lo": {"fn": "min", "column": "s"},
        "n": {"fn": "count_distinct", "column": "s"},
        "share": {"fn": "mean", "column": "b"},
    }
    assert run({"aggregate": {"by": ["g"], "aggs": aggs}}, frame).row(0) == ("a", "x", 2, 0.5)


def test_aggregate_decimal_parameters_are_checked() -> None:
    def agg(**kw: object) -> dict[str, object]:
        return {"aggregate": {"by": ["g"], "aggs": {"s": {"column": "v", "arithmetic": "decimal", **kw}}}}

    assert "decimal arithmetic needs round" in parse_error(agg(fn="sum"))
    assert "decimal arithmetic works with sum, mean, min, max, first, last, not median" in parse_error(
        agg(fn="median", round=2)
    )
    assert "not count_distinct" in parse_error(agg(fn="count_distinct", round=2))
    assert "arithmetic" in parse_error(agg(fn="sum", round=2, arithmetic="exact"))


def test_aggregate_decimal_lineage() -> None:
    aggs = {f"{fn}_{c}": _decimal_aggs(c, 2)[fn] for fn in DECIMAL_FNS for c in ("f", "v")}
    assert_lineage_matches({"aggregate": {"by": ["g"], "aggs": aggs}}, FRAME)


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
