"""Sync health: for each pipeline of type `sync` (a daily SaaS sync, a vendor feed), when it last
succeeded, how stale its data is, when it runs next and how often it failed this week."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import polars as pl
import sqlalchemy as sa

from headwater.control import DeclaredSchedule, next_fire
from headwater.store.tables import data_pipelines, pipeline_executions
from headwater.views.frames import UTC_TS, frame
from headwater.views.overview import OK

FAILED = ("failed", "crashed")
GRACE = timedelta(hours=1)
"""A sync is stale when its last success is older than one schedule period plus this."""

SCHEMA: dict[str, Any] = {
    "name": pl.String,
    "owner": pl.String,
    "schedule": pl.String,
    "health": pl.String,
    "last_success_at": UTC_TS,
    "staleness_seconds": pl.Float64,
    "expected_every_seconds": pl.Float64,
    "next_run": UTC_TS,
    "last_status": pl.String,
    "last_run_at": UTC_TS,
    "runs_7d": pl.Int64,
    "failures_7d": pl.Int64,
    "last_error": pl.String,
}


def schedule_period(declared: DeclaredSchedule, now: datetime) -> float | None:
    """Seconds between two fires of the schedule after `now` (a cron's period), or its interval."""
    if declared.interval_seconds:
        return declared.interval_seconds
    first = next_fire(declared, now)
    if first is None:
        return None
    second = next_fire(declared, first)
    return (second - first).total_seconds() if second is not None else None


def health() -> pl.Expr:
    """failing (the last run failed) | never (no success yet) | stale (the last success is older than a
    schedule period plus an hour) | ok."""
    staleness, period = pl.col("staleness_seconds"), pl.col("expected_every_seconds")
    return (
        pl.when(pl.col("last_status").is_in(FAILED))
        .then(pl.lit("failing"))
        .when(staleness.is_null())
        .then(pl.lit("never"))
        .when(period.is_not_null() & (staleness > period + GRACE.total_seconds()))
        .then(pl.lit("stale"))
        .otherwise(pl.lit("ok"))
        .alias("health")
    )


def sync_health(
    engine: sa.Engine, now: datetime, next_runs: Mapping[str, datetime | None] | None = None
) -> pl.DataFrame:
    """One row per active `sync` pipeline (schema SCHEMA). `next_runs`: the orchestrator's next run
    per pipeline (None for a paused one) where known; otherwise it is computed from the spec's cron
    and time zone (or interval)."""
    dp, pe = data_pipelines, pipeline_executions
    week = now - timedelta(days=7)
    with engine.connect() as conn:
        specs = conn.execute(
            sa.select(
                dp.c.name,
                dp.c.owner,
                dp.c.schedule_cron,
                dp.c.schedule_timezone,
                dp.c.schedule_interval_seconds,
            )
            .where(dp.c.is_active, dp.c.pipeline_type == "sync")
            .order_by(dp.c.name)
        ).all()
        names = [s.name for s in specs]
        success = frame(
            conn,
            sa.select(pe.c.pipeline_name, sa.func.max(sa.func.coalesce(pe.c.ended_at, pe.c.started_at)))
            .where(pe.c.pipeline_name.in_(names), pe.c.status.in_(OK))
            .group_by(pe.c.pipeline_name),
            {"name": pl.String, "last_success_at": UTC_TS},
        )
        week_runs = frame(
            conn,
            sa.select(
                pe.c.pipeline_name,
                sa.func.count(),
                sa.func.sum(sa.case((pe.c.status.in_(FAILED), 1), else_=0)),
            )
            .where(pe.c.pipeline_name.in_(names), pe.c.started_at >= week, pe.c.status != "running")
            .group_by(pe.c.pipeline_name),
            {"name": pl.String, "runs_7d": pl.Int64, "failures_7d": pl.Int64},
        )
        newest = (
            sa.select(pe.c.pipeline_name, sa.func.max(pe.c.started_at).label("started_at"))
            .where(pe.c.pipeline_name.in_(names), pe.c.status != "running")
            .group_by(pe.c.pipeline_name)
            .subquery()
        )
        last = frame(
            conn,
            sa.select(pe.c.pipeline_name, pe.c.status, pe.c.started_at, pe.c.error_message).join(
                newest,
                (newest.c.pipeline_name == pe.c.pipeline_name) & (newest.c.started_at == pe.c.started_at),
            ),
            {"name": pl.String, "last_status": pl.String, "last_run_at": UTC_TS, "last_error": pl.String},
        )
    last = last.unique("name", keep="first")
    last_start = dict(zip(last["name"].to_list(), last["last_run_at"].to_list(), strict=True))
    declared = {
        s.name: DeclaredSchedule(s.name, s.schedule_cron, s.schedule_timezone, s.schedule_interval_seconds)
        for s in specs
    }
    base = pl.DataFrame(
        [
            (
                name,
                spec.owner,
                d.describe() or None,
                schedule_period(d, now),
                next_runs[name]
                if next_runs is not None and name in next_runs
                else next_fire(d, now, last_start.get(name)),
            )
            for spec in specs
            for name, d in [(spec.name, declared[spec.name])]
        ],
        schema={
            "name": pl.String,
            "owner": pl.String,
            "schedule": pl.String,
            "expected_every_seconds": pl.Float64,
            "next_run": UTC_TS,
        },
        orient="row",
    )
    out = (
        base.join(success, on="name", how="left")
        .join(week_runs, on="name", how="left")
        .join(last, on="name", how="left")
        .with_columns(
            ((pl.lit(now).cast(UTC_TS) - pl.col("last_success_at")).dt.total_microseconds() / 1e6).alias(
                "staleness_seconds"
            ),
            pl.col("runs_7d").fill_null(0),
            pl.col("failures_7d").fill_null(0),
        )
    )
    return out.with_columns(health()).select(list(SCHEMA))
