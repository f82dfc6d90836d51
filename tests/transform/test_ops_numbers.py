"""Number ops against independent computations: DuckDB SQL over the same input, or hand-written
frames. No external service needed."""

from __future__ import annotations

import random
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from headwater.transform import OpContext
from headwater.transform.registry import OpParseError, OpSchemaError, chain_lineage, parse_op, run_ops
from tests.conftest import EXAMPLES
from tests.transform.helpers import run
from tests.transform.lineage_check import assert_lineage_matches

NAN = float("nan")
# exactly representable ties (0.125, 2.5, ...) and values printed as ties that are not (2.675, 1.005)
FLOATS = [0.5, 1.5, 2.5, -0.5, -2.5, 0.125, 0.375, -0.125, 2.675, 1.005, 1234.5678, None, 0.0, 1e-9]


def duck(sql: str, **frames: pl.DataFrame) -> pl.DataFrame:
    con = duckdb.connect()
    for name, frame in frames.items():
        con.register(name, frame)
    return pl.DataFrame(pl.from_arrow(con.sql(sql).to_arrow_table()))


# --- round ------------------------------------------------------------------------------------------

DUCK_ROUND = {
    "half_to_even": "round_even({c}, {d})",
    "half_away_from_zero": "round({c}, {d})",
    "to_zero": "trunc({c}, {d})",
}


@pytest.mark.parametrize("decimals", [0, 1, 2])
@pytest.mark.parametrize("mode", sorted(DUCK_ROUND))
def test_round_matches_duckdb(mode: str, decimals: int) -> None:
    frame = pl.DataFrame({"x": FLOATS, "k": range(len(FLOATS))})
    out = run({"round": {"columns": ["x"], "decimals": decimals, "mode": mode}}, frame)
    expr = DUCK_ROUND[mode].format(c="x", d=decimals)
    assert_frame_equal(out, duck(f"SELECT {expr} AS x, k FROM t", t=frame))


def test_round_modes_on_ties() -> None:
    frame = pl.DataFrame({"x": [0.5, 1.5, 2.5, -2.5, 2.7, -2.7]})
    rounded = {
        mode: run({"round": {"columns": ["x"], "mode": mode}}, frame)["x"].to_list() for mode in DUCK_ROUND
    }
    assert rounded["half_to_even"] == [0.0, 2.0, 2.0, -2.0, 3.0, -3.0]
    assert rounded["half_away_from_zero"] == [1.0, 2.0, 3.0, -3.0, 3.0, -3.0]
    assert rounded["to_zero"] == [0.0, 1.0, 2.0, -2.0, 2.0, -2.0]
    assert run({"round": ["x"]}, frame)["x"].to_list() == rounded["half_to_even"]  # the default


def test_round_keeps_integers_and_rounds_decimals_exactly() -> None:
    frame = pl.DataFrame(
        {"i": [15, -25, None], "d": [Decimal("1.125"), Decimal("-2.675"), None], "f": [1.25, None, NAN]},
        schema={"i": pl.Int32, "d": pl.Decimal(10, 3), "f": pl.Float32},
    )
    out = run({"round": {"columns": ["i", "d", "f"], "decimals": 2, "mode": "half_away_from_zero"}}, frame)
    expected = pl.DataFrame(
        {"i": [15, -25, None], "d": [Decimal("1.130"), Decimal("-2.680"), None], "f": [1.25, None, NAN]},
        schema={**frame.schema, "d": pl.Decimal(11, 3)},  # Polars widens the precision by one digit
    )
    assert_frame_equal(out, expected)


# --- round in decimal arithmetic: against Python's decimal module on the same values as text -------------

# ties as printed (1.005 is stored as 1.00499...), negative ties, tiny and large values, and random
# values of up to 6 decimals; every text is what its float prints as, so it is the value the user sees
MONEY = [
    "1.005", "2.675", "0.125", "-1.005", "-2.675", "-0.125", "0.045", "1.015", "1e-9", "-0.0", "0.5",
    "-0.5", "1.0049", "123456789.125", "99999999999.995", "-99999999999.995", "7", "0.0005",
]  # fmt: skip
_rng = random.Random(20261105)
MONEY += [str(Decimal(_rng.randint(-(10**9), 10**9)).scaleb(-_rng.randint(0, 6))) for _ in range(300)]
PY_ROUNDING = {"half_away_from_zero": ROUND_HALF_UP, "half_to_even": ROUND_HALF_EVEN, "to_zero": ROUND_DOWN}


