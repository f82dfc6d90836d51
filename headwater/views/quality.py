"""Quality over time: scores by pipeline, table and dimension, the rules that fail most, quality by
source (through column lineage), and recommendations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

from headwater.store.tables import (
    data_lineage,
    data_pipelines,
    data_quality_checks,
    data_quality_rules,
    pipeline_executions,
)
from headwater.views.frames import UTC_TS, frame

CHECKS: dict[str, Any] = {
    "execution_id": pl.String,
    "pipeline_name": pl.String,
    "suite": pl.String,
    "table_name": pl.String,
    "rule_name": pl.String,
    "dimension": pl.String,
    "severity": pl.String,
    "action": pl.String,
    "records_checked": pl.Int64,
    "records_failed": pl.Int64,
    "pass_rate": pl.Float64,
    "success": pl.Boolean,
    "remediation": pl.String,
    "checked_at": UTC_TS,
}


def checks(engine: sa.Engine, since: datetime, pipeline: str | None = None) -> pl.DataFrame:
    """Every rule check since `since`, oldest first."""
    c = data_quality_checks
    query = (
        sa.select(*(c.c[k] for k in CHECKS)).where(c.c.checked_at >= since).order_by(c.c.checked_at, c.c.id)
    )
    if pipeline:
        query = query.where(c.c.pipeline_name == pipeline)
    return frame(engine, query, CHECKS)


def score_trend(engine: sa.Engine, since: datetime, pipeline: str | None = None) -> pl.DataFrame:
    """day, pipeline_name, score (mean of the day's run quality scores), runs."""
    pe = pipeline_executions
    query = sa.select(pe.c.pipeline_name, pe.c.started_at, pe.c.quality_score).where(
        pe.c.started_at >= since, pe.c.quality_score.is_not(None)
    )
    if pipeline:
        query = query.where(pe.c.pipeline_name == pipeline)
    runs = frame(engine, query, {"pipeline_name": pl.String, "started_at": UTC_TS, "score": pl.Float64})
    return (
        runs.group_by(pl.col("started_at").dt.date().alias("day"), "pipeline_name")
        .agg(pl.col("score").mean().round(2), pl.len().alias("runs"))
        .sort("day", "pipeline_name")
    )


def _pass_rate() -> pl.Expr:
    """Records passed / records checked over the group, in %."""
    checked = pl.col("records_checked").sum()
    return (
        pl.when(checked > 0)
        .then((100.0 * (1 - pl.col("records_failed").sum() / checked)).round(2))
        .otherwise(None)
    )


def trend_by(frame_: pl.DataFrame, column: str) -> pl.DataFrame:
    """day, `column`, pass_rate (%, records passed over records checked that day), checks."""
    return (
        frame_.group_by(pl.col("checked_at").dt.date().alias("day"), column)
        .agg(_pass_rate().alias("pass_rate"), pl.len().alias("checks"))
        .sort("day", column)
    )


def latest_by(frame_: pl.DataFrame, column: str) -> pl.DataFrame:
    """`column`, pass_rate of each pipeline's latest run's checks, grouped by `column`."""
    if frame_.is_empty():
        return pl.DataFrame(schema={column: pl.String, "pass_rate": pl.Float64, "rules": pl.UInt32})
    last = frame_.group_by("pipeline_name").agg(pl.col("checked_at").max().alias("last"))
    newest = frame_.join(last, on="pipeline_name").filter(pl.col("checked_at") == pl.col("last"))
    return newest.group_by(column).agg(_pass_rate().alias("pass_rate"), pl.len().alias("rules")).sort(column)


def top_issues(frame_: pl.DataFrame, limit: int = 10) -> pl.DataFrame:
    """Rules that failed in the window, the most often failing first: runs failing, records failed,
    the latest pass rate and remediation hint."""
    failing = frame_.filter(pl.col("records_failed") > 0)
    if failing.is_empty():
        return failing.select("pipeline_name", "table_name", "rule_name", "dimension", "severity", "action")
    keys = ["pipeline_name", "table_name", "rule_name"]
    stats = frame_.group_by(keys).agg(
        pl.col("dimension").last(),
        pl.col("severity").last(),
        pl.col("action").last(),
        (pl.col("records_failed") > 0).sum().alias("runs_failing"),
        pl.len().alias("runs_checked"),
        pl.col("records_failed").sum().alias("records_failed"),
        pl.col("pass_rate").last().alias("last_pass_rate"),
        pl.col("checked_at").last().alias("last_checked_at"),
        pl.col("remediation").drop_nulls().last().alias("remediation"),
    )
    return (
        stats.filter(pl.col("runs_failing") > 0)
        .sort(["runs_failing", "records_failed", "rule_name"], descending=[True, True, False])
        .head(limit)
    )


def by_source(engine: sa.Engine, frame_: pl.DataFrame) -> pl.DataFrame:
    """Checks attributed to the source tables their columns come from (column lineage): per source,
    the rules checking its columns, records checked and failed, and the pass rate. A rule on a
    column made from two sources counts for both; a column with no recorded lineage counts for
    '(made in the pipeline)'."""
    schema = {
        "source_dataset": pl.String,
        "source_table": pl.String,
        "rules": pl.UInt32,
        "records_checked": pl.Int64,
        "records_failed": pl.Int64,
        "pass_rate": pl.Float64,
    }
    if frame_.is_empty():
        return pl.DataFrame(schema=schema)
    r, lin = data_quality_rules, data_lineage
    rules = frame(
        engine,
        sa.select(r.c.pipeline_name, r.c.suite, r.c.rule_name, r.c.columns),
        {
            "pipeline_name": pl.String,
            "suite": pl.String,
            "rule_name": pl.String,
            "column": pl.List(pl.String),
        },
    ).explode("column")
    lineage = frame(
        engine,
        sa.select(
            lin.c.pipeline_name,
            lin.c.target_table,
            lin.c.target_column,
            lin.c.source_dataset,
            lin.c.source_table,
        ).distinct(),
        {
            "pipeline_name": pl.String,
            "table_name": pl.String,
            "column": pl.String,
            "source_dataset": pl.String,
            "source_table": pl.String,
        },
    )
    attributed = (
        frame_.join(rules, on=["pipeline_name", "suite", "rule_name"], how="left")
        .join(lineage, on=["pipeline_name", "table_name", "column"], how="left")
        .with_columns(
            pl.col("source_dataset").fill_null(pl.col("pipeline_name")),
            pl.col("source_table").fill_null(pl.lit("(made in the pipeline)")),
        )
        # one check counts once per source even when several of its columns come from there
        .unique(["execution_id", "rule_name", "checked_at", "source_dataset", "source_table"])
    )
    return (
        attributed.group_by("source_dataset", "source_table")
        .agg(
            pl.col("rule_name").n_unique().cast(pl.UInt32).alias("rules"),
            pl.col("records_checked").sum(),
            pl.col("records_failed").sum(),
            _pass_rate().alias("pass_rate"),
        )
        .sort("pass_rate", "source_table", nulls_last=True)
        .select(list(schema))
    )


@dataclass(frozen=True)
class Recommendation:
    priority: str
    """high | medium | low"""
    pipeline: str
    title: str
    detail: str
    action: str


PRIORITY = {"critical": "high", "error": "high", "warning": "medium", "info": "low"}


def recommendations(
    engine: sa.Engine,
    frame_: pl.DataFrame,
    now: datetime,
    quarantined: dict[tuple[str, str], int] | None = None,
) -> list[Recommendation]:
    """What to do next, most pressing first: rules failing run after run, pass rates that fell,
    rows waiting in quarantine, low scores, pipelines no quality rule checks (neither a suite nor a
    validate step's quick `expect` rules or `min_rows`: data_quality_rules holds them all)."""
    out: list[Recommendation] = []
    keys = ["pipeline_name", "table_name", "rule_name"]
    if not frame_.is_empty():
        per_rule = frame_.group_by(keys, maintain_order=True).agg(
            pl.col("records_failed").tail(3).alias("last3"),
            pl.col("pass_rate").last().alias("last_rate"),
            pl.col("pass_rate").head(pl.len() - 1).tail(7).mean().alias("before"),
            pl.col("severity").last(),
            pl.col("action").last(),
            pl.col("remediation").drop_nulls().last(),
        )
        for row in per_rule.sort(keys).iter_rows(named=True):
            where = f"{row['rule_name']} on {row['table_name']}"
            if len(row["last3"]) == 3 and all(n > 0 for n in row["last3"]):
                then = {
                    "quarantine": "fix the data at its source, then replay the quarantine",
                    "fail": "fix the data at its source; runs fail until it passes",
                }.get(row["action"], "fix the data at its source, or change the rule if the data is right")
                out.append(
                    Recommendation(
                        PRIORITY.get(row["severity"], "medium"),
                        row["pipeline_name"],
                        f"{where} failed in each of its last 3 runs ({row['last_rate']:.2f}% pass)",
                        row["remediation"] or "",
                        then,
                    )
                )
            elif row["before"] is not None and row["last_rate"] < row["before"] - 5:
                out.append(
                    Recommendation(
                        "medium",
                        row["pipeline_name"],
                        f"{where}: pass rate fell to {row['last_rate']:.2f}% from {row['before']:.2f}%",
                        row["remediation"] or "",
                        "compare the latest run's failing samples with earlier runs",
                    )
                )
    for (pipeline, table), count in sorted((quarantined or {}).items()):
        if count:
            out.append(
                Recommendation(
                    "medium",
                    pipeline,
                    f"{count:,} row(s) of {table} wait in quarantine",
                    "they were set aside by quarantine rules and are not in the table",
                    "fix their cause, then replay them (Quality → Quarantine)",
                )
            )
    pe, dp = pipeline_executions, data_pipelines
    with engine.connect() as conn:
        newest = (
            sa.select(pe.c.pipeline_name, sa.func.max(pe.c.started_at).label("started_at"))
            .where(pe.c.quality_score.is_not(None))
            .group_by(pe.c.pipeline_name)
            .subquery()
        )
        low = conn.execute(
            sa.select(pe.c.pipeline_name, pe.c.quality_score)
            .join(
                newest,
                (newest.c.pipeline_name == pe.c.pipeline_name) & (newest.c.started_at == pe.c.started_at),
            )
            .where(pe.c.quality_score < 90)
            .order_by(pe.c.pipeline_name)
        ).all()
        unchecked = (
            conn.execute(
                sa.select(dp.c.name)
                .where(
                    dp.c.is_active, dp.c.name.not_in(sa.select(data_quality_rules.c.pipeline_name).distinct())
                )
                .order_by(dp.c.name)
            )
            .scalars()
            .all()
        )
    for name, score in low:
        out.append(
            Recommendation(
                "high" if score < 75 else "medium",
                name,
                f"latest quality score {score:.2f} is below 90",
                "see Top issues for the rules that pull it down",
                "fix the failing rules' data, or review their weights and thresholds",
            )
        )
    for name in unchecked:
        out.append(
            Recommendation(
                "low",
                name,
                "no quality rules check this pipeline",
                "its data loads unchecked: no suite and no `expect` rules in a validate step",
                f"add `expect` rules to a validate step, or draft a suite: "
                f"headwater profile {name}:<source> --suite quality_suites/{name}.json",
            )
        )
    order = {"high": 0, "medium": 1, "low": 2}
    return sorted(out, key=lambda r: order[r.priority])
