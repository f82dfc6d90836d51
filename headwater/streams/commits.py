"""Which stream entries are committed: the warehouse table headwater_stream_commits holds one row per
id range a batch covered, written in the batch's load transaction. With several consumers in a group
batches commit out of id order, so "at or below the last committed id" no longer means "loaded";
"inside a committed range" does. A batch read with `>` is every entry of the stream between its first
and last id (one range); a batch of claimed or re-read pending entries is a range per entry.

Commits of one stream and group are serialised (a transaction-scoped advisory lock on PostgreSQL, the
write lock on SQLite), and each re-checks, under the lock, that its entries are neither committed nor
claimed away by another consumer since it read them: two consumers never both commit one entry."""

from __future__ import annotations

import zlib
from bisect import bisect_right
from datetime import UTC, datetime

import sqlalchemy as sa

from headwater.streams.broker import Entry, id_key

TABLE = "headwater_stream_commits"
_meta = sa.MetaData()
commits = sa.Table(
    TABLE,
    _meta,
    sa.Column("pipeline", sa.String(200), nullable=False),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("first_id", sa.String(41), nullable=False),  # zero-padded: text order is id order
    sa.Column("last_id", sa.String(41), nullable=False),
    sa.Column("consumer", sa.String(200)),
    sa.Column("run_id", sa.String(64)),
    sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_headwater_stream_commits", "pipeline", "source", "last_id"),
)


def sortable(entry_id: str) -> str:
    """An entry id as text that sorts as the stream does."""
    ms, seq = id_key(entry_id)
    return f"{ms:020d}-{seq:020d}"


def plain(text: str) -> str:
    ms, _, seq = text.partition("-")
    return f"{int(ms)}-{int(seq)}"


def ranges_of(entries: list[Entry], contiguous: bool) -> list[tuple[str, str]]:
    """The id ranges `entries` cover: one when they are a contiguous read (`>`), else one per entry."""
    ids = sorted((e.id for e in entries), key=id_key)
    if not ids:
        return []
    if contiguous:
        return [(ids[0], ids[-1])]
    return [(i, i) for i in ids]


class Superseded(Exception):
    """Raised inside a batch's transaction (which rolls back): some of its entries were committed, or
    claimed by another consumer, after the batch was read."""

    def __init__(self, committed: set[str], lost: set[str]) -> None:
        self.committed, self.lost = committed, lost
        super().__init__(
            f"{len(committed)} entry(ies) already committed, {len(lost)} claimed by another consumer"
        )


class CommitLog:
    def __init__(self, engine: sa.Engine, pipeline: str, source: str) -> None:
        self.engine, self.pipeline, self.source = engine, pipeline, source
        self._ready = False

    def _where(self) -> sa.ColumnElement[bool]:
        return (commits.c.pipeline == self.pipeline) & (commits.c.source == self.source)

    def ensure(self, legacy_last_id: str | None = None) -> None:
        """Create the table; `legacy_last_id` (slice 1's single committed id) becomes the range
        0-0..id when this stream and group have no commits yet."""
        with self.engine.begin() as conn:
            self.lock(conn)  # consumers starting together: one creates the table
            commits.create(conn, checkfirst=True)
            if legacy_last_id is not None:
                found = conn.execute(sa.select(sa.func.count()).where(self._where())).scalar_one()
                if not found:
                    self._insert(conn, [("0-0", legacy_last_id)], "legacy", None)
        self._ready = True

    def last(self) -> str | None:
        """The newest committed id (a figure for the record: with several consumers, older entries
        may still be uncommitted)."""
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(sa.func.max(commits.c.last_id)).where(self._where())).scalar()
        return None if value is None else plain(value)

    def covered(self, ids: list[str], conn: sa.Connection | None = None) -> set[str]:
        """Those of `ids` inside a committed range."""
        if not ids:
            return set()
        keys = sorted(sortable(i) for i in ids)
        query = sa.select(commits.c.first_id, commits.c.last_id).where(
            self._where(), commits.c.last_id >= keys[0], commits.c.first_id <= keys[-1]
        )
        if conn is None:
            with self.engine.connect() as own:
                rows = own.execute(query).all()
        else:
            rows = conn.execute(query).all()
        spans = sorted((r.first_id, r.last_id) for r in rows)
        starts = [s for s, _ in spans]
        reach: list[str] = []  # the furthest end among spans[:k+1]
        for _, end in spans:
            reach.append(max(end, reach[-1]) if reach else end)
        found = set()
        for entry_id in ids:
            key = sortable(entry_id)
            k = bisect_right(starts, key) - 1
            if k >= 0 and reach[k] >= key:
                found.add(entry_id)
        return found

    def lock(self, conn: sa.Connection) -> None:
        """Serialise commits of this stream and group until the transaction ends."""
        if conn.dialect.name == "postgresql":
            key = zlib.crc32(f"{self.pipeline}\0{self.source}".encode()) - 2**31
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        # SQLite: load_frame's BEGIN IMMEDIATE already holds the database's write lock

    def record(
        self,
        conn: sa.Connection,
        ranges: list[tuple[str, str]],
        consumer: str,
        run_id: str,
        floor: str | None,
    ) -> None:
        """Add `ranges`; drop ranges wholly below `floor` (the group's oldest pending entry: what is
        below it is acknowledged and never delivered again)."""
        if not self._ready:
            commits.create(conn, checkfirst=True)
        self._insert(conn, ranges, consumer, run_id)
        if floor is not None:
            conn.execute(sa.delete(commits).where(self._where(), commits.c.last_id < sortable(floor)))

    def _insert(
        self, conn: sa.Connection, ranges: list[tuple[str, str]], consumer: str, run_id: str | None
    ) -> None:
        now = datetime.now(UTC)
        conn.execute(
            sa.insert(commits),
            [
                {
                    "pipeline": self.pipeline,
                    "source": self.source,
                    "first_id": sortable(first),
                    "last_id": sortable(last),
                    "consumer": consumer,
                    "run_id": run_id,
                    "committed_at": now,
                }
                for first, last in ranges
            ],
        )
