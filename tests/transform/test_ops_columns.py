"""Column ops (select, reorder, drop, rename, cast, derive, coalesce, constant, fill_null) against
independent computations: hand-written frames and DuckDB SQL over the same input."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from headwater.transform.lineage import ALL_ROWS, Kind, Origin
from headwater.transform.registry import (
    OpContext,
    OpSchemaError,
    chain_lineage,
    parse_op,
    run_ops,
)
from tests.transform.helpers import duck, parse_error, run
from tests.transform.lineage_check import assert_lineage_matches, sample_frame

UTC = pl.Datetime("us", "UTC")


def empty(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.clear()


# select, reorder, drop, rename


def test_select_keeps_columns_in_the_order_given() -> None:
    frame = sample_frame()
    got = run({"select": ["qty", "name", "id"]}, frame)
    assert_frame_equal(got, duck("SELECT qty, name, id FROM t", t=frame))
    assert run({"select": ["qty", "name"]}, empty(frame)).schema == pl.Schema(
        {"qty": pl.Int64, "name": pl.String}
    )


def test_select_rejects_unknown_and_repeated_columns() -> None:
    with pytest.raises(pl.exceptions.ColumnNotFoundError):
        run({"select": ["id", "nope"]}, sample_frame())
    assert "listed more than once" in parse_error({"select": ["id", "id"]})
    assert "at least 1" in parse_error({"select": []})


def test_reorder_puts_columns_first_and_keeps_the_rest_in_order() -> None:
    frame = sample_frame()
    got = run({"reorder": ["ok", "amount"]}, frame)
    assert got.columns == ["ok", "amount", "id", "name", "qty", "day", "at"]
    assert_frame_equal(got, duck('SELECT ok, amount, id, name, qty, day, "at" FROM t', t=frame))
    assert run({"reorder": ["id"]}, frame).columns == frame.columns  # already first
    assert (
        run({"reorder": ["at", "ok"]}, empty(frame)).schema
        == frame.select("at", "ok", pl.exclude("at", "ok")).schema
    )


def test_reorder_rejects_unknown_and_repeated_columns() -> None:
    with pytest.raises(pl.exceptions.ColumnNotFoundError):
        run({"reorder": ["nope"]}, sample_frame())
    assert "listed more than once" in parse_error({"reorder": ["id", "id"]})


def test_drop_removes_columns_and_each_must_exist() -> None:
    frame = sample_frame()
    assert_frame_equal(
        run({"drop": ["name", "at"]}, frame), duck('SELECT * EXCLUDE (name, "at") FROM t', t=frame)
    )
    assert run({"drop": ["name"]}, empty(frame)).columns == ["id", "amount", "qty", "day", "at", "ok"]
    with pytest.raises(pl.exceptions.ColumnNotFoundError):
        run({"drop": ["nope"]}, frame)


def test_rename_renames_and_can_swap() -> None:
    frame = sample_frame()
    got = run({"rename": {"name": "vendor", "id": "qty", "qty": "id"}}, frame)
    expected = duck('SELECT id AS qty, name AS vendor, amount, qty AS id, day, "at", ok FROM t', t=frame)
    assert_frame_equal(got, expected)
    assert run({"rename": {"name": "vendor"}}, empty(frame)).schema["vendor"] == pl.String


def test_rename_rejects_clashes() -> None:
    assert "listed more than once" in parse_error({"rename": {"id": "x", "qty": "x"}})
    with pytest.raises(pl.exceptions.DuplicateError):
        run({"rename": {"id": "qty"}}, sample_frame())  # qty still exists


@pytest.mark.parametrize(
    "op",
    [
        {"select": ["qty", "name", "id"]},
        {"reorder": ["ok", "amount"]},
        {"drop": ["name", "at"]},
        {"rename": {"name": "vendor", "id": "qty", "qty": "id"}},
    ],
)
def test_choosing_columns_lineage(op: dict[str, Any]) -> None:
    assert_lineage_matches(op, sample_frame())
    lineage = parse_op(op, 0).lineage(sample_frame().schema, OpContext())
    assert all(lin.kind is Kind.DIRECT for lin in lineage.values())
    if "rename" in op:
        assert lineage["qty"].sources == {Origin("", "id")} and lineage["vendor"].sources == {
            Origin("", "name")
        }


# cast


def test_cast_strings_against_duckdb() -> None:
    frame = pl.DataFrame(
        {
            "i": ["1", "-42", None, "9000000000"],
            "f": ["1.5", "-0.25", None, "3"],
            "d": ["2024-02-29", "1999-12-31", None, "2024-01-01"],
            "ts": ["2024-02-29 23:59:59", "1999-12-31 00:00:00", None, "2024-01-01 08:30:00"],
        }
    )
    got = run({"cast": {"i": "int", "f": "float", "d": "date", "ts": "datetime"}}, frame)
    expected = duck("SELECT i::BIGINT i, f::DOUBLE f, d::DATE d, ts::TIMESTAMP ts FROM t", t=frame)
    assert_frame_equal(got, expected)


def test_cast_numbers_and_others_against_duckdb() -> None:
    frame = pl.DataFrame(
        {"n": [1, -7, None, 120], "x": [0.5, None, -2.25, 1e6], "b": [True, None, False, True]}
    )
    got = run(
        {"cast": {"n": "int8", "x": "string", "b": "int"}}, frame.with_columns(pl.col("x").cast(pl.Float64))
    )
    expected = duck("SELECT n::TINYINT n, x, b::BIGINT b FROM t", t=frame).with_columns(
        pl.Series("x", ["0.5", None, "-2.25", "1000000.0"])  # float text: Polars' shortest round trip
    )
    assert_frame_equal(got, expected)


def test_cast_types_of_an_empty_frame() -> None:
    frame = pl.DataFrame(schema={"a": pl.String, "b": pl.String, "c": pl.Int64, "d": pl.String})
    got = run({"cast": {"a": "date", "b": "datetime_utc", "c": "decimal(10,2)", "d": "bool"}}, frame)
    assert got.schema == pl.Schema({"a": pl.Date, "b": UTC, "c": pl.Decimal(10, 2), "d": pl.Boolean})
    assert got.height == 0


def test_strict_cast_raises_on_a_value_that_does_not_convert() -> None:
    frame = pl.DataFrame({"n": ["1", "two", None]})
    op = parse_op({"cast": {"n": "int"}}, 0)
    lazy = op.apply(frame.lazy(), OpContext())  # builds lazily; the data fails at collect
    with pytest.raises(pl.exceptions.InvalidOperationError, match="two"):
        lazy.collect()
    with pytest.raises(pl.exceptions.InvalidOperationError, match=r"2\.5"):
        run({"cast": {"x": "int"}}, pl.DataFrame({"x": [1.0, 2.5, None]}))  # no silent truncation
    with pytest.raises(pl.exceptions.PolarsError):
        run({"cast": {"s": "bool"}}, pl.DataFrame({"s": ["true", "maybe"]}))


def test_lenient_cast_nulls_failures_and_counts_them_exactly() -> None:
    frame = pl.DataFrame(
        {
            "n": ["1", "two", None, " 3", "4"],  # "two" and " 3" fail; the null is not a failure
            "x": [1.0, 2.5, None, float("nan"), -3.0],  # 2.5 has a fraction, NaN has no integer
            "small": [1, 127, 128, None, -129],  # two out of Int8's range
            "d": ["2024-02-29", "2023-02-29", None, "31/12/2024", "2024-12-31"],  # no 29 Feb 2023
            "s": ["TRUE", "no", None, "maybe", " y "],
        }
    )
    op = parse_op(
        {
            "cast": {
                "columns": {"n": "int", "x": "int", "small": "int8", "d": "date", "s": "bool"},
                "strict": False,
            }
        },
        0,
    )
    got, metrics = run_ops(frame.lazy(), [op], OpContext())
    expected = pl.DataFrame(
        {
            "n": [1, None, None, None, 4],
            "x": [1, None, None, None, -3],
            "small": pl.Series([1, 127, None, None, None], dtype=pl.Int8),
            "d": [date(2024, 2, 29), None, None, None, date(2024, 12, 31)],
            "s": [True, False, None, None, True],
        }
    )
    assert_frame_equal(got, expected)
    assert metrics == {
        "cast#1.n_failed": 2,
        "cast#1.x_failed": 2,
        "cast#1.small_failed": 2,
        "cast#1.d_failed": 2,
        "cast#1.s_failed": 1,
    }
    # every failure is a non-null input that became null
    nulled = {c: (frame[c].is_not_null() & got[c].is_null()).sum() for c in frame.columns}
    assert {f"cast#1.{c}_failed": v for c, v in nulled.items()} == metrics


def test_strict_cast_has_no_counters_and_a_clean_lenient_cast_counts_zero() -> None:
    frame = pl.DataFrame({"n": ["1", None]})
    assert parse_op({"cast": {"n": "int"}}, 0).counters(frame.schema) == {}
    _, metrics = run_ops(
        frame.lazy(), [parse_op({"cast": {"columns": {"n": "int"}, "strict": False}}, 0)], OpContext()
    )
    assert metrics == {"cast#1.n_failed": 0}


def test_cast_whole_floats_and_decimals_to_int() -> None:
    frame = pl.DataFrame(
        {"x": [2.0, -0.0, None, 1e15], "d": [Decimal("3.00"), None, Decimal("-1"), Decimal("0")]}
    )
    got = run({"cast": {"x": "int", "d": "int"}}, frame)
    assert_frame_equal(got, pl.DataFrame({"x": [2, 0, None, 10**15], "d": [3, None, -1, 0]}))


def test_cast_time_zones() -> None:
    frame = pl.DataFrame(
        {
            "zoned": ["2024-01-01T08:00:00+02:00", "2024-06-30T23:30:00-05:00", None],
            "naive_text": ["2024-01-01 08:00:00", "2024-06-30 23:30:00", None],
            "naive": [datetime(2024, 1, 1, 8), datetime(2024, 6, 30, 23, 30), None],
            "ny": pl.Series(
                [datetime(2024, 1, 1, 8), datetime(2024, 6, 30, 23, 30), None]
            ).dt.replace_time_zone("America/New_York"),
        }
    ).with_columns(zoned_naive=pl.col("zoned"), zoned_date=pl.col("zoned"), ny_naive=pl.col("ny"))
    op = {
        "cast": {
            "zoned": "datetime_utc",  # an offset in the text: converted to UTC
            "zoned_naive": "datetime",  # the UTC time, without a zone
            "zoned_date": "date",  # the UTC date
            "naive_text": "datetime_utc",  # no offset: read as UTC
            "naive": "datetime_utc",  # the same wall time, now labelled UTC
            "ny": "datetime_utc",  # the same instant
            "ny_naive": "datetime",  # the UTC wall time
        }
    }
    got = run(op, frame)
    expected = duck(
        """SELECT zoned::TIMESTAMPTZ AS zoned, naive_text::TIMESTAMP::TIMESTAMPTZ AS naive_text,
                  naive::TIMESTAMPTZ AS naive, ny::TIMESTAMPTZ AS ny,
                  zoned::TIMESTAMPTZ::TIMESTAMP AS zoned_naive, zoned::TIMESTAMPTZ::DATE AS zoned_date,
                  ny::TIMESTAMP AS ny_naive
           FROM t""",
        t=frame,
    ).with_columns(pl.col(pl.Datetime("us", "Etc/UTC")).dt.convert_time_zone("UTC"))
    assert_frame_equal(got, expected.select(got.columns))
    assert got["zoned"][0] == datetime.fromisoformat("2024-01-01T06:00:00+00:00")
    assert got["zoned_date"][1] == date(2024, 7, 1)


def test_cast_strings_to_time_bool_and_decimal() -> None:
    frame = pl.DataFrame(
        {"t": ["12:30:00", None, "00:00:01"], "b": ["Yes", "0", None], "m": ["1.25", "-0.5", None]}
    )
    got = run({"cast": {"t": "time", "b": "boolean", "m": "decimal(6,2)"}}, frame)
    expected = pl.DataFrame(
        {
            "t": [time(12, 30), None, time(0, 0, 1)],
            "b": [True, False, None],
            "m": pl.Series([Decimal("1.25"), Decimal("-0.50"), None], dtype=pl.Decimal(6, 2)),
        }
    )
    assert_frame_equal(got, expected)


def test_cast_parameters_are_checked() -> None:
    assert "unknown type 'integr'" in parse_error({"cast": {"n": "integr"}})
    assert "at least 1" in parse_error({"cast": {}})
    assert "strict" in parse_error({"cast": {"columns": {"n": "int"}, "strict": "sometimes"}})
    with pytest.raises(OpSchemaError, match="nope"):
        chain_lineage(pl.Schema({"n": pl.String}), [parse_op({"cast": {"nope": "int"}}, 0)], OpContext())


def test_cast_lineage() -> None:
    assert_lineage_matches({"cast": {"qty": "float", "day": "string", "amount": "float32"}}, sample_frame())
    lineage = parse_op({"cast": {"qty": "float"}}, 0).lineage(sample_frame().schema, OpContext())
    assert lineage["qty"].kind is Kind.CALCULATION and lineage["id"].kind is Kind.DIRECT


# derive


def test_derive_against_duckdb() -> None:
    frame = sample_frame()
    got = run(
        {
            "derive": {
                "total": "amount * qty",
                "label": "upper(name) || '!'",
                "late": "day > DATE '2024-01-01'",
                "id": "id + 100",  # replaces in place
            }
        },
        frame,
    )
    expected = duck(
        """SELECT id + 100 AS id, name, amount, qty, day, "at", ok, amount * qty AS total,
                  upper(name) || '!' AS label, day > DATE '2024-01-01' AS late FROM t""",
        t=frame,
    )
    assert_frame_equal(got, expected)


def test_derive_expressions_all_see_the_input() -> None:
    frame = pl.DataFrame({"a": [1, None, 3]})
    got = run({"derive": {"a": "a + 1", "b": "a * 2"}}, frame)
    assert_frame_equal(got, pl.DataFrame({"a": [2, None, 4], "b": [2, None, 6]}))  # b from the old a
    assert run({"derive": {"b": "a * 2"}}, empty(frame)).schema == pl.Schema({"a": pl.Int64, "b": pl.Int64})


def test_derive_unicode() -> None:
    frame = pl.DataFrame({"s": ["Zoë", "東京", None]})
    got = run({"derive": {"n": "length(s)", "u": "upper(s)"}}, frame)
    assert_frame_equal(got, duck("SELECT s, length(s) n, upper(s) u FROM t", t=frame), check_dtypes=False)


def test_derive_lineage_kinds() -> None:
    op = parse_op(
        {
            "derive": {
                "gain": "amount - qty",
                "one": "1",
                "share": "amount / sum(amount)",
                "rows": "count(*)",
                "rank": "row_number() OVER (ORDER BY amount)",
                "per_day": "sum(qty) OVER (PARTITION BY day)",
            }
        },
        0,
    )
    lineage = op.lineage(sample_frame().schema, OpContext())
    assert (lineage["gain"].kind, lineage["gain"].sources) == (
        Kind.CALCULATION,
        {Origin("", "amount"), Origin("", "qty")},
    )
    assert (lineage["one"].kind, lineage["one"].sources) == (Kind.DERIVED, frozenset())
    assert (lineage["share"].kind, lineage["share"].sources) == (Kind.AGGREGATION, {Origin("", "amount")})
    assert (lineage["rows"].kind, lineage["rows"].sources) == (Kind.AGGREGATION, {Origin("", ALL_ROWS)})
    assert lineage["rank"].kind is Kind.AGGREGATION
    assert (lineage["per_day"].kind, lineage["per_day"].sources) == (
        Kind.AGGREGATION,
        {Origin("", "qty"), Origin("", "day")},
    )


def test_derive_lineage_matches() -> None:
    frame = sample_frame()
    assert_lineage_matches({"derive": {"gain": "amount - qty", "one": "1", "id": "id * 2"}}, frame)
    assert_lineage_matches({"derive": {"share": "amount / sum(amount)", "rows": "count(*)"}}, frame)


def test_derive_parameters_are_checked() -> None:
    assert "cannot parse expression" in parse_error({"derive": {"x": "a +* b"}})
    assert "contains ';'" in parse_error({"derive": {"x": "1; DROP TABLE t"}})
    with pytest.raises(pl.exceptions.ColumnNotFoundError):
        run({"derive": {"x": "nope + 1"}}, sample_frame())


# coalesce


def test_coalesce_against_duckdb() -> None:
    frame = pl.DataFrame(
        {
            "mobile": [None, "07700", None, None],
            "home": ["0161", "0207", None, None],
            "work": ["0113", None, "0114", None],
        }
    )
    got = run({"coalesce": {"columns": ["mobile", "home", "work"], "as": "phone"}}, frame)
    assert_frame_equal(got, duck("SELECT *, coalesce(mobile, home, work) AS phone FROM t", t=frame))
    into_first = run({"coalesce": {"columns": ["mobile", "work"], "as": "mobile"}}, frame)
    assert into_first["mobile"].to_list() == ["0113", "07700", "0114", None]
    assert run({"coalesce": {"columns": ["home", "work"], "as": "p"}}, empty(frame)).schema["p"] == pl.String


def test_coalesce_types() -> None:
    numbers = pl.DataFrame({"i": [1, None, None], "f": [0.5, 2.5, None]})
    got = run({"coalesce": {"columns": ["i", "f"], "as": "x"}}, numbers)
    assert_frame_equal(got["x"].to_frame(), pl.DataFrame({"x": [1.0, 2.5, None]}))  # numbers widen
    with pytest.raises(pl.exceptions.InvalidOperationError, match="different types"):
        run({"coalesce": {"columns": ["i", "s"], "as": "x"}}, pl.DataFrame({"i": [1], "s": ["a"]}))
    utc = pl.DataFrame({"a": [datetime(2024, 1, 1)], "b": [datetime(2024, 1, 2)]})
    with pytest.raises(pl.exceptions.InvalidOperationError, match="cast them first"):
        run(
            {"coalesce": {"columns": ["a", "b"], "as": "x"}},
            utc.with_columns(pl.col("a").dt.replace_time_zone("UTC")),
        )


def test_coalesce_parameters_and_lineage() -> None:
    assert "at least 2" in parse_error({"coalesce": {"columns": ["a"], "as": "x"}})
    assert "as" in parse_error({"coalesce": {"columns": ["a", "b"]}})
    frame = pl.DataFrame({"a": [None, 2, None, 4], "b": [10, None, None, 40], "c": [7, 8, 9, None]})
    assert_lineage_matches({"coalesce": {"columns": ["a", "b", "c"], "as": "x"}}, frame)
    lineage = parse_op({"coalesce": {"columns": ["a", "b"], "as": "a"}}, 0).lineage(frame.schema, OpContext())
    assert (lineage["a"].kind, lineage["a"].sources) == (Kind.CALCULATION, {Origin("", "a"), Origin("", "b")})


# constant


def test_constant_values_and_default_types() -> None:
    frame = pl.DataFrame({"id": [1, 2]})
    at = datetime.fromisoformat("2024-01-01T08:00:00+02:00")
    got = run(
        {
            "constant": {
                "source": "feed_a",
                "batch": 3,
                "rate": 0.5,
                "live": True,
                "day": date(2024, 2, 29),
                "at": at,
            }
        },
        frame,
    )
    expected = duck(
        """SELECT id, 'feed_a' AS source, 3::BIGINT AS batch, 0.5::DOUBLE AS rate, true AS live,
                  DATE '2024-02-29' AS day, TIMESTAMPTZ '2024-01-01 08:00:00+02' AS at FROM t""",
        t=frame,
    ).with_columns(pl.col("at").dt.convert_time_zone("UTC"))
    assert_frame_equal(got, expected)


def test_constant_with_types() -> None:
    frame = pl.DataFrame({"id": [1, 2]})
    op = {
        "constant": {
            "columns": {"batch": 3, "day": "2024-02-29", "missing": None, "price": "1.50", "id": "x"},
            "types": {"batch": "int32", "day": "date", "missing": "float", "price": "decimal(8,2)"},
        }
    }
    got = run(op, frame)
    expected = pl.DataFrame(
        {
            "id": ["x", "x"],  # replaces the column
            "batch": pl.Series([3, 3], dtype=pl.Int32),
            "day": [date(2024, 2, 29)] * 2,
            "missing": pl.Series([None, None], dtype=pl.Float64),
            "price": pl.Series([Decimal("1.50")] * 2, dtype=pl.Decimal(8, 2)),
        }
    )
    assert_frame_equal(got, expected)
    on_empty = run(op, empty(frame))
    assert (on_empty.height, on_empty.schema) == (0, expected.schema)


def test_constant_parameters_are_checked() -> None:
    assert "needs a type" in parse_error({"constant": {"x": None}})
    assert "'abc' does not convert to int" in parse_error(
        {"constant": {"columns": {"x": "abc"}, "types": {"x": "int"}}}
    )
    assert "no value" in parse_error({"constant": {"columns": {"x": 1}, "types": {"y": "int"}}})
    assert "unknown type" in parse_error({"constant": {"columns": {"x": 1}, "types": {"x": "whole"}}})
    assert "x: [1, 2] is not a single value" in parse_error({"constant": {"x": [1, 2]}})


def test_constant_lineage() -> None:
    assert_lineage_matches({"constant": {"source": "feed_a", "id": 0}}, sample_frame())
    lineage = parse_op({"constant": {"source": "feed_a"}}, 0).lineage(sample_frame().schema, OpContext())
    assert (lineage["source"].kind, lineage["source"].sources) == (Kind.DERIVED, frozenset())


# fill_null


def test_fill_null_values_keep_column_types() -> None:
    frame = sample_frame()
    op = {
        "fill_null": {
            "values": {
                "name": "unknown",
                "amount": 0,
                "qty": -1,
                "day": "2000-01-01",
                "at": datetime(2000, 1, 1),
                "ok": False,
            }
        }
    }
    got = run(op, frame)
    expected = duck(
        """SELECT id, coalesce(name, 'unknown') name, coalesce(amount, 0)::DOUBLE amount,
                  coalesce(qty, -1) qty, coalesce(day, DATE '2000-01-01') AS day,
                  coalesce("at", TIMESTAMP '2000-01-01') AS "at",
                  coalesce(ok, false) ok FROM t""",
        t=frame,
    )
    assert_frame_equal(got, expected)
    assert got.schema == frame.schema
    assert run(op, empty(frame)).schema == frame.schema


def test_fill_null_value_that_does_not_fit_the_column_fails_on_the_schema() -> None:
    schema = sample_frame().schema
    for values in ({"qty": "unknown"}, {"qty": 1.5}, {"day": "soon"}):
        op = parse_op({"fill_null": {"values": values}}, 0)
        with pytest.raises(OpSchemaError, match="does not convert"):
            chain_lineage(schema, [op], OpContext())  # found by validate, before any data


def test_fill_null_leaves_nan_alone() -> None:
    got = run({"fill_null": {"values": {"x": 0.0}}}, pl.DataFrame({"x": [float("nan"), None]}))
    assert got["x"].is_nan().to_list() == [True, False] and got["x"][1] == 0.0


def test_fill_null_strategies_against_duckdb() -> None:
    frame = pl.DataFrame(
        {
            "i": [0, 1, 2, 3, 4, 5],
            "f": [None, 1.5, None, 4.0, None, None],
            "n": [None, 1, None, 2, None, 7],
            "s": ["b", None, "a", None, "c", None],
        }
    )
    ordered = "OVER (ORDER BY i ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    following = "OVER (ORDER BY i ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)"

    def each(template: str) -> str:
        return "SELECT i, " + ", ".join(template.format(c=c) + f" AS {c}" for c in "fns") + " FROM t"

    cases = {
        "forward": each("last_value({c} IGNORE NULLS) " + ordered),
        "backward": each("first_value({c} IGNORE NULLS) " + following),
        "min": each("coalesce({c}, min({c}) OVER ())"),
        "max": each("coalesce({c}, max({c}) OVER ())"),
    }
    for strategy, sql in cases.items():
        got = run({"fill_null": {"columns": ["f", "n", "s"], "strategy": strategy}}, frame)
        assert_frame_equal(got, duck(sql, t=frame))
    numbers = {"columns": ["f", "n"]}
    got = run({"fill_null": {**numbers, "strategy": "zero"}}, frame)
    assert_frame_equal(got, duck("SELECT i, coalesce(f, 0)::DOUBLE f, coalesce(n, 0) n, s FROM t", t=frame))
    got = run({"fill_null": {**numbers, "strategy": "mean"}}, frame)
    # the mean of n is 10/3: rounded for an integer column, which keeps its type
    expected = duck(
        "SELECT i, coalesce(f, avg(f) OVER ()) f, coalesce(n, round(avg(n) OVER ())::BIGINT) n, s FROM t",
        t=frame,
    )
    assert_frame_equal(got, expected)
    assert got["f"].to_list() == [2.75, 1.5, 2.75, 4.0, 2.75, 2.75] and got["n"].to_list() == [
        3,
        1,
        3,
        2,
        3,
        7,
    ]


def test_fill_null_mean_rounds_halves_to_even_for_integers_and_works_on_dates() -> None:
    got = run(
        {"fill_null": {"columns": ["n", "d"], "strategy": "mean"}},
        pl.DataFrame(
            {
                "n": pl.Series([1, None, 2], dtype=pl.Int16),
                "d": [date(2024, 1, 1), None, date(2024, 1, 5)],
            }
        ),
    )
    expected = pl.DataFrame(
        {"n": pl.Series([1, 2, 2], dtype=pl.Int16), "d": [date(2024, 1, d) for d in (1, 3, 5)]}
    )
    assert_frame_equal(got, expected)


def test_fill_null_strategies_on_an_empty_frame_and_all_nulls() -> None:
    frame = pl.DataFrame({"f": [None, None]}, schema={"f": pl.Float64})
    for strategy in ("forward", "backward", "mean", "min", "max"):
        got = run({"fill_null": {"columns": ["f"], "strategy": strategy}}, frame)
        assert got["f"].to_list() == [None, None], strategy
        assert (
            run({"fill_null": {"columns": ["f"], "strategy": strategy}}, empty(frame)).schema == frame.schema
        )
    assert run({"fill_null": {"columns": ["f"], "strategy": "zero"}}, frame)["f"].to_list() == [0.0, 0.0]


def test_fill_null_strategy_needs_a_fitting_type() -> None:
    schema = pl.Schema({"s": pl.String, "b": pl.Boolean})
    for strategy, column in (("zero", "s"), ("mean", "s"), ("mean", "b")):
        op = parse_op({"fill_null": {"columns": [column], "strategy": strategy}}, 0)
        with pytest.raises(OpSchemaError, match=f"{strategy} needs"):
            chain_lineage(schema, [op], OpContext())


def test_fill_null_parameters_are_checked() -> None:
    assert "either values" in parse_error({"fill_null": {}})
    assert "either values" in parse_error(
        {"fill_null": {"values": {"a": 1}, "strategy": "zero", "columns": ["a"]}}
    )
    assert "needs the columns" in parse_error({"fill_null": {"strategy": "mean"}})
    assert "columns go with a strategy" in parse_error({"fill_null": {"values": {"a": 1}, "columns": ["b"]}})
    assert "null is not a value" in parse_error({"fill_null": {"values": {"a": None}}})
    assert "a: {'b': 1} is not a single value" in parse_error({"fill_null": {"values": {"a": {"b": 1}}}})
    assert "strategy" in parse_error({"fill_null": {"columns": ["a"], "strategy": "median"}})


def test_fill_null_lineage() -> None:
    frame = sample_frame()
    assert_lineage_matches({"fill_null": {"values": {"name": "?", "qty": 0}}}, frame)
    for strategy in ("forward", "backward", "mean", "zero", "min", "max"):
        op = {"fill_null": {"columns": ["amount", "qty"], "strategy": strategy}}
        assert_lineage_matches(op, frame)
        lineage = parse_op(op, 0).lineage(frame.schema, OpContext())
        assert lineage["qty"].kind is (Kind.CALCULATION if strategy == "zero" else Kind.AGGREGATION)
