"""The quarantine browser's reads: counts by status and rule, and pages of rows with masked values
only (the full row data, kept for replay, is never read here)."""

from __future__ import annotations

from typing import Any

import polars as pl
import sqlalchemy as sa

from headwater.load.quarantine import QUARANTINE, quarantine
from headwater.views.frames import UTC_TS, frame

ROW: dict[str, Any] = {
    "id": pl.Int64,
    "status": pl.String,
    "rules": pl.String,
    "masked_values": pl.String,
    "run_id": pl.String,
    "quarantined_at": UTC_TS,
    "replay_run_id": pl.String,
}


def _exists(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        return sa.inspect(conn).has_table(QUARANTINE)


def counts(engine: sa.Engine, pipeline: str, target: str) -> pl.DataFrame:
    """status, rules (the JSON list a row broke), rows."""
    schema = {"status": pl.String, "rules": pl.String, "rows": pl.Int64}
    if not _exists(engine):
        return pl.DataFrame(schema=schema)
    q = quarantine
    return frame(
        engine,
        sa.select(q.c.status, q.c.rules, sa.func.count())
        .where(q.c.pipeline == pipeline, q.c.target_table == target)
        .group_by(q.c.status, q.c.rules)
        .order_by(sa.func.count().desc()),
        schema,
    )


def rows(
    engine: sa.Engine,
    pipeline: str,
    target: str,
    *,
    status: str | None = "quarantined",
    rule: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> pl.DataFrame:
    """A page of quarantined rows, oldest first; `rule` keeps rows that broke that rule."""
    if not _exists(engine):
        return pl.DataFrame(schema=ROW)
    q = quarantine
    query = (
        sa.select(*(q.c[k] for k in ROW))
        .where(q.c.pipeline == pipeline, q.c.target_table == target)
        .order_by(q.c.id)
        .limit(limit)
        .offset(offset)
    )
    if status:
        query = query.where(q.c.status == status)
    if rule:
        query = query.where(q.c.rules.contains(f'"{rule}"', autoescape=True))
    return frame(engine, query, ROW)
