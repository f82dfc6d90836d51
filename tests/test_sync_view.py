"""Sync health (headwater.views.sync) over a store with known runs: last success, staleness, next run
from the schedule (cron in its time zone, or interval), failures in the last 7 days, and the health
label; pipelines of other types are left out.

Real services: the store on SQLite and on the real PostgreSQL (`store_engine`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from headwater.spec.loader import load_pipeline
from headwater.store import Store
from headwater.store.tables import pipeline_executions
from headwater.views.sync import sync_health

NOW = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)  # 10:00 in New York
SPEC = """
name: {name}
type: {type}
sources:
  ga4:
    kind: ga4
    property: "1"
    dimensions: [date]
    metrics: [sessions]
    credentials: {{block: ga4}}
steps:
  - {{name: extract, type: extract, source: ga4}}
  - {{name: load, type: load, depends_on: [extract], destination: {{table: {name}}}}}
{schedule}
"""
PIPELINES = {
    "sync_daily": ("sync", 'schedule: {cron: "0 7 * * *", timezone: America/New_York}'),
    "sync_hourly": ("sync", "schedule: {interval: 1h}"),
    "sync_never": ("sync", ""),
    "etl_daily": ("etl", 'schedule: {cron: "0 6 * * *"}'),
}
# (pipeline, status, started hours before NOW, minutes it took)
RUNS = [
    ("sync_daily", "completed", 24 * 10, 4),  # outside the week
    ("sync_daily", "completed", 30, 5),
    ("sync_daily", "failed", 6, 2),
    ("sync_daily", "running", 0.02, None),  # still running: not the last finished run
    ("sync_hourly", "completed", 5, 1),
    ("sync_hourly", "crashed", 4.5, 1),
    ("sync_hourly", "completed_with_warnings", 3, 1),
    ("etl_daily", "failed", 1, 1),
]


def fill(engine: sa.Engine, tmp_path: Path) -> None:
    store = Store(str(engine.url), engine)
    for name, (kind, schedule) in PIPELINES.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(SPEC.format(name=name, type=kind, schedule=schedule))
        store.register_pipeline(load_pipeline(path), "sqlite://")
    with engine.begin() as conn:
        ids = dict(conn.execute(sa.text("SELECT name, id FROM data_pipelines")).all())
        for i, (name, status, hours, minutes) in enumerate(RUNS):
            started = NOW - timedelta(hours=hours)
            conn.execute(
                sa.insert(pipeline_executions).values(
                    id=f"run-{i}",
                    pipeline_id=ids[name],
                    pipeline_name=name,
                    execution_type="scheduled",
                    status=status,
                    started_at=started,
                    ended_at=None if minutes is None else started + timedelta(minutes=minutes),
                    error_message="boom" if status in ("failed", "crashed") else None,
                    warnings=[],
                    hostname="h",
                    pid=1,
                    process_started_at=0.0,
                )
            )


def test_sync_health(store_engine: sa.Engine, tmp_path: Path) -> None:
    fill(store_engine, tmp_path)
    view = sync_health(store_engine, NOW)
    rows = {r["name"]: r for r in view.iter_rows(named=True)}
    assert list(rows) == ["sync_daily", "sync_hourly", "sync_never"]  # etl_daily is not a sync

    # independently: straight SQL over the runs
    with store_engine.connect() as conn:
        expected = {
            name: conn.execute(
                sa.select(
                    sa.func.max(pipeline_executions.c.ended_at),
                    sa.select(sa.func.count())
                    .where(
                        pipeline_executions.c.pipeline_name == name,
                        pipeline_executions.c.started_at >= NOW - timedelta(days=7),
                        pipeline_executions.c.status.in_(["failed", "crashed"]),
                    )
                    .scalar_subquery(),
                ).where(
                    pipeline_executions.c.pipeline_name == name,
                    pipeline_executions.c.status.in_(["completed", "completed_with_warnings"]),
                )
            ).one()
            for name in ("sync_daily", "sync_hourly")
        }
    for name, (last_success, failures) in expected.items():
        last_success = last_success if last_success.tzinfo else last_success.replace(tzinfo=UTC)
        assert rows[name]["last_success_at"] == last_success
        assert rows[name]["staleness_seconds"] == (NOW - last_success).total_seconds()
        assert rows[name]["failures_7d"] == failures

    daily = rows["sync_daily"]
    assert daily["last_success_at"] == NOW - timedelta(hours=30) + timedelta(minutes=5)
    assert daily["staleness_seconds"] == 29 * 3600 + 55 * 60
    assert (daily["failures_7d"], daily["runs_7d"], daily["last_status"]) == (1, 2, "failed")
    assert (daily["health"], daily["last_error"]) == ("failing", "boom")
    assert daily["next_run"] == datetime(2026, 12, 5, 12, 0, tzinfo=UTC)  # 07:00 in New York (EST)
    assert daily["expected_every_seconds"] == 86400
    assert daily["schedule"] == "0 7 * * * (America/New_York)"

    hourly = rows["sync_hourly"]
    assert hourly["staleness_seconds"] == 3 * 3600 - 60
    assert (hourly["failures_7d"], hourly["runs_7d"]) == (1, 3)
    assert hourly["health"] == "stale"  # 2 h 59 min > 1 h period + 1 h grace
    assert hourly["next_run"] == NOW  # an interval: due since the last start + 1 h

    never = rows["sync_never"]
    assert never["last_success_at"] is None and never["staleness_seconds"] is None
    assert (never["health"], never["runs_7d"], never["failures_7d"], never["next_run"]) == (
        "never",
        0,
        0,
        None,
    )


def test_orchestrator_next_runs_win(store_engine: sa.Engine, tmp_path: Path) -> None:
    fill(store_engine, tmp_path)
    paused = sync_health(store_engine, NOW, {"sync_daily": None})
    assert paused.filter(name="sync_daily")["next_run"].to_list() == [None]
    assert paused.filter(name="sync_hourly")["next_run"].to_list() == [NOW]  # not given: computed


@pytest.mark.parametrize("status", ["completed", "completed_with_warnings"])
def test_fresh_success_is_ok(store_engine: sa.Engine, tmp_path: Path, status: str) -> None:
    fill(store_engine, tmp_path)
    with store_engine.begin() as conn:
        pid = conn.execute(sa.text("SELECT id FROM data_pipelines WHERE name = 'sync_daily'")).scalar()
        conn.execute(
            sa.insert(pipeline_executions).values(
                id="fresh",
                pipeline_id=pid,
                pipeline_name="sync_daily",
                execution_type="manual",
                status=status,
                started_at=NOW - timedelta(minutes=30),
                ended_at=NOW - timedelta(minutes=20),
                warnings=[],
                hostname="h",
                pid=1,
                process_started_at=0.0,
            )
        )
    row = sync_health(store_engine, NOW).filter(name="sync_daily").row(0, named=True)
    assert (row["health"], row["staleness_seconds"], row["last_status"]) == ("ok", 1200.0, status)
