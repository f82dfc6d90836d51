"""The run history an SLA is measured over (pipeline_executions), which runs count, the expected
duration, and the small helpers every part of headwater.sla shares."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import sqlalchemy as sa

from headwater.spec.models import PipelineSpec, Sla
from headwater.store.store import aware
from headwater.store.tables import pipeline_executions
from headwater.views.frames import UTC_TS, frame

OK = ("completed", "completed_with_warnings")
FAILED = ("failed", "crashed")
FINISHED = OK + FAILED
OBJECTIVES = ("success_rate", "max_duration", "freshness", "deadline")
EXPECTED_RUNS = 20
"""The expected duration is the 90th percentile of this many latest successful runs' durations..."""
EXPECTED_MIN_RUNS = 3
"""...when there are at least this many; else the SLA's max_duration, else none (no projection)."""
HISTORY: dict[str, Any] = {
    "pipeline_name": pl.String,
    "id": pl.String,
    "status": pl.String,
    "started_at": UTC_TS,
    "ended_at": UTC_TS,
    "duration_seconds": pl.Float64,
}


def resolved(spec: PipelineSpec) -> Sla | None:
    """The spec's SLA with its time zone filled in: its own, else the cron schedule's, else UTC."""
    if spec.sla is None:
        return None
    if spec.sla.timezone is not None:
        return spec.sla
    zone = spec.schedule.timezone if spec.schedule is not None and spec.schedule.cron else "UTC"
    return spec.sla.model_copy(update={"timezone": zone})


def tz_of(sla: Sla) -> ZoneInfo:
    """The SLA's time zone (see `resolved`)."""
    return ZoneInfo(sla.timezone or "UTC")


def deadline_time(sla: Sla) -> time | None:
    """The deadline as a local time of day."""
    if sla.deadline is None:
        return None
    hours, minutes = sla.deadline.split(":")
    return time(int(hours), int(minutes))


def read_history(engine: sa.Engine, pipelines: Sequence[str], since: datetime) -> pl.DataFrame:
    """Runs of `pipelines` started since `since` or still running, and each pipeline's latest
    EXPECTED_RUNS successful runs and latest successful run before `since` (the baselines of the
    expected duration and of freshness)."""
    pe = pipeline_executions
    cols = [pe.c[k] for k in HISTORY]
    if not pipelines:
        return pl.DataFrame(schema=HISTORY)
    mine = pe.c.pipeline_name.in_(list(pipelines))
    recent = sa.select(*cols).where(mine, (pe.c.started_at >= since) | (pe.c.status == "running"))
    newest = sa.func.row_number().over(partition_by=pe.c.pipeline_name, order_by=pe.c.started_at.desc())
    ok = sa.select(*cols, newest.label("n")).where(mine, pe.c.status.in_(OK)).subquery()
    latest_ok = sa.select(*(ok.c[k] for k in HISTORY)).where(ok.c.n <= EXPECTED_RUNS)
    before = (
        sa.select(*cols, newest.label("n"))
        .where(mine, pe.c.status.in_(OK), pe.c.started_at < since)
        .subquery()
    )
    baseline = sa.select(*(before.c[k] for k in HISTORY)).where(before.c.n == 1)
    with engine.connect() as conn:
        parts = [frame(conn, q, HISTORY) for q in (recent, latest_ok, baseline)]
    return pl.concat(parts).unique("id", keep="first").sort("pipeline_name", "started_at")


def first_runs(engine: sa.Engine, pipelines: Sequence[str]) -> dict[str, datetime]:
    """When each pipeline's first recorded run started: its SLA counts from then on."""
    pe = pipeline_executions
    query = (
        sa.select(pe.c.pipeline_name, sa.func.min(pe.c.started_at))
        .where(pe.c.pipeline_name.in_(list(pipelines)))
        .group_by(pe.c.pipeline_name)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return {name: aware(first) for name, first in rows}


def expected_duration(sla: Sla, runs: pl.DataFrame) -> float | None:
    """Seconds a run is expected to take: the 90th percentile (the next higher value) of the durations
    of the latest EXPECTED_RUNS successful runs, given EXPECTED_MIN_RUNS; else max_duration; else None."""
    durations = (
        runs.filter(pl.col("status").is_in(OK), pl.col("duration_seconds").is_not_null())
        .sort("started_at")
        .tail(EXPECTED_RUNS)["duration_seconds"]
    )
    if durations.len() >= EXPECTED_MIN_RUNS:
        return float(durations.quantile(0.9, interpolation="higher"))  # type: ignore[arg-type]
    return sla.max_duration


def span(seconds: float) -> str:
    """A duration in words: 45 s, 20 min, 1.5 h, 26 h."""
    if seconds >= 86400 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h".replace(".0 h", " h")
    if seconds >= 60:
        return f"{seconds / 60:.1f} min".replace(".0 min", " min")
    return f"{seconds:.0f} s"


def day_start(sla: Sla, at: datetime) -> datetime:
    """The local midnight that starts `at`'s day, in UTC."""
    zone = tz_of(sla)
    return datetime.combine(at.astimezone(zone).date(), time(0), zone).astimezone(UTC)


def local_time(sla: Sla, at: datetime) -> str:
    """`at` as the SLA's local time, e.g. "Fri 2026-11-20 07:30 GMT"."""
    return at.astimezone(tz_of(sla)).strftime("%a %Y-%m-%d %H:%M %Z")
