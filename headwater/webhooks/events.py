"""The events a pipeline has not loaded yet, oldest first.

Ids are given when an insert starts, but on PostgreSQL inserts commit in any order: reading "id past
the last one loaded" could pass over an event whose insert committed late. So events get their place
(`seq`) when a reader first sees them committed: `seal` numbers every event not yet numbered, past the
highest number given, under a lock (PostgreSQL: an advisory lock per endpoint; SQLite: its write lock).
An event committed later is numbered by a later seal, higher still. A pipeline's watermark is the
last seq it loaded, committed in the load's own transaction (headwater.load.watermarks), so a run that
dies after its load commits does not load the same events again, and one that dies before loads them
next time."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from headwater.store.tables import webhook_events as events


@dataclass(frozen=True)
class StoredEvent:
    id: int
    key: str
    body: str
    received_at: datetime
    seq: int


def _lock_key(endpoint: str) -> int:
    return zlib.crc32(f"headwater.webhook:{endpoint}".encode())


def seal(engine: sa.Engine, endpoint: str) -> int:
    """Number the endpoint's events that have none yet, in id order, past every number given
    (returns how many). Gaps in the numbers are fine: only their order counts."""
    writer = engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
    with writer.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(endpoint))))
        mine = events.c.endpoint == endpoint
        top = conn.execute(sa.select(sa.func.max(events.c.seq)).where(mine)).scalar()
        low = conn.execute(sa.select(sa.func.min(events.c.id)).where(mine, events.c.seq.is_(None))).scalar()
        if low is None:
            return 0
        # every event at or past `low` not yet numbered: seq = id + (top - low + 1) > top, in id order.
        # One committed after the min() above is numbered here too, or by the next seal (if its id is
        # below `low`), which starts past this one's numbers.
        shift = int(top or 0) - int(low) + 1
        return int(
            conn.execute(
                sa.update(events)
                .where(mine, events.c.seq.is_(None), events.c.id >= low)
                .values(seq=events.c.id + shift)
            ).rowcount
        )


def read_events(engine: sa.Engine, endpoint: str, after: int | None, limit: int) -> list[StoredEvent]:
    """At most `limit` events of `endpoint` past seq `after` (None: from the first), in seq order,
    after numbering the new ones."""
    seal(engine, endpoint)
    query = (
        sa.select(events.c.id, events.c.idempotency_key, events.c.body, events.c.received_at, events.c.seq)
        .where(events.c.endpoint == endpoint, events.c.seq.is_not(None))
        .order_by(events.c.seq)
        .limit(limit)
    )
    if after is not None:
        query = query.where(events.c.seq > after)
    with engine.connect() as conn:
        return [
            StoredEvent(int(r.id), r.idempotency_key, r.body, r.received_at, int(r.seq))
            for r in conn.execute(query)
        ]


def pending_count(engine: sa.Engine, endpoint: str, after: int | None) -> int:
    """How many events of `endpoint` a reader past `after` would still get (numbered or not yet)."""
    mine = events.c.endpoint == endpoint
    waiting = sa.true() if after is None else sa.or_(events.c.seq.is_(None), events.c.seq > after)
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).where(mine, waiting)).scalar() or 0)
