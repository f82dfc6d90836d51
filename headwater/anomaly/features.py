"""Run-history features: one row per run of a pipeline (optionally narrowed to one target table), built
from the dicts the store returns, so it can be computed and tested without a database.

Metrics (null where the store has nothing to say):
- `rows_in` (records_processed), `rows_out` (records_loaded), `quarantine_rate` (quarantined / processed),
  `duration_seconds`, `quality_score`;
- `freshness_lag_seconds`: this run's start minus the start of the previous successful run;
- `null_rate:<rule>`: records_failed / records_checked of each not_null check (data_quality_checks);
- `schema_width`: the largest integer `schema_width` any step of the run reported in its metrics.
Seasonality (not metrics): `hour`, `weekday` (1 = Monday .. 7 = Sunday), `day_of_month`, in UTC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from headwater.store.store import Store

SUCCESS = ("completed", "completed_with_warnings")
NOT_NULL = "expect_column_values_to_not_be_null"
NULL_RATE = "null_rate:"
BASE_METRICS = ("rows_in", "rows_out", "quarantine_rate", "duration_seconds", "quality_score")
SEASON_COLUMNS = ("hour", "weekday", "day_of_month")
KEY_COLUMNS = ("run_id", "pipeline_name", "status", "started_at")

_RUN_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.String(),
    "pipeline_name": pl.String(),
    "status": pl.String(),
    "started_at": pl.Datetime("us", "UTC"),
    "records_processed": pl.Int64(),
    "records_loaded": pl.Int64(),
    "records_quarantined": pl.Int64(),
    "duration_seconds": pl.Float64(),
    "quality_score": pl.Float64(),
}


def metric_columns(frame: pl.DataFrame) -> list[str]:
    """The metric columns of a feature frame (what a detector looks at), in frame order."""
    skip = {*KEY_COLUMNS, *SEASON_COLUMNS}
    return [c for c in frame.columns if c not in skip]


def run_features(
    runs: Sequence[Mapping[str, Any]],
    checks: Sequence[Mapping[str, Any]] = (),
    steps: Sequence[Mapping[str, Any]] = (),
    *,
    table: str | None = None,
) -> pl.DataFrame:
    """One row per run, oldest first. `runs` are pipeline_executions rows of one pipeline;
    `checks` data_quality_checks rows (only not_null rules of `table`, when given, are used);
    `steps` step_executions rows. Unknown keys are ignored."""
    pipelines = {r["pipeline_name"] for r in runs}
    if len(pipelines) > 1:
        raise ValueError(f"run_features takes the runs of one pipeline, got {sorted(pipelines)}")
    frame = pl.DataFrame(
        [{k: r.get("id" if k == "run_id" else k) for k in _RUN_SCHEMA} for r in runs],
        schema=_RUN_SCHEMA,
        orient="row",
    ).sort("started_at")
    ok_start = pl.when(pl.col("status").is_in(SUCCESS)).then(pl.col("started_at"))
    processed = pl.col("records_processed")
    out = frame.select(
        "run_id",
        "pipeline_name",
        "status",
        "started_at",
        processed.cast(pl.Float64).alias("rows_in"),
        pl.col("records_loaded").cast(pl.Float64).alias("rows_out"),
        pl.when(processed > 0)
        .then(pl.col("records_quarantined") / processed)
        .otherwise(0.0)
        .alias("quarantine_rate"),
        "duration_seconds",
        "quality_score",
        (pl.col("started_at") - ok_start.shift(1).forward_fill())
        .dt.total_microseconds()
        .truediv(1e6)
        .alias("freshness_lag_seconds"),
        pl.col("started_at").dt.hour().cast(pl.Int8).alias("hour"),
        pl.col("started_at").dt.weekday().cast(pl.Int8).alias("weekday"),
        pl.col("started_at").dt.day().cast(pl.Int8).alias("day_of_month"),
    )
    out = out.join(_null_rates(checks, table), on="run_id", how="left")
    return out.join(_schema_width(steps), on="run_id", how="left")


def _null_rates(checks: Sequence[Mapping[str, Any]], table: str | None) -> pl.DataFrame:
    rows = [
        {
            "run_id": c["execution_id"],
            "rule": NULL_RATE + str(c["rule_name"]),
            "checked": c["records_checked"],
            "failed": c["records_failed"],
        }
        for c in checks
        if c.get("expectation_type") == NOT_NULL and (table is None or c.get("table_name") == table)
    ]
    if not rows:
        return pl.DataFrame(schema={"run_id": pl.String()})
    long = pl.DataFrame(
        rows, schema={"run_id": pl.String(), "rule": pl.String(), "checked": pl.Int64(), "failed": pl.Int64()}
    )
    rates = long.group_by("run_id", "rule").agg(
        pl.when(pl.col("checked").sum() > 0)
        .then(pl.col("failed").sum() / pl.col("checked").sum())
        .otherwise(0.0)
        .alias("rate")
    )
    return rates.pivot("rule", index="run_id", values="rate", sort_columns=True)


def _schema_width(steps: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    rows = [
        {"run_id": s["execution_id"], "schema_width": width}
        for s in steps
        if isinstance(width := (s.get("metrics") or {}).get("schema_width"), int)
        and not isinstance(width, bool)
    ]
    if not rows:
        return pl.DataFrame(schema={"run_id": pl.String()})
    frame = pl.DataFrame(rows, schema={"run_id": pl.String(), "schema_width": pl.Float64()})
    return frame.group_by("run_id").agg(pl.col("schema_width").max())


def features_from_store(
    store: Store, pipeline: str, *, table: str | None = None, limit: int = 500
) -> pl.DataFrame:
    """The feature frame of `pipeline`'s last `limit` runs, read from the store."""
    runs = store.runs(pipeline, limit=limit)
    ids = [r["id"] for r in runs]
    checks = store.quality_checks_of(ids)  # two queries, not two per run: this runs after every run
    steps = store.steps_of(ids)
    return run_features(runs, checks, steps, table=table)
