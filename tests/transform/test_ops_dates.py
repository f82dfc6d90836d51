"""Date ops (make_date, parse_datetime, convert_timezone, truncate_date, date_part, date_diff, age)
against independent computations: DuckDB SQL, Python's zoneinfo and hand-written frames."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

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
from tests.transform.helpers import duck, parse_error, run
from tests.transform.lineage_check import assert_lineage_matches

NY = ZoneInfo("America/New_York")
PARIS = ZoneInfo("Europe/Paris")


def counted(op: dict[str, Any], frame: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, Any]]:
    return run_ops(frame.lazy(), [parse_op(op, 0)], OpContext())


def schema_error(op: dict[str, Any], schema: dict[str, Any]) -> str:
    with pytest.raises(OpSchemaError) as info:
        chain_lineage(pl.Schema(schema), [parse_op(op, 0)], OpContext())
    return str(info.value)


# make_date

MAKE = {"make_date": {"year": "y", "month": "m", "day": "d", "as": "dt"}}


def test_make_date_against_duckdb() -> None:
    frame = pl.DataFrame(
        {"y": [2024, 2023, None, 1999, 2000], "m": [2, 12, 1, 1, 2], "d": [29, 31, 1, None, 29]}
    )
    expected = duck("SELECT y, m, d, make_date(y, m, d) AS dt FROM t", t=frame)
    assert_frame_equal(run(MAKE, frame), expected)
    assert run(MAKE, frame.clear()).schema == pl.Schema(
        {"y": pl.Int64, "m": pl.Int64, "d": pl.Int64, "dt": pl.Date}
    )


def test_make_date_strict_fails_on_a_date_that_does_not_exist() -> None:
    frame = pl.DataFrame({"y": [2024, 2023], "m": [2, 2], "d": [29, 29]})
    with pytest.raises(pl.exceptions.ComputeError, match="2023, 2, 29"):
        run(MAKE, frame)


def test_make_date_lenient_nulls_and_counts_impossible_dates() -> None:
    frame = pl.DataFrame(
        {
            "y": [2024, 2023, None, 2024, 2024, 0, 2024, 2100],
            "m": [2, 2, 1, 13, 4, 1, 12, 2],
            "d": [29, 29, 1, 1, 31, 1, 31, 29],
        }
    )
    got, metrics = counted({"make_date": {**MAKE["make_date"], "strict": False}}, frame)
    expected = [date(2024, 2, 29), None, None, None, None, None, date(2024, 12, 31), None]
    assert got["dt"].to_list() == expected
    assert metrics == {"make_date#1.dt_invalid": 5}  # the null year is missing, not invalid


def test_make_date_reads_integer_text_and_lineage() -> None:
    frame = pl.DataFrame({"y": ["2024", "1999"], "m": ["2", "12"], "d": ["29", "31"]})
    assert run(MAKE, frame)["dt"].to_list() == [date(2024, 2, 29), date(1999, 12, 31)]
    # perturbed months/days (x * 2 + 7) must still make dates in strict mode
    lineage_frame = pl.DataFrame(
        {"y": [2024, 2023, None], "m": [1, 2, 1], "d": [3, 10, 1], "x": ["a", None, "b"]}
    )
    assert_lineage_matches(MAKE, lineage_frame)
    assert "as" in parse_error({"make_date": {"year": "y", "month": "m", "day": "d"}})


# parse_datetime


def test_parse_datetime_tries_formats_in_order_and_counts_failures() -> None:
    frame = pl.DataFrame(
        {"s": ["01/02/2024", "2024-02-29 13:45", "31/12/2023", "junk", None, "2023-02-29 00:00", ""]}
    )
    day_first = {"parse_datetime": {"column": "s", "formats": ["%d/%m/%Y", "%m/%d/%Y", "%Y-%m-%d %H:%M"]}}
    got, metrics = counted(day_first, frame)
    expected = [
        datetime(2024, 2, 1),
        datetime(2024, 2, 29, 13, 45),
        datetime(2023, 12, 31),
        None,
        None,
        None,
        None,
    ]
    assert_frame_equal(got, pl.DataFrame({"s": expected}, schema={"s": pl.Datetime("us")}))
    assert metrics == {"parse_datetime#1.s_unparsed": 3}  # junk, 2023-02-29 and ""; not the null
    month_first = {
        "parse_datetime": {"column": "s", "formats": ["%m/%d/%Y", "%d/%m/%Y"], "as": "p", "to": "date"}
    }
    got = run(month_first, frame)
    assert got["p"].to_list() == [date(2024, 1, 2), None, date(2023, 12, 31), None, None, None, None]
    assert got["s"].equals(frame["s"])


def test_parse_datetime_in_a_time_zone_against_zoneinfo() -> None:
    texts = [
        "2024-03-10 01:59",  # just before New York springs forward
        "2024-03-10 02:30",  # does not exist there
        "2024-11-03 01:30",  # happens twice
        "2024-07-01 12:00",
        "2024-07-01T12:00:00+0200",  # an explicit offset is converted
        None,
    ]
    frame = pl.DataFrame({"s": texts})
    params = {
        "column": "s",
        "formats": ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S%z"],
        "time_zone": "America/New_York",
    }

    def local(y: int, m: int, d: int, h: int, mi: int, fold: int = 0) -> datetime:
        return datetime(y, m, d, h, mi, tzinfo=NY, fold=fold)

    for ambiguous, fold in (("earliest", 0), ("latest", 1)):
        got, metrics = counted({"parse_datetime": {**params, "ambiguous": ambiguous}}, frame)
        expected = [
            local(2024, 3, 10, 1, 59),
            None,
            local(2024, 11, 3, 1, 30, fold),
            local(2024, 7, 1, 12, 0),
            datetime(2024, 7, 1, 10, tzinfo=UTC).astimezone(NY),
            None,
        ]
        assert got.schema["s"] == pl.Datetime("us", "America/New_York")
        assert got["s"].to_list() == expected
        assert metrics == {"parse_datetime#1.s_unparsed": 1}
    # offsets only, no time zone: UTC
    got = run({"parse_datetime": {"column": "s", "formats": ["%Y-%m-%dT%H:%M:%S%z"]}}, frame)
    assert got.schema["s"] == pl.Datetime("us", "UTC")
    assert got["s"].to_list()[4] == datetime(2024, 7, 1, 10, tzinfo=UTC)


def test_parse_datetime_empty_frame_and_types() -> None:
    op = {"parse_datetime": {"column": "s", "formats": ["%Y-%m-%d"], "to": "date", "as": "d"}}
    got = run(op, pl.DataFrame({"s": []}, schema={"s": pl.String}))
    assert got.schema == pl.Schema({"s": pl.String, "d": pl.Date}) and got.height == 0
    assert "not text" in schema_error(op, {"s": pl.Date})


def test_parse_datetime_parameters_are_checked() -> None:
    assert "does not read a full date" in parse_error(
        {"parse_datetime": {"column": "s", "formats": ["%H:%M"]}}
    )
    assert "does not read a full date" in parse_error({"parse_datetime": {"column": "s", "formats": ["%Q"]}})
    assert "at least 1" in parse_error({"parse_datetime": {"column": "s", "formats": []}})
    mixed = {"column": "s", "formats": ["%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M%z"]}
    assert "need a time_zone" in parse_error({"parse_datetime": mixed})
    parse_op({"parse_datetime": {**mixed, "time_zone": "UTC"}}, 0)
    assert "unknown time zone 'Mars/Olympus'" in parse_error(
        {"parse_datetime": {"column": "s", "formats": ["%Y-%m-%d"], "time_zone": "Mars/Olympus"}}
    )


def test_parse_datetime_lineage() -> None:
    frame = pl.DataFrame({"s": ["2024-01-02", None, "2024-02-29"], "other": [1, 2, None]})
    assert_lineage_matches({"parse_datetime": {"column": "s", "formats": ["%Y-%m-%d"], "as": "d"}}, frame)
    assert_lineage_matches({"parse_datetime": {"column": "s", "formats": ["%Y-%m-%d"]}}, frame)


# convert_timezone


def test_convert_timezone_of_zone_aware_columns_against_zoneinfo() -> None:
    instants = [datetime(2024, 3, 31, 0, 30, tzinfo=UTC), datetime(2024, 10, 27, 1, 30, tzinfo=UTC), None]
    frame = pl.DataFrame({"t": instants})
    got = run({"convert_timezone": {"columns": ["t"], "to": "Europe/Paris"}}, frame)
    assert got.schema["t"] == pl.Datetime("us", "Europe/Paris")
    assert got["t"].to_list() == [t and t.astimezone(PARIS) for t in instants]
    assert [t and t.hour for t in got["t"].to_list()] == [1, 2, None]  # CET before, CET after the change


def test_convert_timezone_reads_naive_values_as_local_and_counts_missing_local_times() -> None:
    naive = [datetime(2024, 3, 10, 2, 30), datetime(2024, 11, 3, 1, 30), datetime(2024, 2, 29, 23), None]
    frame = pl.DataFrame({"n": naive, "a": [datetime(2024, 1, 1, tzinfo=NY)] * 4})
    op = {"convert_timezone": {"columns": ["n", "a"], "from": "America/New_York", "to": "UTC"}}
    got, metrics = counted(op, frame)
    expected_n = [None, datetime(2024, 11, 3, 5, 30, tzinfo=UTC), datetime(2024, 3, 1, 4, tzinfo=UTC), None]
    assert got["n"].to_list() == expected_n
    assert got["a"].to_list() == [datetime(2024, 1, 1, 5, tzinfo=UTC)] * 4  # its own zone, not `from`
    assert metrics == {"convert_timezone#1.n_not_local_time": 1}
    got = run({"convert_timezone": {**op["convert_timezone"], "ambiguous": "latest"}}, frame)
    assert got["n"][1] == datetime(2024, 11, 3, 6, 30, tzinfo=UTC)
    assert run(op, frame.clear()).schema == pl.Schema(
        {"n": pl.Datetime("us", "UTC"), "a": pl.Datetime("us", "UTC")}
    )


def test_convert_timezone_errors_and_lineage() -> None:
    assert "no time zone; say which with `from`" in schema_error(
        {"convert_timezone": {"columns": ["n"], "to": "UTC"}}, {"n": pl.Datetime("us")}
    )
    assert "not a datetime" in schema_error(
        {"convert_timezone": {"columns": ["d"], "to": "UTC"}}, {"d": pl.Date}
    )
    assert "unknown time zone" in parse_error({"convert_timezone": {"columns": ["n"], "to": "Nowhere/Land"}})
    frame = pl.DataFrame({"n": [datetime(2024, 1, 1, 8), None, datetime(2024, 6, 1)], "x": ["a", "b", None]})
    assert_lineage_matches(
        {"convert_timezone": {"columns": ["n"], "from": "Europe/Paris", "to": "UTC"}}, frame
    )


# truncate_date

UNITS = ["day", "week", "month", "quarter", "year"]


@pytest.mark.parametrize("unit", UNITS)
def test_truncate_date_against_duckdb(unit: str) -> None:
    frame = pl.DataFrame(
        {
            "d": [date(2024, 2, 29), date(2024, 1, 1), date(2023, 12, 31), None, date(2021, 1, 3)],
            "t": [
                datetime(2024, 2, 29, 23, 59),
                None,
                datetime(2023, 12, 31, 0, 0, 1),
                datetime(2024, 5, 5),
                None,
            ],
        }
    )
    got = run({"truncate_date": {"columns": ["d", "t"], "unit": unit}}, frame)
    expected = duck(
        f"SELECT CAST(date_trunc('{unit}', d) AS DATE) AS d, date_trunc('{unit}', t) AS t FROM f", f=frame
    )
    assert_frame_equal(got, expected)


def test_truncate_date_of_zone_aware_values_goes_to_local_midnight() -> None:
    frame = pl.DataFrame({"t": [datetime(2024, 3, 10, 12, tzinfo=NY), datetime(2024, 12, 31, 23, tzinfo=NY)]})
    got = {u: run({"truncate_date": {"columns": ["t"], "unit": u}}, frame)["t"].to_list() for u in UNITS}
    assert got["day"] == [datetime(2024, 3, 10, tzinfo=NY), datetime(2024, 12, 31, tzinfo=NY)]
    assert got["week"] == [datetime(2024, 3, 4, tzinfo=NY), datetime(2024, 12, 30, tzinfo=NY)]
    assert got["quarter"] == [datetime(2024, 1, 1, tzinfo=NY), datetime(2024, 10, 1, tzinfo=NY)]
    assert [t.utcoffset() for t in got["day"]] == [timedelta(hours=-5)] * 2  # midnight before the change
    empty = run({"truncate_date": {"columns": ["t"], "unit": "month"}}, frame.clear())
    assert empty.schema == frame.schema


def test_truncate_date_errors_and_lineage() -> None:
    assert "unit" in parse_error({"truncate_date": {"columns": ["d"], "unit": "fortnight"}})
    assert "not a date or datetime" in schema_error(
        {"truncate_date": {"columns": ["s"], "unit": "day"}}, {"s": pl.String}
    )
    frame = pl.DataFrame({"d": [date(2024, 1, 31), None, date(2024, 3, 30)], "x": [1, 2, 3]})
    assert_lineage_matches({"truncate_date": {"columns": ["d"], "unit": "month"}}, frame)


# date_part

ALL_PARTS = ["year", "quarter", "month", "week", "day", "weekday", "day_of_year", "hour", "minute", "second"]


def test_date_part_against_duckdb() -> None:
    frame = pl.DataFrame(
        {
            "t": [
                datetime(2024, 2, 29, 13, 45, 59),
                datetime(2021, 1, 3, 0, 0, 0),  # ISO week 53 of 2020, a Sunday
                None,
                datetime(2024, 12, 30, 23, 1, 2),  # ISO week 1 of 2025
            ]
        }
    )
    got = run({"date_part": {"column": "t", "parts": ALL_PARTS, "prefix": ""}}, frame)
    sql = """SELECT t, year(t) AS year, quarter(t) AS quarter, month(t) AS month, week(t) AS week,
        day(t) AS day, isodow(t) AS weekday, dayofyear(t) AS day_of_year, hour(t) AS hour,
        minute(t) AS minute, second(t) AS second FROM f"""
    expected = duck(sql, f=frame).with_columns(pl.col(ALL_PARTS).cast(pl.Int32))
    assert_frame_equal(got, expected)


def test_date_part_of_dates_zone_aware_values_and_empty() -> None:
    frame = pl.DataFrame({"d": [date(2024, 2, 29), None], "t": [datetime(2024, 1, 1, 4, tzinfo=UTC)] * 2})
    got = run({"date_part": {"column": "d", "parts": ["year", "day_of_year", "weekday"]}}, frame)
    assert got.select("d_year", "d_day_of_year", "d_weekday").rows() == [(2024, 60, 4), (None, None, None)]
    local = run(
        {"date_part": {"column": "t", "parts": ["day", "hour"]}},
        frame.with_columns(pl.col("t").dt.convert_time_zone("America/New_York")),
    )
    assert local.select("t_day", "t_hour").row(0) == (31, 23)  # local time, the day before
    assert "has no time parts" in schema_error(
        {"date_part": {"column": "d", "parts": ["hour"]}}, {"d": pl.Date}
    )
    assert "parts" in parse_error({"date_part": {"column": "d", "parts": ["century"]}})
    empty = run({"date_part": {"column": "d", "parts": ["month"], "prefix": "p_"}}, frame.clear())
    assert empty.schema == pl.Schema({"d": pl.Date, "t": pl.Datetime("us", "UTC"), "p_month": pl.Int32})


def test_date_part_lineage() -> None:
    frame = pl.DataFrame(
        {"t": [datetime(2023, 12, 30, 20), datetime(2024, 3, 1, 1, 30), None], "x": ["a", "b", None]}
    )
    assert_lineage_matches({"date_part": {"column": "t", "parts": ALL_PARTS[:-2]}}, frame)
    lineage = parse_op({"date_part": {"column": "t", "parts": ["year"]}}, 0).lineage(
        frame.schema, OpContext()
    )
    assert lineage["t_year"].sources == {Origin("", "t")} and lineage["t_year"].kind is Kind.CALCULATION


# date_diff


@pytest.mark.parametrize("unit", ["days", "hours", "minutes", "seconds"])
@pytest.mark.parametrize("fractional", [False, True])
def test_date_diff_against_duckdb(unit: str, fractional: bool) -> None:
    frame = pl.DataFrame(
        {
            "s": [datetime(2024, 2, 28, 10), datetime(2024, 3, 1, 0, 0, 30), None, datetime(2024, 1, 1, 12)],
            "e": [datetime(2024, 3, 1, 9, 59, 59), datetime(2024, 2, 27, 23), datetime(2024, 1, 1), None],
        }
    )
    got = run(
        {"date_diff": {"start": "s", "end": "e", "unit": unit, "fractional": fractional, "as": "x"}}, frame
    )
    per = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}[unit]
    value = f"(epoch(e) - epoch(s)) / {per}"
    sql = f"SELECT s, e, {value if fractional else f'CAST(trunc({value}) AS BIGINT)'} AS x FROM f"
    assert_frame_equal(got, duck(sql, f=frame))


def test_date_diff_dates_zone_aware_and_dst() -> None:
    frame = pl.DataFrame(
        {
            "a": [datetime(2024, 3, 9, 12, tzinfo=NY)],
            "b": [datetime(2024, 3, 10, 12, tzinfo=NY)],
            "p": [datetime(2024, 3, 9, 18, 30, tzinfo=PARIS)],  # 17:30 UTC
            "d": [date(2024, 2, 28)],
            "n": [datetime(2024, 3, 1, 6)],
        }
    )
    assert run({"date_diff": {"start": "a", "end": "b", "unit": "hours", "as": "x"}}, frame)["x"].item() == 23
    assert run({"date_diff": {"start": "a", "end": "b", "as": "x"}}, frame)["x"].item() == 0  # 23 h
    assert (
        run({"date_diff": {"start": "a", "end": "p", "unit": "minutes", "as": "x"}}, frame)["x"].item() == 30
    )
    assert run({"date_diff": {"start": "d", "end": "n", "unit": "hours", "as": "x"}}, frame)["x"].item() == 54
    assert "has a time zone and the other not" in schema_error(
        {"date_diff": {"start": "n", "end": "a", "as": "x"}}, dict(frame.schema)
    )
    empty = run({"date_diff": {"start": "d", "end": "d", "fractional": True, "as": "x"}}, frame.clear())
    assert empty.schema["x"] == pl.Float64 and empty.height == 0


def test_date_diff_lineage() -> None:
    frame = pl.DataFrame(
        {"s": [date(2024, 1, 1), None, date(2024, 2, 1)], "e": [date(2024, 3, 1), date(2024, 1, 1), None]}
    )
    assert_lineage_matches({"date_diff": {"start": "s", "end": "e", "as": "days"}}, frame)


# age


def _reference_age(born: date, on: date, leap: str) -> int | None:
    """Count birthdays one by one; Feb 29 falls on Mar 1 or Feb 28 in common years."""
    if born > on:
        return None
    years = 0
    while True:
        year = born.year + years + 1
        try:
            birthday = born.replace(year=year)
        except ValueError:
            birthday = date(year, 3, 1) if leap == "mar_1" else date(year, 2, 28)
        if birthday > on:
            return years
        years += 1


@pytest.mark.parametrize("leap", ["mar_1", "feb_28"])
def test_age_against_counting_birthdays(leap: str) -> None:
    births = [date(2000, 2, 29), date(1999, 3, 1), date(2003, 2, 28), date(1980, 12, 31), date(2024, 1, 1)]
    refs = (
        [date(2001, 2, 27) + timedelta(days=k) for k in range(4)]
        + [date(2004, 2, 28) + timedelta(days=k) for k in range(3)]
        + [date(2023, 12, 31), date(2024, 1, 1), date(2020, 2, 29)]
    )
    pairs = [(b, r) for b in births for r in refs] + [(None, refs[0]), (births[0], None)]
    frame = pl.DataFrame({"b": [p[0] for p in pairs], "r": [p[1] for p in pairs]})
    got, metrics = counted({"age": {"birth": "b", "on": "r", "as": "age", "leap_birthdays": leap}}, frame)
    expected = [None if b is None or r is None else _reference_age(b, r, leap) for b, r in pairs]
    assert got["age"].to_list() == expected
    assert metrics == {"age#1.age_born_after_reference": sum(1 for b, r in pairs if b and r and b > r)}


def test_age_at_a_fixed_date_from_datetimes_and_empty() -> None:
    frame = pl.DataFrame(
        {"b": [datetime(2000, 2, 29, 23, tzinfo=UTC), None, datetime(2010, 6, 1, 12, tzinfo=UTC)]}
    )
    at = {"age": {"birth": "b", "at": date(2024, 2, 28), "as": "age"}}
    assert run(at, frame)["age"].to_list() == [23, None, 13]
    local = frame.with_columns(pl.col("b").dt.convert_time_zone("Asia/Tokyo"))  # born Mar 1 there
    assert run({"age": {**at["age"], "at": "2024-03-01"}}, local)["age"].to_list() == [24, None, 13]
    empty = run(at, frame.clear())
    assert empty.schema["age"] == pl.Int32 and empty.height == 0


def test_age_parameters_and_lineage() -> None:
    assert "either on (a column) or at (a date)" in parse_error({"age": {"birth": "b", "as": "a"}})
    assert "either on" in parse_error({"age": {"birth": "b", "on": "r", "at": "2024-01-01", "as": "a"}})
    assert "at" in parse_error({"age": {"birth": "b", "at": "yesterday", "as": "a"}})
    assert "not a date" in schema_error(
        {"age": {"birth": "b", "on": "r", "as": "a"}}, {"b": pl.Date, "r": pl.Int64}
    )
    frame = pl.DataFrame(
        {
            "b": [date(2000, 1, 20), date(1990, 2, 10), None],
            "r": [date(2020, 2, 1), date(2021, 1, 15), date(2020, 1, 1)],
        }
    )
    assert_lineage_matches({"age": {"birth": "b", "on": "r", "as": "age"}}, frame)
    assert_lineage_matches({"age": {"birth": "b", "at": date(2020, 2, 15), "as": "age"}}, frame)
    lineage = parse_op({"age": {"birth": "b", "at": "2020-01-01", "as": "a"}}, 0).lineage(
        frame.schema, OpContext()
    )
    assert lineage["a"].sources == {Origin("", "b")}
