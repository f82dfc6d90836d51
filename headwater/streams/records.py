"""A processor's row in the store's stream_processors table: written when it starts, after every
batch, and when it stops or fails."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from headwater.store.tables import stream_processors
from headwater.streams.plan import StreamPlan
from headwater.streams.processor import StreamStats


class ProcessorRecord:
    def __init__(self, engine: sa.Engine, plan: StreamPlan, consumer: str) -> None:
        self.engine, self.plan, self.consumer = engine, plan, consumer

    def started(self, last_id: str | None) -> None:
        now = datetime.now(UTC)
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
                    updated_at=datetime.now(UTC),
                )
            )


def read_processors(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(stream_processors).order_by(stream_processors.c.name))
        return [dict(r._mapping) for r in rows]