def _py_round(text: str | None, decimals: int, rounding: str = ROUND_HALF_UP) -> Decimal | None:
    return None if text is None else Decimal(text).quantize(Decimal(1).scaleb(-decimals), rounding=rounding)


def test_money_texts_are_what_their_floats_print_as() -> None:
    assert all(Decimal(repr(float(text))) == Decimal(text) for text in MONEY)


@pytest.mark.parametrize("decimals", [0, 1, 2, 3, 9])
@pytest.mark.parametrize("mode", [None, *PY_ROUNDING])
def test_round_decimal_matches_python_decimal(decimals: int, mode: str | None) -> None:
    texts = [*MONEY, None]
    frame = pl.DataFrame({"x": [None if t is None else float(t) for t in texts], "k": range(len(texts))})
    params = {"columns": ["x"], "decimals": decimals, "arithmetic": "decimal"}
    out = run({"round": params | ({"mode": mode} if mode else {})}, frame)
    rounding = PY_ROUNDING[mode or "half_away_from_zero"]  # decimal arithmetic's default: as accountants
    expected = pl.DataFrame(
        {"x": [_py_round(t, decimals, rounding) for t in texts], "k": frame["k"]},
        schema={"x": pl.Decimal(38, decimals), "k": pl.Int64},
    )
    assert_frame_equal(out, expected)


def test_round_decimal_ties_as_accountants_and_float_mode_unchanged() -> None:
    frame = pl.DataFrame({"price": [1.005, 2.675, 0.125, -1.005, 1.015]})
    decimal = run({"round": {"columns": ["price"], "decimals": 2, "arithmetic": "decimal"}}, frame)
    assert decimal["price"].to_list() == [Decimal(v) for v in ("1.01", "2.68", "0.13", "-1.01", "1.02")]
    floats = run({"round": {"columns": ["price"], "decimals": 2, "mode": "half_away_from_zero"}}, frame)
    assert floats["price"].to_list() == [1.0, 2.68, 0.13, -1.0, 1.01]  # 1.005 is stored as 1.00499...


def test_round_decimal_reads_every_numeric_type_exactly() -> None:
    texts = ["1.005", "-2.675", "0.125", None, "12.5"]
    frame = pl.DataFrame(
        {
            "f64": [None if t is None else float(t) for t in texts],
            "f32": [None if t is None else float(t) for t in texts],
            "dec": [None if t is None else Decimal(t) for t in texts],
            "i": [15, -25, None, 0, 7],
            "n": [None] * 5,
        },
        schema={"f64": pl.Float64, "f32": pl.Float32, "dec": pl.Decimal(10, 3), "i": pl.Int32, "n": pl.Null},
    )
    out = run({"round": {"columns": list(frame.columns), "decimals": 2, "arithmetic": "decimal"}}, frame)
    money = [_py_round(t, 2) for t in texts]
    expected = pl.DataFrame(
        {
            "f64": money,
            "f32": money,
            "dec": money,
            "i": [Decimal(i) if i is not None else None for i in (15, -25, None, 0, 7)],
            "n": None,
        },
        schema=dict.fromkeys(frame.columns, pl.Decimal(38, 2)),
    )
    assert_frame_equal(out, expected)


def test_round_of_an_all_null_column_is_null_as_in_sql() -> None:
    frame = pl.DataFrame({"n": [None, None]}, schema={"n": pl.Null})
    assert run({"round": {"columns": ["n"], "decimals": 2}}, frame).schema["n"] == pl.Float64
    out = run({"round": {"columns": ["n"], "decimals": 2}}, frame)
    assert out["n"].to_list() == [None, None]
    empty = run({"round": {"columns": ["n"], "decimals": 2}}, frame.clear())
    assert empty.height == 0 and empty.schema["n"] == pl.Float64


def test_round_decimal_fails_on_nan_naming_the_column() -> None:
    frame = pl.DataFrame({"price": [1.0, NAN]})
    with pytest.raises(pl.exceptions.InvalidOperationError, match=r"column 'price'.*NaN"):
        run({"round": {"columns": ["price"], "decimals": 2, "arithmetic": "decimal"}}, frame)


