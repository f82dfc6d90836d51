"""What a processor records in the store: its row in stream_processors (written when it starts, after
every batch, and when it stops or fails) and its per-minute history in stream_metrics (figures
gathered per batch in memory, the minute's row upserted at most every FLUSH_SECONDS, when the
minute turns, and at the end)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
import sqlalchemy as sa

from headwater.store.tables import stream_metrics, stream_processors
from headwater.streams.broker import id_key
from headwater.streams.plan import StreamPlan
from headwater.streams.processor import StreamStats

FLUSH_SECONDS = 5.0
"""The current minute's row is written at most this often (and always when the minute turns)."""


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def percentile(ordered: list[float], q: float) -> float | None:
    """The nearest-rank percentile (the smallest value with at least q of the values at or below it)."""
    if not ordered:
        return None
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


@dataclass
class MinuteFigures:
    """One minute of one processor, as it accumulates."""

    minute: datetime
    events_read: int = 0
    events_loaded: int = 0
    events_dead: int = 0
    batches: int = 0
    errors: int = 0
    lag: int | None = None
    pending: int | None = None
    latencies_ms: list[float] = field(default_factory=list)

    def row(self, running_since: datetime, now: datetime, process: psutil.Process) -> dict[str, Any]:
        begin = max(self.minute, running_since)
        seconds = max((min(now, self.minute + timedelta(minutes=1)) - begin).total_seconds(), 1e-3)
        ordered = sorted(self.latencies_ms)
        cpu = process.cpu_times()
        return {
            "events_read": self.events_read,
            "events_loaded": self.events_loaded,
            "events_dead": self.events_dead,
            "batches": self.batches,
            "errors": self.errors,
            "seconds": seconds,
            "throughput": self.events_read / seconds,
            "lag": self.lag,
            "pending": self.pending,
            "latency_p50_ms": percentile(ordered, 0.50),
            "latency_p99_ms": percentile(ordered, 0.99),
            "cpu_seconds": cpu.user + cpu.system,
            "rss_bytes": process.memory_info().rss,
            "updated_at": now,
        }


class ProcessorRecord:
    """The store's record of one processor run."""

    def __init__(self, engine: sa.Engine, plan: StreamPlan, consumer: str) -> None:
        self.engine, self.plan, self.consumer = engine, plan, consumer
        self.process = psutil.Process()
        self.running_since = datetime.now(UTC)
        self.current: MinuteFigures | None = None
        self.seen = StreamStats()  # the cumulative figures at the previous update
        self.flushed_at = 0.0

    def started(self, last_id: str | None) -> None:
        now = self.running_since = datetime.now(UTC)
        values: dict[str, Any] = {
            "stream": self.plan.source.stream,
            "group_name": self.plan.source.group,
            "consumer": self.consumer,
            "status": "running",
            "started_at": now,
            "last_batch_at": None,
            "events_read": 0,
            "events_loaded": 0,
            "events_dead": 0,
            "last_id": last_id,
            "lag": None,
            "error": None,
            "updated_at": now,
        }
        with self.engine.begin() as conn:
            key = stream_processors.c.name == self.plan.name
            if not conn.execute(sa.update(stream_processors).where(key).values(**values)).rowcount:
                conn.execute(sa.insert(stream_processors).values(name=self.plan.name, **values))

    def update(self, stats: StreamStats, status: str = "running", error: str | None = None) -> None:
        """After a batch (status running), while retrying, or at the end (stopped, failed with
        `error`)."""
        now = datetime.now(UTC)
        pending = self._count(now, stats, status)
        flush = status != "running" or time.monotonic() - self.flushed_at >= FLUSH_SECONDS
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(stream_processors)
                .where(stream_processors.c.name == self.plan.name)
                .values(
                    status=status,
                    last_batch_at=stats.last_batch_at,
                    events_read=stats.events_read,
                    events_loaded=stats.events_loaded,
                    events_dead=stats.events_dead,
                    last_id=stats.last_id,
                    lag=stats.lag,
                    error=error,
                    updated_at=now,
                )
            )
            if flush and self.current is not None:
                self._write(conn, self.current, now)
        if pending is not None:  # the minute that just ended, written once more with its last figures
            with self.engine.begin() as conn:
                self._write(conn, pending, minute_of(now))

    def _count(self, now: datetime, stats: StreamStats, status: str) -> MinuteFigures | None:
        """Add what happened since the previous update to the current minute; the previous minute's
        figures when the minute turned (to be written a last time)."""
        ended, seen = None, self.seen
        errors = stats.retries - seen.retries + (status == "failed")
        batched = stats.batches != seen.batches
        self.seen = StreamStats(
            stats.events_read,
            stats.events_loaded,
            stats.events_dead,
            batches=stats.batches,
            retries=stats.retries,
        )
        minute = minute_of(now)
        if (batched or errors) and (self.current is None or self.current.minute != minute):
            ended, self.current = self.current, MinuteFigures(minute)
        figures = self.current  # nothing new (stopping after an idle wait): the minute stays as it is
        if figures is None:
            return None
        figures.events_read += stats.events_read - seen.events_read
        figures.events_loaded += stats.events_loaded - seen.events_loaded
        figures.events_dead += stats.events_dead - seen.events_dead
        figures.batches += stats.batches - seen.batches
        figures.errors += errors
        if batched:  # a batch ended: its lag, pending and latencies
            figures.lag = stats.lag
            figures.pending = stats.pending
            if stats.last_batch_at is not None:
                end_ms = stats.last_batch_at.timestamp() * 1000
                figures.latencies_ms.extend(end_ms - id_key(i)[0] for i in stats.batch_ids)
        return ended

    def _write(self, conn: sa.Connection, figures: MinuteFigures, now: datetime) -> None:
        """Upsert the minute's row (one writer per processor: update, else insert)."""
        values = figures.row(self.running_since, now, self.process)
        key = sa.and_(stream_metrics.c.name == self.plan.name, stream_metrics.c.minute == figures.minute)
        if not conn.execute(sa.update(stream_metrics).where(key).values(**values)).rowcount:
            conn.execute(
                sa.insert(stream_metrics).values(name=self.plan.name, minute=figures.minute, **values)
            )
        self.flushed_at = time.monotonic()


def read_processors(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(stream_processors).order_by(stream_processors.c.name))
        return [dict(r._mapping) for r in rows]
