"""The anomaly check the alert task runs after each run, on a real store: 30 normal runs, then a run
whose row count drops 60% is flagged naming rows_out; the runs before it are not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from headwater.anomaly.models import anomalies_of
from headwater.store import Store
from headwater.store.tables import data_pipelines, pipeline_executions


def add_run(store: Store, i: int, rows: int, start: datetime) -> str:
    run_id = f"00000000-0000-0000-0000-{i:012d}"
    with store.writer.begin() as conn:
        conn.execute(
            sa.insert(pipeline_executions).values(
                id=run_id,
                pipeline_id=1,
                pipeline_name="daily_sync",
                execution_type="scheduled",
                status="completed",
                started_at=start,
                ended_at=start + timedelta(seconds=60 + i % 7),
                duration_seconds=60 + i % 7,
                records_processed=rows,
                records_loaded=rows,
                records_inserted=rows,
                records_updated=0,
                warnings=[],
                hostname="h",
                pid=1,
                process_started_at=0.0,
            )
        )
    return run_id


def seed_history(store: Store, runs: int) -> tuple[datetime, list[str]]:
    """A pipeline `daily_sync` with `runs` normal daily runs (rows ~10,000, small noise)."""
    now = datetime(2026, 1, 1, 6, tzinfo=UTC)
    with store.writer.begin() as conn:
        conn.execute(
            sa.insert(data_pipelines).values(
                id=1,
                name="daily_sync",
                pipeline_type="sync",
                description="",
                tags=[],
                spec_path="x",
                spec_hash="x",
                created_at=now,
                updated_at=now,
            )
        )
    return now, [add_run(store, i, 10_000 + (i * 37) % 400, now + timedelta(days=i)) for i in range(runs)]


def test_sixty_percent_drop_is_flagged_and_normal_runs_are_not(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}").migrate()
    now, ids = seed_history(store, 30)
    models = tmp_path / "models"
    assert all(anomalies_of(store, "daily_sync", run_id, models) == [] for run_id in ids[20:])
    dropped = add_run(store, 30, 4_000, now + timedelta(days=30))
    (explanation,) = anomalies_of(store, "daily_sync", dropped, models)
    assert "rows_out" in explanation and "4000" in explanation.replace(",", "")