# --- clip -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("lower", "upper"), [(0, 10), (None, 2.5), (-1.5, None), (3, 3)])
def test_clip_matches_duckdb(lower: float | None, upper: float | None) -> None:
    frame = pl.DataFrame({"x": [-5.0, 0.0, 2.5, 11.0, None, float("inf"), -float("inf")], "k": range(7)})
    params = {
        "columns": ["x"],
        **({"lower": lower} if lower is not None else {}),
        **({"upper": upper} if upper is not None else {}),
    }
    out = run({"clip": params}, frame)
    expr = "x"
    if lower is not None:
        expr = f"CASE WHEN {expr} < {lower} THEN {lower} ELSE {expr} END"
    if upper is not None:
        expr = f"CASE WHEN {expr} > {upper} THEN {upper} ELSE {expr} END"
    assert_frame_equal(out, duck(f"SELECT CAST({expr} AS DOUBLE) AS x, k FROM t", t=frame))


def test_clip_integers_keep_their_type_and_bounds_past_the_type_range_bound_nothing() -> None:
    frame = pl.DataFrame(
        {"i": [-100, 0, 100, None], "u": [0, 7, 255, 3]}, schema={"i": pl.Int8, "u": pl.UInt8}
    )
    out = run({"clip": {"columns": ["i", "u"], "lower": -1000, "upper": 50}}, frame)
    expected = pl.DataFrame({"i": [-100, 0, 50, None], "u": [0, 7, 50, 3]}, schema=frame.schema)
    assert_frame_equal(out, expected)


def test_clip_keeps_nan_and_null() -> None:
    out = run({"clip": {"columns": ["x"], "lower": 0, "upper": 1}}, pl.DataFrame({"x": [NAN, None, 2.0]}))
    assert_frame_equal(out, pl.DataFrame({"x": [NAN, None, 1.0]}))


def test_clip_rejects_fractional_bounds_for_integer_columns() -> None:
    with pytest.raises(OpSchemaError, match="not whole numbers but i is Int64: cast it to float"):
        chain_lineage(
            pl.Schema({"i": pl.Int64}), [parse_op({"clip": {"columns": ["i"], "lower": 0.5}}, 0)], OpContext()
        )


# --- bucket -----------------------------------------------------------------------------------------

PRICES = [0.0, 499.99, 500, 1999, 2000, 2000.01, None, NAN, -float("inf"), float("inf")]


def test_bucket_left_closed_with_labels_as_strings() -> None:
    frame = pl.DataFrame({"price": PRICES})
    op = {"bucket": {"column": "price", "breaks": [500, 2000], "labels": ["budget", "mid", "premium"]}}
    out = run(op, frame)
    bands = ["budget", "budget", "mid", "mid", "premium", "premium", None, None, "budget", "premium"]
    assert_frame_equal(out, frame.with_columns(pl.Series("price_bucket", bands, pl.String)))


def test_bucket_right_closed_as_category_matches_duckdb_case() -> None:
    frame = pl.DataFrame({"price": [p for p in PRICES if p == p]})  # DuckDB: NaN is not null
    op = {
        "bucket": {
            "column": "price",
            "breaks": [500, 2000],
            "closed": "right",
            "output_type": "category",
            "as": "band",
        }
    }
    out = run(op, frame)
    labels = ["(-inf, 500]", "(500, 2000]", "(2000, inf)"]
    expected = duck(
        "SELECT price, CASE WHEN price IS NULL THEN NULL WHEN price <= 500 THEN '(-inf, 500]' "
        "WHEN price <= 2000 THEN '(500, 2000]' ELSE '(2000, inf)' END AS band FROM t",
        t=frame,
    ).with_columns(pl.col("band").cast(pl.Enum(labels)))
    assert_frame_equal(out, expected)
    assert out.schema["band"] == pl.Enum(labels)  # ordered as the bins


def test_bucket_integers_with_fractional_breaks_and_default_labels() -> None:
    frame = pl.DataFrame({"age": [17, 18, 24, 25, None]}, schema={"age": pl.UInt8})
    out = run({"bucket": {"column": "age", "breaks": [18, 24.5], "as": "age_band"}}, frame)
    assert out["age_band"].to_list() == ["(-inf, 18)", "[18, 24.5)", "[18, 24.5)", "[24.5, inf)", None]


# --- scale_minmax, scale_zscore ---------------------------------------------------------------------


