"""Acceptance: a run killed with SIGKILL during its load leaves the target as it was; the next run
marks the killed run crashed and completes the load exactly.

The test holds an ACCESS EXCLUSIVE lock on the target so the load blocks inside its transaction
(staging already filled by COPY), waits until PostgreSQL shows the loader waiting on that lock, and
kills the process there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from headwater.settings import Settings
from headwater.store import Store
from tests.conftest import EXAMPLES, REPO, run_flow
from tests.flights_expected import expected_carrier_daily, read_carrier_daily

pytestmark = [pytest.mark.prefect, pytest.mark.postgres]


def snapshot(engine: sa.Engine) -> pl.DataFrame:
    return pl.read_database("SELECT * FROM carrier_daily ORDER BY flight_date, carrier", engine)


def wait_for_lock_waiter(engine: sa.Engine, database: str, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            pid = conn.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = :db AND wait_event_type = 'Lock' "
                    "AND query ILIKE '%carrier_daily%'"
                ),
                {"db": database},
            ).scalar()
        if pid:
            return int(pid)
        time.sleep(0.2)
    raise AssertionError("the load never reached the locked target")


def test_sigkill_during_load_then_recover(
    hw_env: Settings, pg_url: str, prefect_api: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HEADWATER_WAREHOUSE_URL", pg_url)
    first = run_flow("flights_daily", EXAMPLES)
    assert first["status"] == "completed"
    engine = sa.create_engine(pg_url)
    # damage the target so the next load has real work: one carrier's rows gone, every count wrong
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM carrier_daily WHERE carrier = 'HA'")
        conn.exec_driver_sql("UPDATE carrier_daily SET flights = flights + 1000")
    before = snapshot(engine)
    database = sa.make_url(pg_url).database or ""

    locker = engine.connect()
    tx = locker.begin()
    locker.exec_driver_sql("LOCK TABLE carrier_daily IN ACCESS EXCLUSIVE MODE")
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "HEADWATER_WAREHOUSE_URL": pg_url}
    log = (tmp_path / "killed_run.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "headwater.cli", "run", "flights_daily", "--pipelines", str(EXAMPLES)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        wait_for_lock_waiter(engine, database)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        tx.rollback()
        locker.close()
        log.close()

    assert_frame_equal(snapshot(engine), before)  # the target is exactly as it was
    store = Store(hw_env.database_url)
    killed = store.runs("flights_daily")[0]
    assert killed["status"] == "running" and killed["id"] != first["run_id"]
    killed_steps = {s["step_name"]: s["status"] for s in store.steps(killed["id"])}
    assert killed_steps["load_carrier_daily"] == "running"

    recovered = run_flow("flights_daily", EXAMPLES)
    assert recovered["status"] == "completed"
    assert before.height == 5432 - 342  # HA flew once a day
    assert (recovered["records_inserted"], recovered["records_updated"]) == (342, 5432 - 342)
    crashed = store.run(killed["id"])
    assert crashed is not None and crashed["status"] == "crashed" and crashed["error_type"] == "Crashed"
    assert {s["step_name"]: s["status"] for s in store.steps(killed["id"])}["load_carrier_daily"] == "crashed"
    assert_frame_equal(read_carrier_daily(pg_url), expected_carrier_daily())
    engine.dispose()
