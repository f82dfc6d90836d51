"""Stream processors as the console and the API show them: each processor with its health and
current figures, one processor's per-minute history (stream_metrics), and its dead letters read from
the dead-letter stream (values masked when they were written; this only reads)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import polars as pl
import sqlalchemy as sa

from headwater.store.tables import stream_metrics, stream_processors
from headwater.views.frames import UTC_TS, frame

if TYPE_CHECKING:
    import redis

STALLED_SECONDS = 60.0
"""A running processor with lag is stalled when its last batch is older than this."""
LAGGING_SECONDS = 30.0
"""A running processor is lagging when its lag is more than this many seconds of its throughput..."""
LAGGING_EVENTS = 1000
"""...and more than this many entries."""

PROCESSORS: dict[str, Any] = {
    "name": pl.String,
    "stream": pl.String,
    "group_name": pl.String,
    "consumer": pl.String,
    "status": pl.String,
    "started_at": UTC_TS,
    "last_batch_at": UTC_TS,
    "events_read": pl.Int64,
    "events_loaded": pl.Int64,
    "events_dead": pl.Int64,
    "last_id": pl.String,
    "lag": pl.Int64,
    "error": pl.String,
    "updated_at": UTC_TS,
}
HISTORY: dict[str, Any] = {
    "minute": UTC_TS,
    "events_read": pl.Int64,
    "events_loaded": pl.Int64,
    "events_dead": pl.Int64,
    "batches": pl.Int64,
    "errors": pl.Int64,
    "seconds": pl.Float64,
    "throughput": pl.Float64,
    "lag": pl.Int64,
    "pending": pl.Int64,
    "latency_p50_ms": pl.Float64,
    "latency_p99_ms": pl.Float64,
    "cpu_seconds": pl.Float64,
    "rss_bytes": pl.Int64,
    "updated_at": UTC_TS,
}
DEAD_LETTERS: dict[str, Any] = {
    "id": pl.String,
    "source_id": pl.String,
    "processor": pl.String,
    "reason": pl.String,
    "rules": pl.String,
    "values": pl.String,
    "deliveries": pl.Int64,
    "replayed_at": pl.String,
}


def health(now: datetime) -> pl.Expr:
    """failed | stopped (as the processor recorded them) | stalled (running or retrying, lag > 0, no
    batch for STALLED_SECONDS) | lagging (lag above LAGGING_EVENTS and above LAGGING_SECONDS of the
    newest minute's throughput) | ok."""
    since_batch = (pl.lit(now, dtype=UTC_TS) - pl.coalesce("last_batch_at", "started_at")).dt.total_seconds()
    lag = pl.col("lag").fill_null(0)
    return (
        pl.when(pl.col("status") == "failed")
        .then(pl.lit("failed"))
        .when(pl.col("status") == "stopped")
        .then(pl.lit("stopped"))
        .when((lag > 0) & (since_batch > STALLED_SECONDS))
        .then(pl.lit("stalled"))
        .when((lag > LAGGING_EVENTS) & (lag > pl.col("throughput").fill_null(0) * LAGGING_SECONDS))
        .then(pl.lit("lagging"))
        .otherwise(pl.lit("ok"))
        .alias("health")
    )


def processors(engine: sa.Engine, now: datetime) -> pl.DataFrame:
    """One row per processor (PROCESSORS' columns), with `throughput` (events/s in its newest minute
    of history), `pending` (at that minute's last batch) and `health`, ordered by name."""
    sp, sm = stream_processors, stream_metrics
    table = frame(engine, sa.select(*(sp.c[c] for c in PROCESSORS)).order_by(sp.c.name), PROCESSORS)
    newest = sa.select(sm.c.name, sa.func.max(sm.c.minute).label("minute")).group_by(sm.c.name).subquery()
    latest = frame(
        engine,
        sa.select(sm.c.name, sm.c.throughput, sm.c.pending).join(
            newest, sa.and_(sm.c.name == newest.c.name, sm.c.minute == newest.c.minute)
        ),
        {"name": pl.String, "throughput": pl.Float64, "pending": pl.Int64},
    )
    return table.join(latest, on="name", how="left").sort("name").with_columns(health(now))


def history(engine: sa.Engine, name: str, since: datetime) -> pl.DataFrame:
    """The processor's minutes from `since` on, oldest first (HISTORY's columns)."""
    sm = stream_metrics
    query = (
        sa.select(*(sm.c[c] for c in HISTORY))
        .where(sm.c.name == name, sm.c.minute >= since.replace(second=0, microsecond=0))
        .order_by(sm.c.minute)
    )
    return frame(engine, query, HISTORY)


def dead_stream(stream: str) -> str:
    """The dead-letter stream the console and API read: the default `<stream>:dead`."""
    return f"{stream}:dead"


def dead_letters(client: redis.Redis, stream: str, count: int = 50) -> pl.DataFrame:
    """The newest `count` dead letters of `stream`, newest first: reason, broken rules (a readable
    list), values as written (PII masked) and when a replay loaded it (None: not replayed)."""
    from headwater.streams.replay import replayed_key

    entries: list[tuple[Any, Any]] = client.xrevrange(dead_stream(stream), count=count) or []
    rows = [_letter(entry_id, fields or {}) for entry_id, fields in entries]
    if rows:
        when = client.hmget(replayed_key(dead_stream(stream)), [r[1] or "" for r in rows]) or []
        rows = [(*r, None if w is None else _text(w)) for r, w in zip(rows, when, strict=True)]
    return pl.DataFrame(rows, schema=DEAD_LETTERS, orient="row")


def dead_count(client: redis.Redis, stream: str) -> int:
    return int(client.xlen(dead_stream(stream)))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _letter(entry_id: Any, fields: dict[Any, Any]) -> tuple[Any, ...]:
    f = {_text(k): _text(v) for k, v in fields.items()}
    rules = json.loads(f.get("rules") or "[]")
    return (
        _text(entry_id),
        f.get("source_id"),
        f.get("processor"),
        f.get("reason"),
        ", ".join(rules),
        f.get("values"),
        int(f["deliveries"]) if f.get("deliveries") else None,
    )
