"""Incremental watermarks live in the warehouse, beside the data, and advance in the load's own
transaction: a load that rolls back leaves its watermark where it was."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

WATERMARKS = "headwater_watermarks"
_meta = sa.MetaData()
watermarks = sa.Table(
    WATERMARKS,
    _meta,
    sa.Column("pipeline", sa.String(200), primary_key=True),
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("value_type", sa.String(20), nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


def encode(value: Any) -> tuple[str, str]:
    if isinstance(value, bool):
        return str(value), "bool"
    if isinstance(value, int):
        return str(value), "int"
    if isinstance(value, float):
        return repr(value), "float"
    if isinstance(value, Decimal):
        return str(value), "decimal"
    if isinstance(value, datetime):
        return value.isoformat(), "datetime"
    if isinstance(value, date):
        return value.isoformat(), "date"
    return str(value), "str"


def decode(value: str, value_type: str) -> Any:
    match value_type:
        case "int":
            return int(value)
        case "float":
            return float(value)
        case "decimal":
            return Decimal(value)
        case "datetime":
            return datetime.fromisoformat(value)
        case "date":
            return date.fromisoformat(value)
        case "bool":
            return value == "True"
    return value


def read_watermark(engine: sa.Engine, pipeline: str, source: str) -> Any:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(WATERMARKS):
            return None
        row = conn.execute(
            sa.select(watermarks.c.value, watermarks.c.value_type).where(
                watermarks.c.pipeline == pipeline, watermarks.c.source == source
            )
        ).first()
    return decode(row.value, row.value_type) if row else None


def write_watermark(
    conn: sa.Connection, pipeline: str, source: str, value: Any, run_id: str, *, ensure: bool = True
) -> None:
    """Upsert, inside the caller's transaction. `ensure` False: the caller knows the table exists
    (a stream processor writes its states every batch; the existence check is a catalog query)."""
    if ensure:
        watermarks.create(conn, checkfirst=True)
    text, kind = encode(value)
    now = datetime.now(UTC)
    key = (watermarks.c.pipeline == pipeline) & (watermarks.c.source == source)
    updated = conn.execute(
        sa.update(watermarks).where(key).values(value=text, value_type=kind, run_id=run_id, updated_at=now)
    ).rowcount
    if not updated:
        conn.execute(
            sa.insert(watermarks).values(
                pipeline=pipeline, source=source, value=text, value_type=kind, run_id=run_id, updated_at=now
            )
        )
