"""Run history written straight into a store's pipeline_executions, for the SLA tests (the rows a
pipeline's runs leave: status, start, end, duration)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from headwater.store.tables import data_pipelines, pipeline_executions

LONDON = ZoneInfo("Europe/London")


def at(text: str, zone: ZoneInfo = LONDON) -> datetime:
    """'2026-10-24 07:50' read as local time in `zone`, as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=zone).astimezone(UTC)


def add_pipeline(engine: sa.Engine, name: str) -> int:
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        result = conn.execute(
            sa.insert(data_pipelines).values(
                name=name,
                pipeline_type="etl",
                tags=[],
                spec_path=f"{name}.yaml",
                spec_hash="x",
                created_at=stamp,
                updated_at=stamp,
            )
        )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def add_run(
    engine: sa.Engine,
    pipeline_id: int,
    pipeline: str,
    run_id: str,
    status: str,
    started: datetime,
    ended: datetime | None,
) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.insert(pipeline_executions).values(
                id=run_id,
                pipeline_id=pipeline_id,
                pipeline_name=pipeline,
                execution_type="scheduled",
                status=status,
                started_at=started,
                ended_at=ended,
                duration_seconds=None if ended is None else (ended - started).total_seconds(),
                warnings=[],
                hostname="test",
                pid=1,
                process_started_at=0.0,
            )
        )


def set_finished(engine: sa.Engine, run_id: str, status: str, ended: datetime) -> None:
    with engine.begin() as conn:
        started = conn.execute(
            sa.select(pipeline_executions.c.started_at).where(pipeline_executions.c.id == run_id)
        ).scalar_one()
        started = started if started.tzinfo else started.replace(tzinfo=UTC)
        conn.execute(
            sa.update(pipeline_executions)
            .where(pipeline_executions.c.id == run_id)
            .values(status=status, ended_at=ended, duration_seconds=(ended - started).total_seconds())
        )
