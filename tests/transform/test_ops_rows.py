"""Row ops (filter, flag, drop_nulls, dedupe, sort, limit, sample) against independent computations:
hand-written frames and DuckDB SQL over the same input."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from headwater.transform.lineage import Kind, Origin
from headwater.transform.registry import OpContext, OpSchemaError, chain_lineage, parse_op
from tests.transform.helpers import duck, parse_error, run
from tests.transform.lineage_check import assert_lineage_matches, sample_frame


def vendors() -> pl.DataFrame:
    """Vendor rows sent more than once, with null keys, null timestamps and ties; `i` is the input order."""
    at = [datetime(2024, 1, d, 9) if d else None for d in (3, 1, None, 2, 5, None, None, 4, 4, 4, None, None)]
    return pl.DataFrame(
        {
            "i": range(12),
            "vendor": ["V1", "V2", "V1", "V1", "V3", "V2", None, None, "V4", "V4", "V5", "V5"],
            "city": [
                "Leeds",
                "Zürich",
                "York",
                "Leeds",
                "Köln",
                None,
                "Bath",
                "Bath",
                "Hull",
                "Hull",
                "Ely",
                "Ely",
            ],
            "at": at,
            "price": [10.0, 20.0, None, 12.5, 7.0, 21.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )


# filter


def test_filter_against_duckdb() -> None:
    frame = sample_frame()
    for where in (
        "amount > 0 OR qty >= 5",
        "name IN ('Ann', 'Dee') AND day < DATE '2024-02-01'",
        "ok",
        "NOT ok",
        "name LIKE '%e%'",
    ):
        got = run({"filter": where}, frame)
        assert_frame_equal(got, duck(f"SELECT * FROM t WHERE {where} ORDER BY id", t=frame))


def test_filter_null_condition_drops_the_row_and_unicode_compares() -> None:
    frame = pl.DataFrame({"x": [1, None, 3], "s": ["Zoë", "東京", None]})
    assert run({"filter": "x > 0"}, frame)["x"].to_list() == [1, 3]
    assert run({"filter": "s = '東京'"}, frame)["x"].to_list() == [None]
    assert run({"filter": "x > 0"}, frame.clear()).schema == frame.schema


def test_filter_parameters_and_lineage() -> None:
    assert "cannot parse expression" in parse_error({"filter": "x >"})
    with pytest.raises(OpSchemaError, match="Boolean"):
        chain_lineage(pl.Schema({"x": pl.Int64}), [parse_op({"filter": "x + 1"}, 0)], OpContext())
    assert parse_op({"filter": "amount > 0 OR qty >= 5"}, 0).row_inputs() == ["amount", "qty"]
    assert_lineage_matches({"filter": "amount > 0 OR qty >= 5"}, sample_frame())


# flag


def test_flag_against_duckdb() -> None:
    frame = sample_frame()
    where = "amount > 0 AND name <> 'bob'"
    got = run({"flag": {"as": "good", "where": where}}, frame)
    assert_frame_equal(got, duck(f"SELECT *, coalesce({where}, false) AS good FROM t", t=frame))
    assert got["good"].to_list() == [True, False, False, False]  # null conditions (rows 2, 3) are false


def test_flag_null_as_true_or_null() -> None:
    frame = pl.DataFrame({"x": [20, None, 3]})
    assert run({"flag": {"as": "f", "where": "x > 15", "null_as": True}}, frame)["f"].to_list() == [
        True,
        True,
        False,
    ]
    assert run({"flag": {"as": "f", "where": "x > 15", "null_as": None}}, frame)["f"].to_list() == [
        True,
        None,
        False,
    ]
    assert run({"flag": {"as": "x", "where": "x > 15"}}, frame)["x"].to_list() == [
        True,
        False,
        False,
    ]  # replaces
    assert run({"flag": {"as": "f", "where": "x > 15"}}, frame.clear()).schema == {
        "x": pl.Int64,
        "f": pl.Boolean,
    }
    assert run({"flag": {"as": "f", "where": "NULL"}}, frame)["f"].to_list() == [False] * 3


def test_flag_condition_must_be_boolean() -> None:
    op = parse_op({"flag": {"as": "f", "where": "x + 1"}}, 0)
    with pytest.raises(OpSchemaError, match="gives Int64, not true/false"):
        chain_lineage(pl.Schema({"x": pl.Int64}), [op], OpContext())
    assert "cannot parse" in parse_error({"flag": {"as": "f", "where": "x >"}})
    assert "as" in parse_error({"flag": {"where": "x > 1"}})
    assert "null_as" in parse_error({"flag": {"as": "f", "where": "x > 1", "null_as": "maybe"}})


def test_flag_lineage() -> None:
    op = {"flag": {"as": "good", "where": "amount > 0 OR name = 'bob'"}}
    assert_lineage_matches(op, sample_frame())
    lineage = parse_op(op, 0).lineage(sample_frame().schema, OpContext())
    assert (lineage["good"].kind, lineage["good"].sources) == (
        Kind.DERIVED,
        {Origin("", "amount"), Origin("", "name")},
    )


# drop_nulls


def test_drop_nulls_in_given_columns_against_duckdb() -> None:
    frame = sample_frame()
    got = run({"drop_nulls": ["name", "amount"]}, frame)
    assert_frame_equal(got, duck("SELECT * FROM t WHERE name IS NOT NULL AND amount IS NOT NULL", t=frame))
    assert got["id"].to_list() == [1, 4]


def test_drop_nulls_in_any_column() -> None:
    frame = pl.DataFrame(
        {"a": [1, None, 3, 4], "b": ["x", "y", None, "z"], "c": [0.5, 1.0, 2.0, float("nan")]}
    )
    expected = duck("SELECT * FROM t WHERE a IS NOT NULL AND b IS NOT NULL AND c IS NOT NULL", t=frame)
    for params in ([], None, {"columns": []}):
        assert_frame_equal(run({"drop_nulls": params}, frame), expected)
    assert run({"drop_nulls": []}, frame)["a"].to_list() == [1, 4]  # NaN is not null
    assert run({"drop_nulls": ["a"]}, frame.clear()).schema == frame.schema


def test_drop_nulls_unknown_column_and_lineage() -> None:
    with pytest.raises(pl.exceptions.ColumnNotFoundError):
        run({"drop_nulls": ["nope"]}, sample_frame())
    assert parse_op({"drop_nulls": ["name"]}, 0).row_inputs() == ["name"]
    assert_lineage_matches({"drop_nulls": ["name", "amount"]}, sample_frame())
    assert_lineage_matches({"drop_nulls": []}, sample_frame())


# dedupe


def duck_dedupe(frame: pl.DataFrame, keep: str, descending: bool = False) -> pl.DataFrame:
    """One row per vendor by `at` (a null `at` never wins), ties and no order by input order."""
    towards = "DESC" if (keep == "last") != descending else "ASC"
    tie = "DESC" if keep == "last" else "ASC"
    return duck(
        f"""SELECT * FROM t
            QUALIFY row_number() OVER (PARTITION BY vendor ORDER BY "at" {towards} NULLS LAST, i {tie}) = 1
            ORDER BY i""",
        t=frame,
    )


@pytest.mark.parametrize("keep", ["first", "last"])
@pytest.mark.parametrize("descending", [False, True])
def test_dedupe_by_order_against_duckdb(keep: str, descending: bool) -> None:
    frame = vendors()
    op = {"dedupe": {"key": ["vendor"], "order_by": ["at"], "keep": keep, "descending": descending}}
    assert_frame_equal(run(op, frame), duck_dedupe(frame, keep, descending))


def test_dedupe_by_order_by_hand() -> None:
    got = run({"dedupe": {"key": ["vendor"], "order_by": ["at"], "keep": "last"}}, vendors())
    # V1: the latest is row 0 (Jan 3), not row 2 (no timestamp); V2: row 1 over row 5 (no timestamp);
    # the null vendor is one key: row 7; V4: a tie on Jan 4, the later row (9); V5: no timestamps, the
    # later row (11). Rows keep their input order.
    assert got["i"].to_list() == [0, 1, 4, 7, 9, 11]
    got = run({"dedupe": {"key": ["vendor"], "order_by": ["at"], "keep": "first"}}, vendors())
    assert got["i"].to_list() == [1, 3, 4, 7, 8, 10]


def test_dedupe_without_order_and_keep_none_against_duckdb() -> None:
    frame = vendors()
    for keep, tie in (("first", "ASC"), ("last", "DESC")):
        expected = duck(
            "SELECT * FROM t QUALIFY row_number() OVER "
            f"(PARTITION BY vendor, city ORDER BY i {tie}) = 1 ORDER BY i",
            t=frame,
        )
        assert_frame_equal(run({"dedupe": {"key": ["vendor", "city"], "keep": keep}}, frame), expected)
    expected = duck("SELECT * FROM t QUALIFY count(*) OVER (PARTITION BY vendor) = 1 ORDER BY i", t=frame)
    assert_frame_equal(run({"dedupe": {"key": ["vendor"], "keep": "none"}}, frame), expected)
    assert run({"dedupe": {"key": ["vendor"], "keep": "none"}}, frame)["i"].to_list() == [4]


def test_dedupe_empty_frame_and_parameters() -> None:
    frame = vendors()
    got = run({"dedupe": {"key": ["vendor"], "order_by": ["at"]}}, frame.clear())
    assert (got.height, got.schema) == (0, frame.schema)
    assert "do not apply" in parse_error({"dedupe": {"key": ["a"], "keep": "none", "order_by": ["b"]}})
    assert "descending needs order_by" in parse_error({"dedupe": {"key": ["a"], "descending": True}})
    assert "at least 1" in parse_error({"dedupe": {"key": []}})
    assert "keep" in parse_error({"dedupe": {"key": ["a"], "keep": "any"}})
    with pytest.raises(pl.exceptions.ColumnNotFoundError):
        run({"dedupe": {"key": ["vendor"], "order_by": ["nope"]}}, frame)


def test_dedupe_lineage() -> None:
    frame = vendors()
    op = {"dedupe": {"key": ["vendor"], "order_by": ["at"], "keep": "last"}}
    assert parse_op(op, 0).row_inputs() == ["vendor", "at"]
    assert_lineage_matches(op, frame)
    assert_lineage_matches({"dedupe": {"key": ["vendor", "city"], "keep": "none"}}, frame)


# sort


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("nulls_last", [False, True])
def test_sort_against_duckdb(descending: bool, nulls_last: bool) -> None:
    frame = vendors()
    order = f"{'DESC' if descending else 'ASC'} NULLS {'LAST' if nulls_last else 'FIRST'}"
    got = run({"sort": {"by": ["city", "at"], "descending": descending, "nulls_last": nulls_last}}, frame)
    expected = duck(f'SELECT * FROM t ORDER BY city {order}, "at" {order}, i', t=frame)  # ties: input order
    assert_frame_equal(got, expected)


def test_sort_unicode_empty_and_lineage() -> None:
    frame = pl.DataFrame({"s": ["b", "Ä", "a", "東", "B"]})
    assert run({"sort": ["s"]}, frame)["s"].to_list() == sorted(frame["s"].to_list())  # by code point
    assert run({"sort": ["s"]}, frame.clear()).schema == frame.schema
    assert "at least 1" in parse_error({"sort": []})
    assert parse_op({"sort": ["city", "at"]}, 0).row_inputs() == ["city", "at"]
    assert_lineage_matches({"sort": {"by": ["city"], "descending": True}}, vendors())


# limit


def test_limit_against_duckdb() -> None:
    frame = vendors()
    for n, offset in ((3, 0), (3, 8), (0, 0), (20, 0), (4, 20)):
        got = run({"limit": {"n": n, "offset": offset}}, frame)
        assert_frame_equal(got, duck(f"SELECT * FROM t ORDER BY i LIMIT {n} OFFSET {offset}", t=frame))
    assert run({"limit": 2}, frame)["i"].to_list() == [0, 1]
    assert run({"limit": 2}, frame.clear()).schema == frame.schema


def test_limit_parameters_and_lineage() -> None:
    assert "greater than or equal to 0" in parse_error({"limit": -1})
    assert "valid integer" in parse_error({"limit": 2.5})
    assert "valid integer" in parse_error({"limit": {"n": 1, "offset": True}})
    assert_lineage_matches({"limit": {"n": 2, "offset": 1}}, sample_frame())


# sample


def many() -> pl.DataFrame:
    return pl.DataFrame(
        {"i": range(200), "s": [f"r{k}" for k in range(200)], "x": [k / 3 for k in range(200)]}
    )


def test_sample_n_is_a_subset_of_whole_rows_in_input_order() -> None:
    frame = many()
    got = run({"sample": {"n": 15, "seed": 7}}, frame)
    assert got.height == 15
    assert got["i"].is_sorted() and got["i"].n_unique() == 15
    assert_frame_equal(got, frame.filter(pl.col("i").is_in(got["i"].implode())))  # rows unchanged
    assert got["i"].to_list() != list(range(15))  # not just the head


def test_sample_is_reproducible_and_the_seed_matters() -> None:
    frame = many()
    chosen = {seed: run({"sample": {"n": 20, "seed": seed}}, frame)["i"].to_list() for seed in (1, 2, 2**63)}
    assert run({"sample": {"n": 20, "seed": 1}}, frame)["i"].to_list() == chosen[1]
    assert len({tuple(v) for v in chosen.values()}) == 3
    # the choice depends on positions only: other values, same rows
    other = frame.with_columns(pl.col("s") + "!", -pl.col("x"))
    assert run({"sample": {"n": 20, "seed": 1}}, other)["i"].to_list() == chosen[1]


def test_sample_sizes() -> None:
    frame = many()
    for fraction, expected in ((0.1, 20), (0.333, 66), (0.0, 0), (1.0, 200), (0.004, 0)):
        assert run({"sample": {"fraction": fraction, "seed": 3}}, frame).height == expected  # rounded down
    assert_frame_equal(run({"sample": {"n": 500, "seed": 3}}, frame), frame)  # fewer rows than n: all
    assert run({"sample": {"n": 0, "seed": 3}}, frame).height == 0
    on_empty = run({"sample": {"fraction": 0.5, "seed": 3}}, frame.clear())
    assert (on_empty.height, on_empty.schema) == (0, frame.schema)


def test_sample_parameters_are_checked() -> None:
    assert "seed: Field required" in parse_error({"sample": {"n": 10}})
    assert "seed: Input should be a valid integer" in parse_error({"sample": {"n": 10, "seed": 1.5}})
    assert "seed: Input should be a valid integer" in parse_error({"sample": {"n": 10, "seed": "42"}})
    assert "seed" in parse_error({"sample": {"n": 10, "seed": -1}})
    assert "either n or fraction" in parse_error({"sample": {"n": 10, "fraction": 0.5, "seed": 1}})
    assert "either n or fraction" in parse_error({"sample": {"seed": 1}})
    assert "fraction" in parse_error({"sample": {"fraction": 1.5, "seed": 1}})


def test_sample_lineage() -> None:
    # The sample is random in the seed but not in the data: every column passes through (direct), and
    # no column decides which rows are kept, so the perturbation check holds with no row inputs.
    op = parse_op({"sample": {"n": 2, "seed": 11}}, 0)
    assert op.row_inputs() == []
    assert_lineage_matches(op, sample_frame())
    assert all(lin.kind is Kind.DIRECT for lin in op.lineage(sample_frame().schema, OpContext()).values())
