"""`headwater backfill` over a year of NYC flights, one partition per month with the window passed as
typed parameters: a partition that fails (its month's file not there yet) is the only one a second
backfill runs; the target then equals an independent computation over the whole year; every run is
recorded as a backfill with its window. Without a Prefect server the partitions run in turn in one
watched worker process; through a deployment, on real workers (tests/test_up.py covers a server)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from headwater.backfill import Partition, partitions
from headwater.cli import main
from headwater.errors import PermanentError
from headwater.settings import Settings
from headwater.store import Store
from tests.flights_expected import raw_flights

SPEC = """
name: hw_backfill
params:
  window_start: {type: date, required: true}
  window_end: {type: date, required: true}
sources:
  flights:
    kind: file
    path: data/flights-${params.window_start}.csv
    null_values: ["NA"]
    infer_schema_length: null
steps:
  - {name: extract, type: extract, source: flights}
  - name: daily
    type: transform
    depends_on: [extract]
    ops:
      - make_date: {year: year, month: month, day: day, as: flight_date}
      - filter: >-
          flight_date >= CAST('${params.window_start}' AS DATE)
          AND flight_date < CAST('${params.window_end}' AS DATE)
      - aggregate:
          by: [flight_date, carrier]
          aggs:
            flights: {fn: count}
            dep_delay_sum: {fn: sum, column: dep_delay}
  - name: load
    type: load
    depends_on: [daily]
    destination: {table: backfill_daily, mode: upsert, primary_key: [flight_date, carrier]}
"""


def test_partitions() -> None:
    months = partitions(date(2013, 1, 1), date(2013, 12, 31), "1mo")
    assert len(months) == 12
    assert months[0] == Partition(date(2013, 1, 1), date(2013, 2, 1))
    assert months[-1] == Partition(date(2013, 12, 1), date(2014, 1, 1))
    weeks = partitions(date(2026, 1, 1), date(2026, 1, 10), "1w")
    assert [(p.start.day, p.end.day) for p in weeks] == [(1, 8), (8, 11)]  # the last is cut at --to
    assert len(partitions(date(2024, 2, 1), date(2024, 2, 29), "1d")) == 29
    ends = partitions(date(2024, 1, 31), date(2024, 4, 30), "1mo")
    assert [p.end for p in ends] == [
        date(2024, 2, 29),
        date(2024, 3, 31),
        date(2024, 4, 30),
        date(2024, 5, 1),
    ]
    with pytest.raises(PermanentError, match="is not a period"):
        partitions(date(2026, 1, 1), date(2026, 2, 1), "1y")


def test_a_year_by_month_resumes_only_what_failed(
    hw_env: Settings, tmp_path: Path, capfd: pytest.CaptureFixture[str], prefect_api: str
) -> None:
    folder = tmp_path / "pipelines"
    (folder / "data").mkdir(parents=True)
    (folder / "backfill.yaml").write_text(SPEC)
    flights = raw_flights()
    for month in range(1, 13):
        if month != 3:  # March's file is late: that partition fails the first time
            flights.filter(pl.col("month") == month).write_csv(
                folder / "data" / f"flights-2013-{month:02d}-01.csv"
            )
    argv = ["backfill", "hw_backfill", "--from", "2013-01-01", "--to", "2013-12-31", "--every", "1mo"]
    argv += ["--pipelines", str(folder)]

    assert main(argv) == 1
    out = capfd.readouterr().out
    assert "12 partitions every 1mo, 0 already completed, 12 to run" in out
    assert "1 partition(s) did not complete" in out

    flights.filter(pl.col("month") == 3).write_csv(folder / "data" / "flights-2013-03-01.csv")
    assert main(argv) == 0
    out = capfd.readouterr().out
    assert "11 already completed, 1 to run" in out
    assert main(argv) == 0
    assert "all 12 partitions already completed" in capfd.readouterr().out

    store = Store(hw_env.database_url)
    runs = store.runs("hw_backfill", limit=100)
    store.dispose()
    assert {r["execution_type"] for r in runs} == {"backfill"}
    by_status: dict[str, list[str]] = {}
    for run in runs:
        by_status.setdefault(run["status"], []).append(run["parameters"]["window_start"])
    assert sorted(by_status["failed"]) == ["2013-03-01"]
    assert sorted(by_status["completed"]) == [f"2013-{m:02d}-01" for m in range(1, 13)]

    expected = (
        flights.with_columns(flight_date=pl.date("year", "month", "day"))
        .group_by("flight_date", "carrier")
        .agg(
            flights=pl.len().cast(pl.Int64),
            # SQL's SUM: null where every value is null (12 carrier-days of cancelled flights)
            dep_delay_sum=pl.when(pl.col("dep_delay").is_not_null().any())
            .then(pl.col("dep_delay").sum())
            .cast(pl.Int64),
        )
        .sort("flight_date", "carrier")
    )
    engine = sa.create_engine(hw_env.warehouse_url)
    with engine.connect() as conn:
        got = pl.read_database(
            "SELECT flight_date, carrier, flights, dep_delay_sum FROM backfill_daily"
            " ORDER BY flight_date, carrier",
            conn,
            schema_overrides={"flights": pl.Int64, "dep_delay_sum": pl.Int64},
        ).with_columns(pl.col("flight_date").str.to_date())
    engine.dispose()
    assert_frame_equal(got, expected)


def test_a_spec_without_the_window_is_refused(hw_env: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "plain.yaml").write_text(
        "name: hw_plain\nsources: {f: {kind: file, path: x.csv}}\n"
        "steps:\n  - {name: e, type: extract, source: f}\n"
    )
    (folder / "x.csv").write_text("a\n1\n")
    with pytest.raises(PermanentError, match="declares no parameter window_start, window_end"):
        from headwater.backfill import check_backfillable
        from headwater.spec.loader import find_pipeline

        check_backfillable(find_pipeline(folder, "hw_plain"))
