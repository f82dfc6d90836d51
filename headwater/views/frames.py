"""Query results as Polars frames with fixed schemas (an empty result keeps its columns and types);
timestamps as UTC whatever the database returned (SQLite gives naive UTC, PostgreSQL aware)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl
import sqlalchemy as sa

UTC_TS = pl.Datetime("us", "UTC")


def frame(
    engine: sa.Engine | sa.Connection, query: sa.Select[Any], schema: Mapping[str, Any]
) -> pl.DataFrame:
    """Run `query`; its selected columns, in order, get `schema`'s names and types."""
    if isinstance(engine, sa.Connection):
        rows = engine.execute(query).all()
    else:
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=dict(schema), orient="row")


def rate(numerator: int | float, denominator: int | float) -> float | None:
    """A percentage, or None when there is nothing to divide by."""
    return round(100.0 * numerator / denominator, 2) if denominator else None
