"""Each pipeline with its last run, success rate, mean duration, tags and schedule."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import polars as pl
import sqlalchemy as sa

from headwater.store.tables import data_destinations, data_pipelines, data_sources, pipeline_executions
from headwater.views.frames import UTC_TS, frame
from headwater.views.overview import OK

SCHEMA: dict[str, Any] = {
    "name": pl.String,
    "pipeline_type": pl.String,
    "description": pl.String,
    "owner": pl.String,
    "tags": pl.List(pl.String),
    "schedule_cron": pl.String,
    "schedule_timezone": pl.String,
    "schedule_interval_seconds": pl.Float64,
    "spec_path": pl.String,
}


def pipelines(engine: sa.Engine, now: datetime, days: int = 30) -> pl.DataFrame:
    """One row per active pipeline: last run (id, status, start, duration), runs, success rate (%)
    and mean duration (s, of completed runs) over the last `days`, and its declared schedule."""
    pe, dp = pipeline_executions, data_pipelines
    with engine.connect() as conn:
        specs = frame(
            conn, sa.select(*(dp.c[k] for k in SCHEMA)).where(dp.c.is_active).order_by(dp.c.name), SCHEMA
        )
        runs = frame(
            conn,
            sa.select(pe.c.pipeline_name, pe.c.status, pe.c.duration_seconds).where(
                pe.c.started_at >= now - timedelta(days=days), pe.c.status != "running"
            ),
            {"name": pl.String, "status": pl.String, "duration_seconds": pl.Float64},
        )
        newest = (
            sa.select(pe.c.pipeline_name, sa.func.max(pe.c.started_at).label("started_at"))
            .group_by(pe.c.pipeline_name)
            .subquery()
        )
        last = frame(
            conn,
            sa.select(pe.c.pipeline_name, pe.c.id, pe.c.status, pe.c.started_at, pe.c.duration_seconds).join(
                newest,
                (newest.c.pipeline_name == pe.c.pipeline_name) & (newest.c.started_at == pe.c.started_at),
            ),
            {
                "name": pl.String,
                "last_run_id": pl.String,
                "last_status": pl.String,
                "last_started_at": UTC_TS,
                "last_duration_seconds": pl.Float64,
            },
        )
    stats = runs.group_by("name").agg(
        pl.len().alias("runs"),
        (pl.col("status").is_in(OK).sum() * 100.0 / pl.len()).round(2).alias("success_rate"),
        pl.col("duration_seconds")
        .filter(pl.col("status").is_in(OK))
        .mean()
        .round(2)
        .alias("mean_duration_seconds"),
    )
    return (
        specs.with_columns(pl.col("tags").list.join(", "))
        .join(last.unique("name", keep="first"), on="name", how="left")
        .join(stats, on="name", how="left")
        .with_columns(pl.col("runs").fill_null(0))
    )


def pipeline_detail(engine: sa.Engine, name: str) -> dict[str, pl.DataFrame]:
    """A pipeline's sources and destinations, as the store mirrors its spec."""
    dp = data_pipelines
    with engine.connect() as conn:
        pid = conn.execute(sa.select(dp.c.id).where(dp.c.name == name)).scalar()
        sources = frame(
            conn,
            sa.select(
                data_sources.c.name,
                data_sources.c.kind,
                data_sources.c.location,
                data_sources.c.incremental_cursor,
            )
            .where(data_sources.c.pipeline_id == pid)
            .order_by(data_sources.c.name),
            {"source": pl.String, "kind": pl.String, "location": pl.String, "cursor": pl.String},
        )
        destinations = frame(
            conn,
            sa.select(
                data_destinations.c.step_name,
                data_destinations.c.table_name,
                data_destinations.c.write_mode,
                data_destinations.c.warehouse,
            )
            .where(data_destinations.c.pipeline_id == pid)
            .order_by(data_destinations.c.table_name),
            {"step": pl.String, "table": pl.String, "mode": pl.String, "warehouse": pl.String},
        )
    return {"sources": sources, "destinations": destinations}
