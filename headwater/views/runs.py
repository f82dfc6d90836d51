"""Run history and one run in detail: steps, quality checks and samples."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

from headwater.quality.score import ScoreExplanation, explain
from headwater.store.tables import data_quality_checks, pipeline_executions, step_executions
from headwater.views.frames import UTC_TS, frame

RUN_COLUMNS: dict[str, Any] = {
    "id": pl.String,
    "pipeline_name": pl.String,
    "execution_type": pl.String,
    "status": pl.String,
    "started_at": UTC_TS,
    "duration_seconds": pl.Float64,
    "records_processed": pl.Int64,
    "records_loaded": pl.Int64,
    "records_quarantined": pl.Int64,
    "quality_score": pl.Float64,
    "retry_count": pl.Int64,
    "failed_step": pl.String,
    "error_type": pl.String,
    # set when the run loaded last good data instead of a source whose circuit breaker was open:
    # the age of the oldest such extract (null: every extract was fresh)
    "data_age_seconds": pl.Float64,
}


def runs(
    engine: sa.Engine,
    *,
    pipeline: str | None = None,
    statuses: list[str] | None = None,
    since: datetime | None = None,
    limit: int = 200,
) -> pl.DataFrame:
    """Newest first."""
    pe = pipeline_executions
    query = sa.select(*(pe.c[k] for k in RUN_COLUMNS)).order_by(pe.c.started_at.desc()).limit(limit)
    if pipeline:
        query = query.where(pe.c.pipeline_name == pipeline)
    if statuses:
        query = query.where(pe.c.status.in_(statuses))
    if since:
        query = query.where(pe.c.started_at >= since)
    return frame(engine, query, RUN_COLUMNS)


@dataclass(frozen=True)
class RunDetail:
    run: dict[str, Any]
    steps: list[dict[str, Any]]
    checks: list[dict[str, Any]]

    @property
    def stale(self) -> list[dict[str, Any]]:
        """The extracts this run loaded from their last good data (a source's breaker was open):
        step, source, breaker, opened_at, open_until, extracted_at, age_seconds, rows, run_id."""
        return list(self.run.get("stale_data") or [])

    @property
    def score(self) -> ScoreExplanation:
        """How the run's quality score is made, rule by rule (`checks` are the rows
        Store.quality_checks gives: the same query, the same order)."""
        return explain(self.checks)

    @property
    def timeline(self) -> pl.DataFrame:
        """step, type, status, start, end (steps that started), in start order."""
        rows = [
            (s["step_name"], s["step_type"], s["status"], s["started_at"], s["ended_at"] or s["started_at"])
            for s in self.steps
            if s["started_at"] is not None
        ]
        schema: dict[str, Any] = {
            "step": pl.String,
            "type": pl.String,
            "status": pl.String,
            "start": UTC_TS,
            "end": UTC_TS,
        }
        return pl.DataFrame(rows, schema=schema, orient="row").sort("start")


def run_detail(engine: sa.Engine, run_id: str) -> RunDetail | None:
    with engine.connect() as conn:
        run = conn.execute(sa.select(pipeline_executions).where(pipeline_executions.c.id == run_id)).first()
        if run is None:
            return None
        steps = conn.execute(
            sa.select(step_executions)
            .where(step_executions.c.execution_id == run_id)
            .order_by(step_executions.c.id)
        ).all()
        checks = conn.execute(
            sa.select(data_quality_checks)
            .where(data_quality_checks.c.execution_id == run_id)
            .order_by(data_quality_checks.c.id)
        ).all()
    return RunDetail(
        dict(run._mapping), [dict(s._mapping) for s in steps], [dict(c._mapping) for c in checks]
    )


def find_run(engine: sa.Engine, prefix: str) -> str | None:
    """The run whose id starts with `prefix` (the 8 characters lists show), if exactly one does."""
    prefix = prefix.strip()
    if not prefix:
        return None
    with engine.connect() as conn:
        ids = (
            conn.execute(
                sa.select(pipeline_executions.c.id)
                .where(pipeline_executions.c.id.startswith(prefix, autoescape=True))
                .limit(2)
            )
            .scalars()
            .all()
        )
    return ids[0] if len(ids) == 1 else None


def request_retries(metrics: dict[str, Any] | None) -> str | None:
    """What a step's source requests went through, from its metrics (REST and GA4 sources), e.g.
    "retried 1 time after HTTP 429 (4 requests)"; None when no request was retried."""
    retries = int((metrics or {}).get("http_retries") or 0)
    if not retries:
        return None
    statuses = (metrics or {}).get("http_retry_statuses") or []
    causes = ", ".join(f"HTTP {s}" for s in dict.fromkeys(statuses)) or "network errors"
    times = "1 time" if retries == 1 else f"{retries} times"
    text = f"retried {times} after {causes} ({(metrics or {}).get('http_requests')} requests"
    waited = (metrics or {}).get("http_retry_wait_seconds")
    return text + (f", waited {waited:.1f} s)" if waited else ")")
