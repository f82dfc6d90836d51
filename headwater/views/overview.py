"""The overview: how many pipelines, what runs now, how often runs succeed, how good the data is,
and what alerts are open."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl
import sqlalchemy as sa

from headwater.store.tables import alert_instances, data_pipelines, pipeline_executions
from headwater.views.frames import UTC_TS, frame, rate

OK = ("completed", "completed_with_warnings")
FAILED = ("failed", "crashed")
ACTIVE_ALERTS = ("open", "acknowledged", "suppressed")


@dataclass(frozen=True)
class Overview:
    total_pipelines: int
    running_now: int
    runs_7d: int
    success_rate_7d: float | None
    """% of finished runs in the last 7 days that completed (with or without warnings)."""
    success_rate_prev_7d: float | None
    """The same for the 7 days before: the trend."""
    failed_24h: int
    """Runs started in the last 24 hours that failed or crashed."""
    quality_score: float | None
    """Mean of each pipeline's latest quality score."""
    quality_score_week_ago: float | None
    """The same, from runs that started before 7 days ago."""
    open_alerts: int
    acknowledged_alerts: int
    silenced_alerts: int
    quality_trend: pl.DataFrame
    """day, score (mean of that day's run scores), runs: the last 30 days."""


def _latest_scores(scores: pl.DataFrame) -> float | None:
    if scores.is_empty():
        return None
    latest = scores.sort("started_at").group_by("pipeline_name").agg(pl.col("quality_score").last())
    value = latest["quality_score"].mean()
    return round(float(value), 2) if value is not None else None  # type: ignore[arg-type]


def overview(engine: sa.Engine, now: datetime) -> Overview:
    pe = pipeline_executions
    with engine.connect() as conn:
        total = conn.execute(
            sa.select(sa.func.count()).select_from(data_pipelines).where(data_pipelines.c.is_active)
        ).scalar_one()
        recent = frame(
            conn,
            sa.select(pe.c.status, pe.c.started_at).where(pe.c.started_at >= now - timedelta(days=14)),
            {"status": pl.String, "started_at": UTC_TS},
        )
        running = conn.execute(
            sa.select(sa.func.count()).select_from(pe).where(pe.c.status == "running")
        ).scalar_one()
        scores = frame(
            conn,
            sa.select(pe.c.pipeline_name, pe.c.started_at, pe.c.quality_score).where(
                pe.c.quality_score.is_not(None)
            ),
            {"pipeline_name": pl.String, "started_at": UTC_TS, "quality_score": pl.Float64},
        )
        alerts: dict[str, int] = {
            status: int(count)
            for status, count in conn.execute(
                sa.select(alert_instances.c.status, sa.func.count())
                .where(alert_instances.c.status.in_(ACTIVE_ALERTS))
                .group_by(alert_instances.c.status)
            ).all()
        }

    def success(since: datetime, until: datetime) -> tuple[int, float | None]:
        window = recent.filter(
            pl.col("started_at").is_between(since, until, closed="left"),
            ~pl.col("status").is_in(["running", "skipped"]),  # skipped: nothing to do, not a success
        )
        return window.height, rate(window.filter(pl.col("status").is_in(OK)).height, window.height)

    runs_7d, success_7d = success(now - timedelta(days=7), now + timedelta(seconds=1))
    _, success_prev = success(now - timedelta(days=14), now - timedelta(days=7))
    failed_24h = recent.filter(
        pl.col("started_at") >= now - timedelta(hours=24), pl.col("status").is_in(FAILED)
    ).height
    trend = (
        scores.filter(pl.col("started_at") >= now - timedelta(days=30))
        .group_by(pl.col("started_at").dt.date().alias("day"))
        .agg(pl.col("quality_score").mean().round(2).alias("score"), pl.len().alias("runs"))
        .sort("day")
    )
    return Overview(
        total_pipelines=int(total),
        running_now=int(running),
        runs_7d=runs_7d,
        success_rate_7d=success_7d,
        success_rate_prev_7d=success_prev,
        failed_24h=failed_24h,
        quality_score=_latest_scores(scores),
        quality_score_week_ago=_latest_scores(scores.filter(pl.col("started_at") < now - timedelta(days=7))),
        open_alerts=int(alerts.get("open", 0)),
        acknowledged_alerts=int(alerts.get("acknowledged", 0)),
        silenced_alerts=int(alerts.get("suppressed", 0)),
        quality_trend=trend,
    )
