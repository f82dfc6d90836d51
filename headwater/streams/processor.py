"""The stream processor: read a batch, process it, dead-letter the bad events, load the good ones
with the last entry id they cover in one transaction, acknowledge after the commit. An entry at or
below the committed id is acknowledged without loading (a crash between commit and XACK redelivers
it), so each event has its effect in the warehouse once. At most one batch is in flight."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from headwater.errors import PermanentError
from headwater.load.base import WatermarkUpdate, load_frame
from headwater.load.watermarks import read_watermark, write_watermark
from headwater.streams.batch import ENTRY_ID, process, raw_masked
from headwater.streams.broker import DeadLetter, Entry, StreamBroker, id_key
from headwater.streams.plan import StreamPlan

log = logging.getLogger(__name__)


def offset_key(plan: StreamPlan) -> str:
    """The processor's row in headwater_watermarks (pipeline = the spec's name): its stream and group."""
    return f"stream:{plan.source.stream}:{plan.source.group}"


@dataclass
class StreamStats:
    """What a processor did since it started."""

    events_read: int = 0
    events_loaded: int = 0
    events_dead: int = 0
    events_skipped: int = 0
    batches: int = 0
    last_id: str | None = None
    lag: int | None = None
    last_batch_at: datetime | None = None

    def summary(self) -> str:
        return (
            f"read {self.events_read} event(s), loaded {self.events_loaded}, dead-lettered "
            f"{self.events_dead}, skipped {self.events_skipped} already loaded; last id {self.last_id or '-'}"
        )


class StreamProcessor:
    def __init__(
        self,
        plan: StreamPlan,
        broker: StreamBroker,
        warehouse: sa.Engine,
        *,
        on_batch: Callable[[StreamStats], None] | None = None,
    ) -> None:
        self.plan, self.broker, self.warehouse, self.on_batch = plan, broker, warehouse, on_batch
        self.stats = StreamStats()
        self.run_id = str(uuid.uuid4())
        self.committed: str | None = None
        self.started = False

    def start(self) -> None:
        """Create the group when missing and read the committed id (run() does this when not done)."""
        self.started = True
        self.broker.ensure_group()
        committed = read_watermark(self.warehouse, self.plan.name, offset_key(self.plan))
        self.committed = None if committed is None else str(committed)
        self.stats.last_id = self.committed

    def run(
        self,
        should_stop: Callable[[], bool],
        *,
        max_events: int | None = None,
        idle_exit: float | None = None,
    ) -> StreamStats:
        """Batches until `should_stop()` (checked between batches), `max_events` read, or no entry for
        `idle_exit` seconds."""
        if not self.started:
            self.start()
        idle_since = time.monotonic()
        while not should_stop():
            if max_events is not None and self.stats.events_read >= max_events:
                break
            count = self.plan.source.batch_size
            if max_events is not None:
                count = min(count, max_events - self.stats.events_read)
            if self.step(count):
                idle_since = time.monotonic()
            elif idle_exit is not None and time.monotonic() - idle_since >= idle_exit:
                break
        return self.stats

    def step(self, count: int | None = None) -> int:
        """Read and finish one batch; the entries read (0: none came within block_ms)."""
        source = self.plan.source
        entries = self.broker.read(count or source.batch_size, source.block_ms)
        if not entries:
            return 0
        committed = id_key(self.committed) if self.committed else None
        done = [e for e in entries if committed is not None and id_key(e.id) <= committed]
        fresh = [e for e in entries if committed is None or id_key(e.id) > committed]
        if fresh:
            self._finish(fresh)
        self.broker.ack([e.id for e in entries])  # only after the commit
        self.stats.events_read += len(entries)
        self.stats.events_skipped += len(done)
        self.stats.batches += 1
        self.stats.lag = self.broker.lag()
        self.stats.last_batch_at = datetime.now(UTC)
        if self.on_batch is not None:
            self.on_batch(self.stats)
        return len(entries)

    def _finish(self, entries: list[Entry]) -> None:
        """Dead letters first (idempotent), then the rows and the last id in one transaction."""
        source = self.plan.source
        poison = [e for e in entries if e.deliveries > source.max_deliveries]
        dead: list[DeadLetter] = [DeadLetter(e, "poison", [], raw_masked(e)) for e in poison]
        poison_ids = {e.id for e in poison}
        live = [e for e in entries if e.id not in poison_ids and e.fields]
        vanished = [e for e in entries if not e.fields and e.id not in poison_ids]  # deleted while pending
        dead += [DeadLetter(e, "deleted", [], {}) for e in vanished]
        processed = process(live, source, self.plan.ops, self.plan.rules, self.plan.pii)
        if ENTRY_ID not in processed.good.columns:
            raise PermanentError(
                f"{self.plan.name}: the ops removed the column {ENTRY_ID}",
                hint=f"keep {ENTRY_ID} (the stream entry id) through the transform steps",
            )
        dead += processed.dead
        self.broker.dead_letter(sorted(dead, key=lambda d: id_key(d.entry.id)), self.plan.name)
        last_id = max((e.id for e in entries), key=id_key)
        good = processed.good
        if good.height:
            load_frame(
                self.warehouse,
                good,
                self.plan.load.destination,
                pipeline=self.plan.name,
                run_id=self.run_id,
                watermarks=[WatermarkUpdate(offset_key(self.plan), last_id)],
            )
        else:
            with self.warehouse.begin() as conn:
                write_watermark(conn, self.plan.name, offset_key(self.plan), last_id, self.run_id)
        self.committed = self.stats.last_id = last_id
        self.stats.events_loaded += good.height
        self.stats.events_dead += len(dead)