def test_scale_minmax_matches_duckdb() -> None:
    frame = pl.DataFrame({"x": [3.0, None, -1.0, 7.0, 0.5], "i": [10, 20, 30, None, 10], "k": range(5)})
    out = run({"scale_minmax": {"columns": ["x", "i"], "suffix": "_s"}}, frame)
    expected = duck(
        "SELECT x, i, k, "
        "(x - min(x) OVER ()) / (max(x) OVER () - min(x) OVER ()) AS x_s, "
        "(i - min(i) OVER ()) / (max(i) OVER () - min(i) OVER ())::DOUBLE AS i_s FROM t",
        t=frame,
    )
    assert_frame_equal(out, expected, check_exact=False, rel_tol=1e-12)


@pytest.mark.parametrize(("ddof", "duck_std"), [(0, "stddev_pop"), (1, "stddev_samp")])
def test_scale_zscore_matches_duckdb(ddof: int, duck_std: str) -> None:
    frame = pl.DataFrame(
        {"x": [3.0, None, -1.0, 7.0, 0.5], "i": [10, 20, 30, None, 10]},
        schema={"x": pl.Float64, "i": pl.Int16},
    )
    out = run({"scale_zscore": {"columns": ["x", "i"], "ddof": ddof}}, frame)
    expected = duck(
        f"SELECT (x - avg(x) OVER ()) / {duck_std}(x) OVER () AS x, "
        f"(i - avg(i) OVER ()) / {duck_std}(i) OVER () AS i FROM t",
        t=frame,
    )
    assert_frame_equal(out, expected, check_exact=False, rel_tol=1e-12)


@pytest.mark.parametrize("op", ["scale_minmax", "scale_zscore"])
def test_scaling_without_spread_gives_zero_and_keeps_null_and_nan(op: str) -> None:
    frame = pl.DataFrame(
        {
            "same": [4.0, 4.0, None, 4.0],
            "one": [None, 9.0, None, None],
            "none": [None, None, None, None],
            "nan": [1.0, NAN, 3.0, None],
        },
        schema={"same": pl.Float64, "one": pl.Float64, "none": pl.Int64, "nan": pl.Float64},
    )
    out = run(
        {op: {"columns": ["same", "one", "none", "nan"], **({"ddof": 1} if op == "scale_zscore" else {})}},
        frame,
    )
    nan_scaled = (
        [0.0, NAN, 1.0, None]
        if op == "scale_minmax"
        else [-0.7071067811865475, NAN, 0.7071067811865475, None]
    )
    expected = pl.DataFrame(
        {
            "same": [0.0, 0.0, None, 0.0],
            "one": [None, 0.0, None, None],
            "none": [None, None, None, None],
            "nan": nan_scaled,
        },
        schema={"same": pl.Float64, "one": pl.Float64, "none": pl.Float64, "nan": pl.Float64},
    )
    assert_frame_equal(out, expected)


@pytest.mark.parametrize("op", ["scale_minmax", "scale_zscore"])
def test_scaling_lineage_is_aggregation_over_the_column(op: str) -> None:
    """The perturbation of lineage_check is affine (x * 2 + 7), and min-max and z-score scaling are
    invariant under it: changing the column does not change its scaled values, so "every declared
    source matters" cannot be shown that way. Check the rest, then show by hand that changing one
    value of the column changes the scaled values of other rows (it is an aggregation)."""
    frame = pl.DataFrame({"x": [1.0, 2.0, 4.0, None], "y": [5, 6, 7, 8], "s": ["a", "b", None, "d"]})
    params = {"columns": ["x", "y"], "suffix": "_scaled"}
    assert_lineage_matches({op: params}, frame, check_every_source_matters=False)
    lineage = parse_op({op: params}, 0).lineage(frame.schema, OpContext())
    assert {
        c: (sorted(o.column for o in lin.sources), lin.kind.value)
        for c, lin in lineage.items()
        if "scaled" in c
    } == {
        "x_scaled": (["x"], "aggregation"),
        "y_scaled": (["y"], "aggregation"),
    }
    before = run({op: params}, frame)
    after = run({op: params}, frame.with_columns(pl.Series("x", [1.0, 2.0, 40.0, None])))
    assert before["x_scaled"][1] != after["x_scaled"][1]  # row 1 changed because row 2 did
    assert before["y_scaled"].equals(after["y_scaled"])


# --- parse_currency ---------------------------------------------------------------------------------

