"""Quarantined rows live in the warehouse beside the data (table headwater_quarantine), written in
the same transaction as the load of the rows that passed: nothing is lost, nothing is loaded half.
Each row keeps its full values (JSON, for replay) and, for people, the rules it broke, their
columns and the masked values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

QUARANTINE = "headwater_quarantine"
RULES, COLUMNS = "__hw_rules", "__hw_columns"
_meta = sa.MetaData()
quarantine = sa.Table(
    QUARANTINE,
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pipeline", sa.String(200), nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("target_table", sa.String(400), nullable=False),
    sa.Column("rules", sa.Text, nullable=False),
    sa.Column("columns", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("masked_values", sa.Text, nullable=False),
    sa.Column("row_data", sa.Text, nullable=False),
    sa.Column("row_key", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("replay_run_id", sa.String(36)),
    sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("replayed_at", sa.DateTime(timezone=True)),
    sa.Index("ix_headwater_quarantine_target_status", "pipeline", "target_table", "status"),
    sa.Index("ix_headwater_quarantine_key", "pipeline", "target_table", "row_key"),
)


@dataclass(frozen=True)
class QuarantineBatch:
    """Rows set aside by a validate step: the data columns plus RULES and COLUMNS (lists)."""

    frame: pl.DataFrame

    @property
    def data(self) -> pl.DataFrame:
        return self.frame.drop(RULES, COLUMNS)


def _json_list(expr: pl.Expr) -> pl.Expr:
    return pl.struct(expr.alias("v")).struct.json_encode().str.slice(5).str.head(-1)


def _masked(column: str) -> pl.Expr:
    text = pl.col(column).cast(pl.String)
    n = text.str.len_chars()
    return (
        pl.when(n <= 2)
        .then(pl.lit("*").repeat_by(n).list.join(""))
        .otherwise(text.str.head(1) + pl.lit("*").repeat_by(n - 2).list.join("") + text.str.tail(1))
        .alias(column)
    )


def quarantine_rows(
    batch: QuarantineBatch, *, pipeline: str, run_id: str, target: str, pii: set[str], key: list[str]
) -> list[dict[str, Any]]:
    """Records for headwater_quarantine, built with expressions (no loop over rows)."""
    frame = batch.frame
    if not frame.height:
        return []
    data = batch.data
    shown = sorted(
        {
            c
            for group in frame[COLUMNS].explode().drop_nulls().unique()
            for c in group.split(",")
            if c in data.columns
        }
    )
    out = frame.select(
        _json_list(pl.col(RULES)).alias("rules"),
        _json_list(pl.col(COLUMNS).list.join(",").str.split(",").list.unique().list.sort()).alias("columns"),
        (pl.lit("broke ") + pl.col(RULES).list.join(", ")).alias("reason"),
        (
            pl.struct([_masked(c) if c in pii else pl.col(c) for c in shown]).struct.json_encode()
            if shown
            else pl.lit("{}")
        ).alias("masked_values"),
        pl.struct(data.columns).struct.json_encode().alias("row_data"),
        (pl.struct(key).struct.json_encode() if key else pl.struct(data.columns).struct.json_encode()).alias(
            "row_key"
        ),
    )
    stamp = datetime.now(UTC)
    constants = {
        "pipeline": pipeline,
        "run_id": run_id,
        "target_table": target,
        "status": "quarantined",
        "quarantined_at": stamp,
    }
    return [{**row, **constants} for row in out.iter_rows(named=True)]  # the insert's parameter rows


def write_quarantine(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Inside the caller's transaction. A row already waiting in quarantine (same pipeline, target
    and key) is replaced by its newer record, so a row is quarantined once however often it fails."""
    quarantine.create(conn, checkfirst=True)
    if not rows:
        return
    pipeline, target = rows[0]["pipeline"], rows[0]["target_table"]
    keys = [r["row_key"] for r in rows]
    for start in range(0, len(keys), 5_000):
        conn.execute(
            sa.delete(quarantine).where(
                quarantine.c.pipeline == pipeline,
                quarantine.c.target_table == target,
                quarantine.c.status == "quarantined",
                quarantine.c.row_key.in_(keys[start : start + 5_000]),
            )
        )
    conn.execute(sa.insert(quarantine), rows)


def mark_replayed(conn: sa.Connection, ids: list[int], run_id: str) -> int:
    """Mark quarantine records replayed by `run_id`; only records still quarantined count, so a
    row is replayed once."""
    done = conn.execute(
        sa.update(quarantine)
        .where(quarantine.c.id.in_(ids), quarantine.c.status == "quarantined")
        .values(status="replayed", replay_run_id=run_id, replayed_at=datetime.now(UTC))
    ).rowcount
    if done != len(ids):
        raise RuntimeError(f"{len(ids) - done} quarantined row(s) were replayed by another run meanwhile")
    return int(done)


def count_quarantined(engine: sa.Engine, pipeline: str, target: str) -> int:
    """Rows of `target` still waiting in quarantine."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(QUARANTINE):
            return 0
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(quarantine)
                .where(
                    quarantine.c.pipeline == pipeline,
                    quarantine.c.target_table == target,
                    quarantine.c.status == "quarantined",
                )
            ).scalar_one()
        )


def read_quarantined(
    engine: sa.Engine, pipeline: str, target: str | None = None, status: str | None = "quarantined"
) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(QUARANTINE):
            return []
        stmt = sa.select(quarantine).where(quarantine.c.pipeline == pipeline).order_by(quarantine.c.id)
        if target:
            stmt = stmt.where(quarantine.c.target_table == target)
        if status:
            stmt = stmt.where(quarantine.c.status == status)
        return [dict(r._mapping) for r in conn.execute(stmt)]


def decode_rows(records: list[dict[str, Any]], schema: pl.Schema) -> pl.DataFrame:
    """The quarantined rows as a frame of `schema` (the rows as the validate step saw them)."""
    dtype = pl.Struct(schema)
    texts = pl.Series("j", [r["row_data"] for r in records], dtype=pl.String)
    return pl.DataFrame({"j": texts}).select(pl.col("j").str.json_decode(dtype)).unnest("j")
