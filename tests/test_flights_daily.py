"""Acceptance: the demo loads carrier_daily exactly as an independent computation says, on SQLite and
on PostgreSQL, and running it again leaves the same rows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from headwater.settings import Settings
from headwater.store import Store
from tests.conftest import EXAMPLES, REPO, run_flow
from tests.flights_expected import expected_carrier_daily, read_carrier_daily

pytestmark = pytest.mark.prefect


@pytest.fixture(scope="module")
def expected():  # type: ignore[no-untyped-def]
    return expected_carrier_daily()


def test_expected_is_not_trivial(expected) -> None:  # type: ignore[no-untyped-def]
    assert expected.height == 5432
    assert expected["flights"].sum() == 336_776
    assert expected["cancelled"].sum() == 8255
    assert expected["carrier_name"].null_count() == 0


def test_demo_on_empty_home_loads_carrier_daily(tmp_path: Path, prefect_api: str, expected) -> None:  # type: ignore[no-untyped-def]
    """The README's main job, as a user runs it: a fresh process, an empty HEADWATER_HOME."""
    home = tmp_path / "empty_home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update(HEADWATER_HOME=str(home), PREFECT_API_URL=prefect_api)
    proc = subprocess.run(
        [sys.executable, "-m", "headwater.cli", "demo"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line.split() for line in proc.stdout.splitlines()]
    names = ("flights_daily", "carrier_monthly", "flights_clean", "vendor_prices", "claims_deidentified")
    table = {row[0]: row for row in lines if row and row[0] in names}
    assert table["flights_daily"][1:4] == ["completed", "362907", "5432"]
    assert table["carrier_monthly"][1:4] == ["completed", "5432", "185"]
    assert table["flights_clean"][1:3] == ["completed", "367671"]  # flights + weather + planes + airports
    assert table["claims_deidentified"][1] == "completed"
    assert table["vendor_prices"][1:4] == ["completed_with_warnings", "12", "9"]
    settings = Settings.from_env({"HEADWATER_HOME": str(home)})
    clean = Store(settings.database_url).runs("flights_clean")[0]
    assert clean["quality_score"] is not None and 0 < clean["quality_score"] < 100
    assert clean["records_quarantined"] > 50_000
    assert_frame_equal(read_carrier_daily(settings.warehouse_url), expected)
    assert str(home / "warehouse.db") in proc.stdout
    # the report read back what flights_daily loaded
    monthly = (
        expected.group_by(
            pl.col("flight_date").dt.strftime("%Y-%m").alias("month"), "carrier", "carrier_name"
        )
        .agg(pl.col("flights").sum(), pl.col("cancelled").sum(), days=pl.len().cast(pl.Int64))
        .with_columns(cancel_rate=(pl.col("cancelled") / pl.col("flights")).round(4))
        .sort("month", "carrier")
    )
    engine = sa.create_engine(settings.warehouse_url)
    loaded = pl.read_database("SELECT * FROM carrier_monthly ORDER BY month, carrier", engine)
    engine.dispose()
    assert_frame_equal(loaded, monthly, check_dtypes=False)


def test_second_run_leaves_the_same_rows(hw_env: Settings, prefect_api: str, expected) -> None:  # type: ignore[no-untyped-def]
    first = run_flow("flights_daily", EXAMPLES)
    assert first["status"] == "completed"
    assert (first["records_inserted"], first["records_updated"]) == (5432, 0)
    second = run_flow("flights_daily", EXAMPLES)
    assert second["status"] == "completed"
    assert (second["records_inserted"], second["records_updated"], second["records_loaded"]) == (0, 0, 5432)
    assert_frame_equal(read_carrier_daily(hw_env.warehouse_url), expected)
    store = Store(hw_env.database_url)
    runs = store.runs("flights_daily")
    assert [r["status"] for r in runs] == ["completed", "completed"]
    steps = {s["step_name"]: s for s in store.steps(second["run_id"])}
    assert steps["extract_flights"]["records_out"] == 336_776
    assert steps["carrier_daily"]["records_in"] == 336_776
    assert steps["carrier_daily"]["records_out"] == 5432
    assert steps["load_carrier_daily"]["metrics"]["unchanged"] == 5432
    assert all(s["duration_seconds"] is not None and s["peak_memory_mb"] > 0 for s in steps.values())
    assert len(steps["carrier_daily"]["sample_out"]) == 5
    # independent extracts ran at the same time; the transform waited for all three
    flights, weather = steps["extract_flights"], steps["extract_weather"]
    assert weather["started_at"] < flights["ended_at"] and flights["started_at"] < weather["ended_at"]
    extract_ends = max(
        steps[s]["ended_at"] for s in ("extract_flights", "extract_weather", "extract_airlines")
    )
    assert steps["carrier_daily"]["started_at"] >= extract_ends
    run = store.run(second["run_id"])
    assert run is not None and run["flow_run_id"] and run["execution_type"] == "manual"
    assert run["peak_memory_mb"] > 0 and run["cpu_seconds"] > 0


@pytest.mark.postgres
def test_postgres_warehouse_gives_the_same_rows(
    hw_env: Settings, pg_url: str, prefect_api: str, monkeypatch: pytest.MonkeyPatch, expected
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HEADWATER_WAREHOUSE_URL", pg_url)
    monkeypatch.setenv("HEADWATER_DATABASE_URL", pg_url)  # the store on PostgreSQL too
    result = run_flow("flights_daily", EXAMPLES)
    assert result["status"] == "completed", result
    assert_frame_equal(read_carrier_daily(pg_url), expected)
    again = run_flow("flights_daily", EXAMPLES)
    assert (again["records_inserted"], again["records_updated"]) == (0, 0)
    assert_frame_equal(read_carrier_daily(pg_url), expected)
    assert [r["status"] for r in Store(pg_url).runs("flights_daily")] == ["completed", "completed"]