AMOUNTS: dict[str, tuple[float | None, str | None]] = {
    "£1,200.50": (1200.5, "£"),
    " £675.00 ": (675.0, "£"),
    "$ 3,000": (3000.0, "$"),
    "(45.00)": (-45.0, None),
    "(£45)": (-45.0, "£"),
    "£(45.00)": (-45.0, "£"),
    "-£45": (-45.0, "£"),
    "£-45": (-45.0, "£"),
    "\u221212.5": (-12.5, None),
    "£ 1 050": (1050.0, "£"),
    "1'234.5": (1234.5, None),
    "USD 10": (10.0, "USD"),
    "10 eur": (10.0, "EUR"),
    "US$5": (5.0, "US$"),
    "¥1,000": (1000.0, "¥"),
    "£0.00": (0.0, "£"),
    "(0.00)": (0.0, None),
    ".5": (0.5, None),
    "£1200": (1200.0, "£"),
    "TBC": (None, None),
    "£": (None, None),
    "1.200,50 €": (None, None),  # a comma after a point: not a number with decimal "."
    "12,34": (None, None),
    "-(45)": (None, None),
    "£45 GBP": (None, None),
    "£1,20,000": (None, None),
}


def test_parse_currency_point_decimal() -> None:
    values = [*AMOUNTS, "", "   ", None]
    frame = pl.DataFrame({"price": values, "id": range(len(values))})
    out = run({"parse_currency": {"column": "price", "as": "amount", "currency_column": "currency"}}, frame)
    expected = frame.with_columns(
        pl.Series("amount", [a for a, _ in AMOUNTS.values()] + [None] * 3, pl.Float64),
        pl.Series("currency", [c for _, c in AMOUNTS.values()] + [None] * 3, pl.String),
    )
    assert_frame_equal(out, expected)
    assert out["amount"].filter(out["price"] == "(0.00)").item() == 0.0
    assert str(out["amount"].filter(out["price"] == "(0.00)").item()) == "0.0"  # not -0.0


def test_parse_currency_comma_decimal_in_place() -> None:
    values = ["1.200,50 €", "€ 3.000", "12,34", "-0,5 EUR", "1 234,56", "1,200.50", "(7,25)", None, ""]
    out = run({"parse_currency": {"column": "p", "decimal": ","}}, pl.DataFrame({"p": values}))
    assert_frame_equal(
        out, pl.DataFrame({"p": [1200.5, 3000.0, 12.34, -0.5, 1234.56, None, -7.25, None, None]})
    )


def test_parse_currency_counts_unparseable_but_not_blank_values() -> None:
    values = [*AMOUNTS, "", "   ", None]
    result, metrics = run_ops(
        pl.DataFrame({"price": values}).lazy(),
        [parse_op({"parse_currency": {"column": "price"}}, 0)],
        OpContext(),
    )
    assert metrics == {"parse_currency#1.price_invalid": sum(a is None for a, _ in AMOUNTS.values())}
    assert result["price"].null_count() == metrics["parse_currency#1.price_invalid"] + 3


def test_parse_currency_on_the_vendor_feed() -> None:
    feed = pl.read_csv(EXAMPLES / "data" / "vendor_prices.csv", schema_overrides={"price": pl.String})
    out = run({"parse_currency": {"column": "price", "as": "price_gbp"}}, feed)
    expected = [1200.5, 850.0, 12500.0, None, 900.0, 675.0, 1050.0, 1250.0, 2300.0, None, 480.0, 1200.0]
    assert out["price_gbp"].to_list()[: len(expected)] == expected


# --- empty frames, wrong types, bad parameters, lineage ---------------------------------------------

ALL_OPS: list[tuple[dict[str, Any], dict[str, pl.DataType]]] = [
    ({"round": {"columns": ["f", "i"], "decimals": 1}}, {}),
    (
        {"round": {"columns": ["f", "i"], "decimals": 2, "arithmetic": "decimal"}},
        {"f": pl.Decimal(38, 2), "i": pl.Decimal(38, 2)},
    ),
    ({"clip": {"columns": ["f", "i"], "lower": 0, "upper": 10}}, {}),
    ({"bucket": {"column": "f", "breaks": [0, 10]}}, {"f_bucket": pl.String}),
    (
        {"bucket": {"column": "i", "breaks": [0], "labels": ["neg", "pos"], "output_type": "category"}},
        {"i_bucket": pl.Enum(["neg", "pos"])},
    ),
    ({"scale_minmax": {"columns": ["f", "i"]}}, {"i": pl.Float64}),
    ({"scale_zscore": {"columns": ["i"], "suffix": "_z"}}, {"i_z": pl.Float64}),
    (
        {"parse_currency": {"column": "s", "as": "v", "currency_column": "c"}},
        {"v": pl.Float64, "c": pl.String},
    ),
    ({"parse_currency": {"column": "s"}}, {"s": pl.Float64}),
]


