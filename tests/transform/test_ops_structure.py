"""Structure ops (explode, unnest, pivot, unpivot, union) against independent computations: DuckDB
SQL (UNNEST, PIVOT via grouped FILTER aggregates, UNION ALL BY NAME) and hand-written frames."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from headwater.transform.lineage import Kind, Origin
from headwater.transform.registry import (
    OpContext,
    OpSchemaError,
    chain_lineage,
    parse_op,
    run_ops,
)
from tests.transform.helpers import duck, parse_error
from tests.transform.lineage_check import assert_lineage_matches


def run(op: dict[str, Any], frame: pl.DataFrame, **others: pl.DataFrame) -> pl.DataFrame:
    ctx = OpContext({k: v.lazy() for k, v in others.items()})
    return parse_op(op, 0).apply(frame.lazy(), ctx).collect()


def schema_error(op: dict[str, Any], schema: dict[str, Any], **others: dict[str, Any]) -> str:
    ctx = OpContext({k: pl.LazyFrame(schema=v) for k, v in others.items()})
    with pytest.raises(OpSchemaError) as info:
        chain_lineage(pl.Schema(schema), [parse_op(op, 0)], ctx)
    return str(info.value)


# explode

LISTS = pl.DataFrame(
    {
        "id": [1, 2, 3, 4, 5],
        "xs": [[1, 2, None], [], None, [4], [5, 6]],
        "ys": [["a", "b", "c"], [], None, ["é☃"], ["e", None]],
    }
)


def test_explode_against_duckdb_unnest() -> None:
    got = run({"explode": {"columns": ["xs", "ys"], "keep_empty": False}}, LISTS)
    # DuckDB's UNNEST drops empty and null lists, and unnests lists of one row side by side
    expected = duck("SELECT id, UNNEST(xs) AS xs, UNNEST(ys) AS ys FROM t ORDER BY id", t=LISTS)
    assert_frame_equal(got, expected, check_row_order=False)
    assert got["id"].to_list() == [1, 1, 1, 4, 5, 5]  # input order kept


def test_explode_keeps_empty_and_null_lists_once_by_default() -> None:
    got = run({"explode": ["xs"]}, LISTS.drop("ys"))
    expected = pl.DataFrame({"id": [1, 1, 1, 2, 3, 4, 5, 5], "xs": [1, 2, None, None, None, 4, 5, 6]})
    assert_frame_equal(got, expected)
    empty = run({"explode": ["xs", "ys"]}, LISTS.clear())
    assert empty.schema == pl.Schema({"id": pl.Int64, "xs": pl.Int64, "ys": pl.String})


def test_explode_errors_and_lineage() -> None:
    with pytest.raises(pl.exceptions.ShapeError):
        run({"explode": ["xs", "ys"]}, pl.DataFrame({"xs": [[1, 2]], "ys": [["a"]]}))
    assert "not a list" in schema_error({"explode": ["id"]}, {"id": pl.Int64})
    assert "at least 1" in parse_error({"explode": []})
    assert_lineage_matches({"explode": ["xs"]}, LISTS)
    lineage = parse_op({"explode": ["xs"]}, 0).lineage(LISTS.schema, OpContext())
    assert lineage["xs"].kind is Kind.CALCULATION and lineage["id"].kind is Kind.DIRECT


# unnest


def test_unnest_struct_against_duckdb() -> None:
    frame = pl.DataFrame(
        {
            "id": [1, 2, 3],
            "s": [{"a": 1, "b": "x"}, None, {"a": None, "b": "ü"}],
            "z": [True, False, None],
        }
    )
    got = run({"unnest": {"column": "s", "prefix": "s_"}}, frame)
    expected = duck("SELECT id, s.a AS s_a, s.b AS s_b, z FROM t", t=frame)
    assert_frame_equal(got, expected)  # the fields take the struct's place
    plain = run({"unnest": {"column": "s"}}, frame)
    assert plain.columns == ["id", "a", "b", "z"]
    assert run({"unnest": {"column": "s"}}, frame.clear()).schema == pl.Schema(
        {"id": pl.Int64, "a": pl.Int64, "b": pl.String, "z": pl.Boolean}
    )


def test_unnest_json_with_a_declared_schema_against_duckdb() -> None:
    frame = pl.DataFrame(
        {
            "k": [1, 2, 3, 4],
            "j": [
                '{"n": 3, "x": 1.5, "s": "Zoë", "d": "2024-02-29", "extra": [1]}',
                '{"n": null}',
                None,
                '{"x": 2, "b": true}',
            ],
        }
    )
    schema = {"n": "int", "x": "float", "s": "string", "d": "date", "b": "bool"}
    got = run({"unnest": {"column": "j", "json_schema": schema}}, frame)
    expected = duck(
        """SELECT k, CAST(j->>'$.n' AS BIGINT) AS n, CAST(j->>'$.x' AS DOUBLE) AS x, j->>'$.s' AS s,
           CAST(j->>'$.d' AS DATE) AS d, CAST(j->>'$.b' AS BOOLEAN) AS b FROM t""",
        t=frame,
    )
    assert_frame_equal(got, expected)


def test_unnest_json_fails_on_text_that_is_not_json() -> None:
    frame = pl.DataFrame({"j": ['{"n": 1}', "not json"]})
    with pytest.raises(pl.exceptions.ComputeError, match="JSON"):
        run({"unnest": {"column": "j", "json_schema": {"n": "int"}}}, frame)


def test_unnest_errors_and_lineage() -> None:
    assert "unknown type" in parse_error({"unnest": {"column": "j", "json_schema": {"n": "integerish"}}})
    assert "JSON text with json_schema" in schema_error({"unnest": {"column": "j"}}, {"j": pl.String})
    struct = pl.Struct({"a": pl.Int64})
    assert "drop json_schema" in schema_error(
        {"unnest": {"column": "s", "json_schema": {"a": "int"}}}, {"s": struct}
    )
    assert "set a prefix" in schema_error({"unnest": {"column": "s"}}, {"s": struct, "a": pl.Int64})
    frame = pl.DataFrame({"s": [{"a": 1, "b": "x"}, {"a": 2, "b": None}, None], "k": [1, 2, 3]})
    assert_lineage_matches({"unnest": {"column": "s", "prefix": "p_"}}, frame)
    lineage = parse_op({"unnest": {"column": "s"}}, 0).lineage(frame.schema, OpContext())
    assert lineage["a"].sources == {Origin("", "s")} and lineage["a"].kind is Kind.DIRECT
    text = pl.DataFrame({"j": ['{"a": 1, "b": "x"}', '{"a": 2}', None], "k": [1, 2, 3]})
    op = {"unnest": {"column": "j", "json_schema": {"a": "int", "b": "string"}}}
    assert parse_op(op, 0).lineage(text.schema, OpContext())["b"].kind is Kind.CALCULATION


# pivot

LONG = pl.DataFrame(
    {
        "store": ["s1", "s1", "s2", "s2", "s3", "s1", None, "s2"],
        "month": ["jan", "feb", "jan", "mar", None, "jan", "feb", "feb"],
        "sales": [10, 20, 30, 40, 50, None, 70, None],
    }
)
PIVOT_SQL = {
    "first": "first",
    "last": "last",
    "sum": "sum",
    "mean": "avg",
    "min": "min",
    "max": "max",
    "count": "count",
}


@pytest.mark.parametrize("agg", list(PIVOT_SQL))
def test_pivot_against_duckdb(agg: str) -> None:
    op = {
        "pivot": {
            "index": ["store"],
            "names_from": "month",
            "values_from": "sales",
            "columns": ["jan", "feb", "apr"],
            "agg": agg,
        }
    }
    got, metrics = run_ops(LONG.lazy(), [parse_op(op, 0)], OpContext())
    fn = PIVOT_SQL[agg]
    cell = (
        "{fn}(sales ORDER BY i) FILTER (WHERE month = '{m}' AND sales IS NOT NULL)"
        if agg in ("first", "last")
        else "{fn}(sales) FILTER (WHERE month = '{m}')"
    )
    cells = ", ".join(f"{cell.format(fn=fn, m=m)} AS {m}" for m in ("jan", "feb", "apr"))
    expected = duck(
        f"SELECT store, {cells} FROM (SELECT *, row_number() OVER () AS i FROM t) "
        "GROUP BY store ORDER BY min(i)",
        t=LONG,
    )
    assert got.schema["jan"] == {"count": pl.UInt32, "mean": pl.Float64}.get(agg, pl.Int64)
    assert_frame_equal(got, expected, check_dtypes=False)  # DuckDB sums to HUGEINT, counts to BIGINT
    assert metrics == {"pivot#1.rows_not_pivoted": 2}  # month mar and the null month


def test_pivot_single_values_fail_on_a_second_value_and_types() -> None:
    unique = LONG.filter(pl.col("sales").is_not_null())
    op = {
        "pivot": {
            "index": ["store"],
            "names_from": "month",
            "values_from": "sales",
            "columns": ["jan", "feb", "mar"],
        }
    }
    got = run(op, unique)
    expected = pl.DataFrame(
        {
            "store": ["s1", "s2", "s3", None],
            "jan": [10, 30, None, None],
            "feb": [20, None, None, 70],
            "mar": [None, 40, None, None],
        }
    )
    assert_frame_equal(got, expected)
    with pytest.raises(pl.exceptions.ComputeError, match="single value"):
        run(op, unique.vstack(unique.head(1)))
    empty = run(op, LONG.clear())
    assert empty.schema == pl.Schema({"store": pl.String, "jan": pl.Int64, "feb": pl.Int64, "mar": pl.Int64})
    # numbers and dates as names: the new columns are named by their text
    frame = pl.DataFrame(
        {
            "id": [1, 1, 1],
            "day": [date(2024, 2, 29), date(2024, 3, 1), date(2024, 3, 2)],
            "v": [1.5, 2.5, 3.5],
        }
    )
    got = run(
        {"pivot": {"names_from": "day", "values_from": "v", "columns": [date(2024, 3, 1), "2024-02-29"]}},
        frame,
    )
    assert got.rows(named=True) == [{"id": 1, "2024-03-01": 2.5, "2024-02-29": 1.5}]


def test_pivot_errors_and_lineage() -> None:
    base = {"index": ["store"], "names_from": "month", "values_from": "sales"}
    assert "columns" in parse_error({"pivot": base})
    assert "distinct" in parse_error({"pivot": {**base, "columns": ["jan", "jan"]}})
    assert "must be different" in parse_error({"pivot": {**base, "index": ["month"], "columns": ["jan"]}})
    assert "agg" in parse_error({"pivot": {**base, "columns": ["jan"], "agg": "median"}})
    assert "names of index columns" in schema_error(
        {"pivot": {**base, "columns": ["store"]}}, dict(LONG.schema)
    )
    assert "not all values of a Int64" in schema_error(
        {"pivot": {**base, "columns": ["jan"]}}, {"store": pl.String, "month": pl.Int64, "sales": pl.Int64}
    )
    op = {"pivot": {**base, "columns": ["jan", "feb"], "agg": "sum"}}
    assert_lineage_matches(op, LONG)
    lineage = parse_op(op, 0).lineage(LONG.schema, OpContext())
    assert lineage["jan"].sources == {Origin("", "month"), Origin("", "sales")}
    assert lineage["jan"].kind is Kind.AGGREGATION and lineage["store"].kind is Kind.DIRECT


# unpivot

WIDE = pl.DataFrame(
    {"store": ["s1", "s2", None], "jan": [1, None, 3], "feb": [1.5, 2.5, None], "note": ["a", "b", "c"]}
)


def test_unpivot_against_duckdb() -> None:
    op = {
        "unpivot": {
            "index": ["store", "note"],
            "columns": ["jan", "feb"],
            "names_to": "month",
            "values_to": "sales",
        }
    }
    got = run(op, WIDE)
    expected = duck(
        "UNPIVOT (SELECT store, note, CAST(jan AS DOUBLE) AS jan, feb FROM t) ON jan, feb "
        "INTO NAME month VALUE sales",
        t=WIDE,
    )
    # DuckDB's UNPIVOT drops nulls (INCLUDE NULLS keeps them but not in every version): compare those
    assert_frame_equal(got.drop_nulls("sales"), expected, check_row_order=False)
    assert got.height == 6 and got["sales"].null_count() == 2
    assert run(op, WIDE.clear()).schema == pl.Schema(
        {"store": pl.String, "note": pl.String, "month": pl.String, "sales": pl.Float64}
    )


def test_unpivot_defaults_errors_and_lineage() -> None:
    got = run(
        {"unpivot": {"index": ["store"]}}, WIDE.drop("note").with_columns(pl.col("jan").cast(pl.Float64))
    )
    assert got.columns == ["store", "name", "value"] and got["name"].to_list() == ["jan"] * 3 + ["feb"] * 3
    assert "differ in type" in schema_error({"unpivot": {"index": ["store"]}}, dict(WIDE.schema))
    op = {"unpivot": {"index": ["store"], "columns": ["jan", "feb"]}}
    assert_lineage_matches(op, WIDE.drop("note"))
    lineage = parse_op(op, 0).lineage(WIDE.schema, OpContext())
    assert lineage["value"].sources == {Origin("", "jan"), Origin("", "feb")}
    assert lineage["name"].kind is Kind.DERIVED and not lineage["name"].sources


# union

A = pl.DataFrame({"id": [1, 2], "x": [1, None], "s": ["p", None]})
B = pl.DataFrame({"x": [2.5, None], "id": [3, 4], "t": [True, None]})
C = pl.DataFrame({"s": ["ü"], "id": [5]})


def test_union_by_name_against_duckdb() -> None:
    op = {"union": {"with": ["b", "c"], "source_column": "origin", "input_label": "a"}}
    got = run(op, A, b=B, c=C)
    expected = duck(
        "SELECT *, 'a' AS origin FROM a UNION ALL BY NAME SELECT *, 'b' AS origin FROM b "
        "UNION ALL BY NAME SELECT *, 'c' AS origin FROM c",
        a=A,
        b=B,
        c=C,
    )
    assert_frame_equal(got, expected.select(got.columns), check_row_order=False)
    assert got.columns == ["id", "x", "s", "origin", "t"] and got["origin"].to_list() == [
        "a",
        "a",
        "b",
        "b",
        "c",
    ]
    assert got.schema["x"] == pl.Float64  # int and float meet as float


def test_union_without_source_column_and_empty_frames() -> None:
    got = run({"union": {"with": ["b"]}}, A.clear(), b=B)
    assert_frame_equal(
        got, B.select(id=pl.col("id"), x=pl.col("x"), s=pl.lit(None, pl.String), t=pl.col("t"))
    )
    assert run({"union": {"with": ["b"]}}, A.clear(), b=B.clear()).height == 0


def test_union_errors_and_lineage() -> None:
    assert "added once" in parse_error({"union": {"with": ["b", "b"]}})
    assert "at least 1" in parse_error({"union": {"with": []}})
    assert "is Int64 in input but String in b" in schema_error(
        {"union": {"with": ["b"]}}, {"k": pl.Int64}, b={"k": pl.String}
    )
    assert "has a column 'origin' already" in schema_error(
        {"union": {"with": ["b"], "source_column": "origin"}}, {"origin": pl.String}, b={"k": pl.String}
    )
    op = {"union": {"with": ["b", "c"], "source_column": "origin"}}
    assert_lineage_matches(op, A, {"b": B, "c": C})
    lineage = parse_op(op, 0).lineage(A.schema, OpContext({"b": B.lazy(), "c": C.lazy()}))
    assert lineage["id"].sources == {Origin("", "id"), Origin("b", "id"), Origin("c", "id")}
    assert lineage["t"].sources == {Origin("b", "t")} and lineage["t"].kind is Kind.DIRECT
    assert lineage["origin"].kind is Kind.DERIVED
    assert parse_op(op, 0).references() == ["b", "c"]


def test_union_of_zone_aware_datetimes_needs_the_same_zone() -> None:
    utc = pl.DataFrame({"t": [datetime(2024, 1, 1, tzinfo=UTC)]})
    paris = utc.with_columns(pl.col("t").dt.convert_time_zone("Europe/Paris"))
    assert "cast one first" in schema_error(
        {"union": {"with": ["p"]}}, dict(utc.schema), p=dict(paris.schema)
    )
    assert (
        run({"union": {"with": ["u"]}}, utc, u=utc)["t"].to_list() == [datetime(2024, 1, 1, tzinfo=UTC)] * 2
    )
