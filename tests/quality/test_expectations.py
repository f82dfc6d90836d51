"""Each expectation type on small hand-made frames (nulls, empty frames): exact unexpected counts and
row positions, observed values, and the kwargs parse_suite rejects. No external service; GX itself
is only in test_gx_conformance.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from headwater.errors import PermanentError, SpecError
from headwater.quality.evaluate import RuleResult, evaluate
from headwater.quality.expectations import EXPECTATIONS, QualityContext
from headwater.quality.suite import parse_suite


def suite_of(kind: str, kwargs: dict[str, Any], name: str = "rule") -> Any:
    doc = {"expectations": [{"type": kind, "kwargs": kwargs, "meta": {"headwater": {"name": name}}}]}
    return parse_suite(doc, "suite.json")


def run(frame: pl.DataFrame, kind: str, ctx: QualityContext | None = None, **kwargs: Any) -> RuleResult:
    return evaluate(suite_of(kind, kwargs), frame, ctx).results[0]


def failing_rows(result: RuleResult) -> list[int]:
    assert result.unexpected_index is not None
    return result.unexpected_index.to_list()


GX_TYPES = {
    "expect_column_values_to_not_be_null", "expect_column_values_to_be_unique",
    "expect_column_values_to_be_between", "expect_column_values_to_be_in_set",
    "expect_column_values_to_not_be_in_set", "expect_column_values_to_match_regex",
    "expect_column_values_to_not_match_regex", "expect_column_value_lengths_to_be_between",
    "expect_column_values_to_be_of_type", "expect_column_values_to_be_dateutil_parseable",
    "expect_column_values_to_match_strftime_format", "expect_column_pair_values_a_to_be_greater_than_b",
    "expect_compound_columns_to_be_unique", "expect_table_row_count_to_be_between",
    "expect_table_columns_to_match_set", "expect_column_mean_to_be_between",
    "expect_column_min_to_be_between", "expect_column_max_to_be_between",
    "expect_column_median_to_be_between", "expect_column_stdev_to_be_between",
    "expect_column_proportion_of_unique_values_to_be_between",
}  # fmt: skip
EXTENSIONS = {"expect_column_values_to_be_in_table", "expect_column_max_to_be_recent", "expect_row_condition"}


def test_every_type_has_a_description_and_forbids_unknown_kwargs() -> None:
    assert set(EXPECTATIONS) >= GX_TYPES | EXTENSIONS
    for kind, cls in EXPECTATIONS.items():
        assert kind.startswith("expect_") and cls.type == kind
        assert cls.description and cls.model_config.get("extra") == "forbid"


# --- column map expectations -----------------------------------------------------------------------


def test_not_null_counts_every_row_for_mostly() -> None:
    frame = pl.DataFrame({"x": [1] * 99 + [None]})
    result = run(frame, "expect_column_values_to_not_be_null", column="x", mostly=0.98)
    assert (result.considered, result.unexpected_count, failing_rows(result)) == (100, 1, [99])
    assert result.success and result.unexpected_percent == 1.0


def test_value_lengths_count_characters_and_check_empty_strings() -> None:
    frame = pl.DataFrame({"s": ["ab", "", None, "abcd", "é", "日本"]})
    result = run(frame, "expect_column_value_lengths_to_be_between", column="s", min_value=1, max_value=3)
    assert failing_rows(result) == [1, 3]
    assert (result.considered, result.unexpected_count, result.unexpected_percent) == (5, 2, 40.0)
    strict = run(frame, "expect_column_value_lengths_to_be_between", column="s", min_value=1, strict_min=True)
    assert failing_rows(strict) == [1, 4]
    empty = run(frame.clear(), "expect_column_value_lengths_to_be_between", column="s", max_value=1)
    assert (empty.success, empty.considered, empty.unexpected_count) == (True, 0, 0)


def test_value_lengths_need_a_string_column() -> None:
    with pytest.raises(PermanentError, match="works on strings"):
        run(
            pl.DataFrame({"n": [1, 22]}), "expect_column_value_lengths_to_be_between", column="n", max_value=1
        )
    cat = pl.DataFrame({"c": pl.Series(["a", "bbb", None], dtype=pl.Categorical)})
    result = run(cat, "expect_column_value_lengths_to_be_between", column="c", max_value=2)
    assert failing_rows(result) == [1]


PAIRS = pl.DataFrame({"a": [3.0, 1.0, None, None, 2.0, 4.0], "b": [1.0, 1.0, None, 5.0, None, 4.0]})


@pytest.mark.parametrize(
    ("kwargs", "considered", "rows"),
    [
        ({}, 5, [1, 3, 4, 5]),  # one missing value fails; both missing: skipped
        ({"or_equal": True}, 5, [3, 4]),
        ({"ignore_row_if": "either_value_is_missing"}, 3, [1, 5]),
        ({"ignore_row_if": "neither"}, 6, [1, 2, 3, 4, 5]),
    ],
)
def test_pair_a_greater_than_b(kwargs: dict[str, Any], considered: int, rows: list[int]) -> None:
    kind = "expect_column_pair_values_a_to_be_greater_than_b"
    result = run(PAIRS, kind, column_A="a", column_B="b", **kwargs)
    assert (result.considered, failing_rows(result)) == (considered, rows)
    assert result.unexpected_percent == pytest.approx(100 * len(rows) / considered)
    assert run(PAIRS.clear(), kind, column_A="a", column_B="b", **kwargs).success


COMPOUND = pl.DataFrame(
    {"k": [1, 1, 2, None, None, 2, 3, None], "v": ["x", "x", None, "y", "y", None, "z", None]}
)


@pytest.mark.parametrize(
    ("ignore_row_if", "considered", "rows"),
    [
        ("all_values_are_missing", 7, [0, 1, 2, 3, 4, 5]),  # (2, null) twice is a duplicate
        ("any_value_is_missing", 3, [0, 1]),
        ("never", 8, [0, 1, 2, 3, 4, 5]),  # the one all-null row has no twin
    ],
)
def test_compound_columns_unique(ignore_row_if: str, considered: int, rows: list[int]) -> None:
    kind = "expect_compound_columns_to_be_unique"
    result = run(COMPOUND, kind, column_list=["k", "v"], ignore_row_if=ignore_row_if)
    assert (result.considered, failing_rows(result)) == (considered, rows)
    twice = pl.concat([COMPOUND, COMPOUND.tail(1)])
    assert failing_rows(run(twice, kind, column_list=["k", "v"], ignore_row_if="never"))[-2:] == [7, 8]


# --- dates -----------------------------------------------------------------------------------------

DAYS = pl.DataFrame(
    {"s": ["2020-01-05", "2020-1-5", "2020-02-30", None, "05/01/2020", "", "+2020-01-05", "2020-01-05 "]}
)


def test_strftime_format_follows_python_strptime() -> None:
    """'+2020' (chrono would take a signed year), a trailing space and 30 February fail."""
    kind = "expect_column_values_to_match_strftime_format"
    result = run(DAYS, kind, column="s", strftime_format="%Y-%m-%d")
    assert failing_rows(result) == [2, 4, 5, 6, 7]
    assert (result.considered, result.unexpected_count) == (7, 5)
    stamps = pl.DataFrame(
        {
            "s": [
                "2020-01-05T10:30:00Z",  # Z is an offset for Python's %z
                "2020-01-05T10:30:00+01:00",
                "2020-01-05T10:30:00+0100",
                "2020-01-05T23:59:60Z",  # second 60
                "2020-01-05T10:30:00+24:00",  # a day's offset
                "2020-01-05T10:30:00+01:0030",  # inconsistent colons
                "2020-01-05T10:30:00z",  # Z is case-sensitive
            ]
        }
    )
    result = run(stamps, kind, column="s", strftime_format="%Y-%m-%dT%H:%M:%S%z")
    assert failing_rows(result) == [3, 4, 5, 6]
    months = pl.DataFrame({"s": ["feb 29 2020", "Feb 29 2019", "FEBRUARY 1 2019", "02-29"]})
    assert failing_rows(run(months, kind, column="s", strftime_format="%b %d %Y")) == [1, 2, 3]
    assert failing_rows(run(months, kind, column="s", strftime_format="%m-%d")) == [0, 1, 2, 3]


def test_dateutil_parseable_shapes() -> None:
    result = run(DAYS, "expect_column_values_to_be_dateutil_parseable", column="s")
    assert failing_rows(result) == [2, 5, 6]
    frame = pl.DataFrame(
        {
            "s": [
                "13/01/2020",  # day first: 13 cannot be a month
                "02/30/2020",
                "Sat, 05 Jan 2020 10:30:00 GMT",
                "10:30 pm",
                "13:30 pm",
                "2020-01-05 10:30:00 EST",
                "2020-01-05 10:30:00 utc",
                "March 2020",  # dateutil takes it (day from today); Headwater does not
            ]
        }
    )
    result = run(frame, "expect_column_values_to_be_dateutil_parseable", column="s")
    assert failing_rows(result) == [1, 4, 6, 7]


def test_date_strings_need_a_string_column() -> None:
    frame = pl.DataFrame({"d": [date(2020, 1, 1)]})
    with pytest.raises(PermanentError, match="works on strings"):
        run(frame, "expect_column_values_to_be_dateutil_parseable", column="d")


# --- of_type ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "dtype", "type_", "observed", "success"),
    [
        ([1, 2], pl.Int64, "int64", "int64", True),
        ([1, None], pl.Int64, "int64", "float64", False),  # pandas turns it into float64
        ([1, None], pl.Int64, "float", "float64", True),
        ([1, 2], pl.Int32, "int", "int32", False),  # 'int' is numpy's int64
        (["a", None], pl.String, "str", "str", True),
        (["a", None], pl.String, "object", "str", False),  # pandas 3 strings are not object
        ([True, False], pl.Boolean, "bool", "bool", True),
        ([True, None], pl.Boolean, "bool", "object_[bool]", True),
        ([True, None], pl.Boolean, "int", "object_[bool]", True),  # bool subclasses int
        ([True, None], pl.Boolean, "bool_", "object_[bool]", False),
        ([True, None], pl.Boolean, "object", "object_", True),
        ([None, None], pl.Boolean, "float64", "object_[]", True),  # no value to check
        ([date(2020, 1, 1), None], pl.Date, "datetime64[ns]", "datetime64", True),
        ([Decimal("1.5"), None], pl.Decimal(10, 2), "Decimal", "object_[Decimal]", True),
        ([Decimal("1.5"), None], pl.Decimal(10, 2), "float", "object_[Decimal]", False),
    ],
)
def test_of_type_as_gx_sees_the_pandas_frame(
    values: list[Any], dtype: pl.DataType, type_: str, observed: str, success: bool
) -> None:
    frame = pl.DataFrame({"c": pl.Series(values, dtype=dtype)})
    result = run(frame, "expect_column_values_to_be_of_type", column="c", type_=type_)
    assert (result.observed, result.success) == (observed, success)


def test_of_type_on_empty_and_zoned_columns() -> None:
    empty = pl.DataFrame({"i": pl.Series([], dtype=pl.Int64), "b": pl.Series([], dtype=pl.Boolean)})
    assert run(empty, "expect_column_values_to_be_of_type", column="i", type_="int64").observed == "int64"
    assert run(empty, "expect_column_values_to_be_of_type", column="b", type_="bool").observed == "bool"
    zoned = pl.DataFrame({"t": [datetime(2020, 1, 1, tzinfo=UTC)]})
    assert run(zoned, "expect_column_values_to_be_of_type", column="t", type_="Timestamp").success
    assert not run(zoned, "expect_column_values_to_be_of_type", column="t", type_="datetime64[ns]").success


# --- aggregates ------------------------------------------------------------------------------------


def test_table_columns_match_set() -> None:
    frame = pl.DataFrame({"b": [1], "a": [2]})
    kind = "expect_table_columns_to_match_set"
    exact = run(frame, kind, column_set=["a", "b"])
    assert (exact.success, exact.observed) == (True, ["a", "b"])
    assert not run(frame, kind, column_set=["a"]).success
    assert run(frame, kind, column_set=["a"], exact_match=False).success
    assert run(frame, kind, column_set=["a"], exact_match=None).success
    assert not run(frame, kind, column_set=["a", "c"], exact_match=False).success
    assert not run(frame, kind, column_set=["A", "b"]).success  # case-sensitive, as GX on pandas


def test_median_stdev_and_unique_proportion() -> None:
    frame = pl.DataFrame({"x": [1.0, 2.0, None, 4.0, 10.0], "s": ["a", "a", None, "b", "c"]})
    median = run(frame, "expect_column_median_to_be_between", column="x", min_value=3, max_value=3)
    assert (median.observed, median.success) == (3.0, True)  # (2 + 4) / 2
    stdev = run(frame, "expect_column_stdev_to_be_between", column="x", max_value=4)
    assert stdev.observed == pytest.approx(4.0311288741)  # sample stdev (ddof=1)
    assert not stdev.success
    unique = run(frame, "expect_column_proportion_of_unique_values_to_be_between", column="s", min_value=0.75)
    assert (unique.observed, unique.success) == (0.75, True)  # 3 distinct of 4 non-null


def test_statistics_of_nothing() -> None:
    """One value has no sample stdev, an empty column no median: observed null, the rule fails. The
    unique proportion of no values is 0, as GX reports it."""
    one = pl.DataFrame({"x": [5.0]})
    assert run(one, "expect_column_stdev_to_be_between", column="x", min_value=0).observed is None
    assert not run(one, "expect_column_stdev_to_be_between", column="x", min_value=0).success
    empty = one.clear()
    median = run(empty, "expect_column_median_to_be_between", column="x", min_value=0)
    assert (median.observed, median.success) == (None, False)
    unique = run(empty, "expect_column_proportion_of_unique_values_to_be_between", column="x", max_value=0)
    assert (unique.observed, unique.success) == (0.0, True)


def test_min_max_of_dates_compare_with_iso_bounds() -> None:
    frame = pl.DataFrame({"d": [date(2013, 1, 1), date(2013, 12, 31)]})
    assert run(frame, "expect_column_max_to_be_between", column="d", min_value="2013-12-31").success
    assert not run(
        frame, "expect_column_min_to_be_between", column="d", min_value="2013-01-01T00:00:01"
    ).success


# --- Headwater extensions --------------------------------------------------------------------------

PLANES = pl.DataFrame({"tailnum": ["N1", "N2", None]})


def test_in_table_reads_the_other_table_from_the_context() -> None:
    frame = pl.DataFrame({"tailnum": ["N1", "N3", None, "N2", "N3"]})
    ctx = QualityContext(tables={"planes": PLANES})
    kwargs = {"column": "tailnum", "table": "planes", "table_column": "tailnum"}
    result = run(frame, "expect_column_values_to_be_in_table", ctx, **kwargs)
    assert (result.considered, failing_rows(result), result.success) == (4, [1, 4], False)
    assert suite_of("expect_column_values_to_be_in_table", kwargs).rules[0].expectation.references() == [
        "planes"
    ]
    assert run(frame.clear(), "expect_column_values_to_be_in_table", ctx, **kwargs).success


def test_in_table_casts_keys_and_explains_what_is_missing() -> None:
    kind = "expect_column_values_to_be_in_table"
    frame = pl.DataFrame({"id": [1, 2, 3]})
    small = QualityContext(tables={"other": pl.DataFrame({"id": pl.Series([1, 3], dtype=pl.Int32)})})
    assert failing_rows(run(frame, kind, small, column="id", table="other", table_column="id")) == [1]
    with pytest.raises(PermanentError, match="does not have"):
        run(frame, kind, QualityContext(), column="id", table="other", table_column="id")
    with pytest.raises(PermanentError, match="no column 'key'"):
        run(frame, kind, small, column="id", table="other", table_column="key")
    words = QualityContext(tables={"other": pl.DataFrame({"id": ["one"]})})
    with pytest.raises(PermanentError, match="do not convert"):
        run(frame, kind, words, column="id", table="other", table_column="id")


def test_max_to_be_recent_uses_the_context_time() -> None:
    frame = pl.DataFrame({"t": [datetime(2024, 1, 1, 10), None, datetime(2024, 1, 1, 8)]})
    kind = "expect_column_max_to_be_recent"
    ok = run(
        frame, kind, QualityContext(now=datetime(2024, 1, 1, 12, tzinfo=UTC)), column="t", max_age_hours=2
    )
    assert ok.success and ok.observed["max"] == datetime(2024, 1, 1, 10)
    assert ok.observed["cutoff"] == datetime(2024, 1, 1, 10)
    late = run(frame, kind, QualityContext(now=datetime(2024, 1, 1, 12, 1)), column="t", max_age_hours=2)
    assert not late.success
    with pytest.raises(PermanentError, match=r"QualityContext\.now is None"):
        run(frame, kind, QualityContext(), column="t", max_age_hours=2)
    assert not run(
        frame.clear(), kind, QualityContext(now=datetime(2024, 1, 1)), column="t", max_age_hours=1
    ).success


def test_max_to_be_recent_on_zoned_and_date_columns() -> None:
    kind = "expect_column_max_to_be_recent"
    zoned = pl.DataFrame({"t": [datetime(2024, 1, 1, 10)]}).with_columns(
        pl.col("t").dt.replace_time_zone("Europe/Paris")
    )  # 09:00 UTC
    now = QualityContext(now=datetime(2024, 1, 1, 12))  # naive: UTC
    assert run(zoned, kind, now, column="t", max_age_hours=3).success
    assert not run(zoned, kind, now, column="t", max_age_hours=2.5).success
    days = pl.DataFrame({"d": [date(2024, 1, 1)]})  # its midnight
    assert run(days, kind, now, column="d", max_age_hours=12).success
    assert not run(days, kind, now, column="d", max_age_hours=11.9).success
    with pytest.raises(PermanentError, match="not a date or timestamp"):
        run(pl.DataFrame({"s": ["2024-01-01"]}), kind, now, column="s", max_age_hours=1)
    late = QualityContext(now=datetime(2024, 1, 1) + timedelta(days=1))
    assert not run(days, kind, late, column="d", max_age_hours=23).success


def test_row_condition_false_fails_null_is_not_considered() -> None:
    frame = pl.DataFrame({"x": [0, 2, None, 5], "y": ["a", "b", "c", None]})
    result = run(frame, "expect_row_condition", condition="x > 1 AND y <> 'b'")
    assert (result.considered, failing_rows(result)) == (2, [0, 1])  # rows 2, 3: NULL
    assert result.unexpected_percent == 100.0
    strict = run(frame, "expect_row_condition", condition="COALESCE(x > 1, false)")
    assert failing_rows(strict) == [0, 2]
    assert suite_of("expect_row_condition", {"condition": "x > 1 AND y <> 'b'"}).rules[
        0
    ].expectation.columns() == [
        "x",
        "y",
    ]


def test_row_condition_must_be_boolean_and_name_real_columns() -> None:
    frame = pl.DataFrame({"x": [1]})
    with pytest.raises(PermanentError, match="not true/false"):
        run(frame, "expect_row_condition", condition="x + 1")
    with pytest.raises(PermanentError, match="does not apply"):
        run(frame, "expect_row_condition", condition="nope > 1")


# --- kwargs parse_suite rejects --------------------------------------------------------------------

BAD_KWARGS = [
    ("expect_column_value_lengths_to_be_between", {"column": "s"}, "cannot both be None"),
    (
        "expect_column_value_lengths_to_be_between",
        {"column": "s", "min_value": 3, "max_value": 2},
        "greater than",
    ),
    ("expect_column_value_lengths_to_be_between", {"column": "s", "max_value": -1}, "no possible value"),
    ("expect_column_value_lengths_to_be_between", {"column": "s", "max_value": 2, "colum": "s"}, "colum"),
    (
        "expect_column_values_to_be_between",
        {"column": "x", "min_value": 1, "max_value": 1, "strict_max": True},
        "no value",
    ),
    ("expect_column_values_to_match_regex", {"column": "s", "regex": "("}, "does not compile"),
    ("expect_column_values_to_match_regex", {"column": "s", "regex": "(?<=a)b"}, "not in Polars"),
    ("expect_column_values_to_be_of_type", {"column": "s", "type_": "string"}, "unknown type_ 'string'"),
    ("expect_column_values_to_be_of_type", {"column": "s", "type_": "int64", "type": "x"}, "type"),
    (
        "expect_column_values_to_match_strftime_format",
        {"column": "s", "strftime_format": "%Y-%Q"},
        "bad directive",
    ),
    (
        "expect_column_values_to_match_strftime_format",
        {"column": "s", "strftime_format": "%Y-%j"},
        "day of the year",
    ),
    (
        "expect_column_values_to_match_strftime_format",
        {"column": "s", "strftime_format": "%Y %Y"},
        "redefinition",
    ),
    (
        "expect_column_pair_values_a_to_be_greater_than_b",
        {"column_A": "a", "column_B": "b", "ignore_row_if": "any_value_is_missing"},
        "ignore_row_if",
    ),
    ("expect_compound_columns_to_be_unique", {"column_list": ["a"]}, "at least 2"),
    ("expect_compound_columns_to_be_unique", {"column_list": ["a", "b", "a"]}, "more than once"),
    ("expect_table_columns_to_match_set", {"exact_match": True}, "column_set"),
    ("expect_table_row_count_to_be_between", {"min_value": 5, "max_value": 1}, "greater than"),
    ("expect_column_median_to_be_between", {"column": "x", "min_value": 3, "max_value": 1}, "greater than"),
    ("expect_column_stdev_to_be_between", {"column": "x", "max_value": -0.5}, "no possible value"),
    ("expect_column_proportion_of_unique_values_to_be_between", {"column": "x", "min_value": 1.5}, "above 1"),
    ("expect_column_values_to_be_in_table", {"column": "x", "table": "planes"}, "table_column"),
    ("expect_column_max_to_be_recent", {"column": "t", "max_age_hours": 0}, "greater than 0"),
    ("expect_row_condition", {"condition": "x > 1; DROP TABLE flights"}, "contains ';'"),
    ("expect_row_condition", {"condition": "x >"}, "cannot parse expression"),
    ("expect_row_condition", {"condition": ""}, "non-empty"),
]


@pytest.mark.parametrize(
    ("kind", "kwargs", "fragment"), BAD_KWARGS, ids=[f"{k}-{i}" for i, (k, *_) in enumerate(BAD_KWARGS)]
)
def test_bad_kwargs_are_spec_errors_naming_the_rule(kind: str, kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(SpecError) as caught:
        suite_of(kind, kwargs, name="my_rule")
    message = str(caught.value)
    assert "expectations[0] (my_rule)" in message
    assert fragment in message


def test_gx_0x_spelling_of_the_pair_type_is_unknown() -> None:
    with pytest.raises(SpecError, match="expect_column_pair_values_a_to_be_greater_than_b"):
        suite_of("expect_column_pair_values_A_to_be_greater_than_B", {"column_A": "a", "column_B": "b"})