@pytest.mark.parametrize(("op", "changed"), ALL_OPS, ids=lambda v: next(iter(v)) if v else "")
def test_empty_frame_gives_empty_frame_of_the_right_schema(
    op: dict[str, Any], changed: dict[str, pl.DataType]
) -> None:
    schema = {"f": pl.Float64, "i": pl.Int64, "s": pl.String}
    out = run(op, pl.DataFrame(schema=schema))
    assert out.height == 0
    assert out.schema == pl.Schema({**schema, **changed})
    assert parse_op(op, 0).output_schema(pl.Schema(schema), OpContext()) == out.schema


@pytest.mark.parametrize(
    ("op", "changed"),
    [o for o in ALL_OPS if "scale" not in next(iter(o[0]))],
    ids=lambda v: next(iter(v)) if v else "",
)
def test_lineage_matches_behaviour(op: dict[str, Any], changed: dict[str, pl.DataType]) -> None:
    frame = pl.DataFrame(
        {
            "f": [0.25, -3.5, None, 4.75, 12.0, 1.0],
            "i": [1, -2, 3, None, 0, 20],
            "s": ["£1,200.50", "(45.00)", None, "TBC", "10 EUR", "3"],
        }
    )
    assert_lineage_matches(op, frame)


def test_numeric_ops_reject_text_columns_from_the_schema() -> None:
    schema = pl.Schema({"s": pl.String, "f": pl.Float64})
    with pytest.raises(OpSchemaError, match="round needs a numeric column, but s is String"):
        chain_lineage(schema, [parse_op({"round": {"columns": ["s"]}}, 0)], OpContext())
    with pytest.raises(OpSchemaError, match="parse_currency needs a text column, but f is Float64"):
        chain_lineage(schema, [parse_op({"parse_currency": {"column": "f"}}, 0)], OpContext())
    with pytest.raises(OpSchemaError, match='unable to find column "x"'):
        chain_lineage(schema, [parse_op({"bucket": {"column": "x", "breaks": [1]}}, 0)], OpContext())


@pytest.mark.parametrize(
    ("op", "message"),
    [
        (
            {"round": {"columns": ["x"], "decimals": -1}},
            "decimals: Input should be greater than or equal to 0",
        ),
        ({"round": {"columns": ["x"], "mode": "half_up"}}, "mode: Input should be 'half_to_even'"),
        (
            {"round": {"columns": ["x"], "decimals": 18, "arithmetic": "decimal"}},
            "decimal arithmetic keeps at most 17 decimals",
        ),
        (
            {"round": {"columns": ["x"], "arithmetic": "exact"}},
            "arithmetic: Input should be 'float' or 'decimal'",
        ),
        ({"clip": {"columns": ["x"]}}, "give lower, upper or both"),
        ({"clip": {"columns": ["x"], "lower": 5, "upper": 1}}, r"lower \(5\) is above upper \(1\)"),
        ({"clip": {"columns": ["x"], "lower": "zero"}}, "lower"),
        ({"bucket": {"column": "x", "breaks": []}}, "breaks: List should have at least 1 item"),
        ({"bucket": {"column": "x", "breaks": [2, 2]}}, "strictly increasing"),
        (
            {"bucket": {"column": "x", "breaks": [1, 2], "labels": ["a", "b"]}},
            "2 breaks make 3 bins, but 2 labels",
        ),
        ({"bucket": {"column": "x", "breaks": [1], "labels": ["a", "a"]}}, "labels must differ"),
        (
            {"bucket": {"column": "x", "breaks": [1], "closed": "both"}},
            "closed: Input should be 'left' or 'right'",
        ),
        ({"scale_zscore": {"columns": ["x"], "ddof": 2}}, "ddof: Input should be 0 or 1"),
        ({"scale_minmax": {"columns": []}}, "columns: List should have at least 1 item"),
        ({"parse_currency": {"column": "x", "decimal": "·"}}, r"decimal: Input should be '\.' or ','"),
        (
            {"parse_currency": {"column": "x", "currency": "c"}},
            r"currency: Extra inputs are not permitted|unknown parameter 'currency'",
        ),
    ],
)
def test_bad_parameters_fail_at_parse_time(op: dict[str, Any], message: str) -> None:
    with pytest.raises(OpParseError, match=message) as err:
        parse_op(op, 0)
    assert err.value.hint and err.value.hint.startswith(f"e.g. {next(iter(op))}:")
