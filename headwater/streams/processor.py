"""The stream processor: read a batch, process it, dead-letter the bad events, load the good ones
and the entry ids they cover (headwater/streams/commits.py) in one transaction, acknowledge after the
commit. An entry inside a committed range is acknowledged without loading (a crash between commit and
XACK, or a batch claimed from a consumer that committed it), so each event has its effect in the
warehouse once, with any number of consumers. At most one batch is in flight: a slow sink slows the
reads. A transient failure (Redis restarting) is retried with backoff."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from headwater.dberrors import is_transient
from headwater.errors import PermanentError, TransientError
from headwater.load.watermarks import read_watermark
from headwater.streams.batch import ENTRY_ID, process, raw_masked
from headwater.streams.broker import DeadLetter, Entry, StreamBroker, id_key
from headwater.streams.commits import CommitLog, Superseded, ranges_of
from headwater.streams.plan import StreamPlan
from headwater.streams.sink import BatchSink

if TYPE_CHECKING:
    import redis

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
    pending: int | None = None
    """entries the group has read and not acknowledged (XPENDING), after the last batch"""
    retries: int = 0
    """transient failures (Redis or the warehouse unreachable) waited out with backoff"""
    windows_closed: int = 0
    alerts_fired: int = 0
    published: int = 0
    batch_ids: tuple[str, ...] = ()
    """the ids of the last batch's entries loaded or dead-lettered (their append times give the latency)"""

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
        on_retry: Callable[[StreamStats, Exception, float], None] | None = None,
        on_alerts: Callable[[int], None] | None = None,
        redis_client: redis.Redis | None = None,
        max_backoff: float = 10.0,
    ) -> None:
        """`on_alerts(n)`: after a commit that wrote n alert firings to the outbox (send them);
        `redis_client`: for publish steps (default: the broker's own client, when it has one)."""
        self.plan, self.broker, self.warehouse, self.on_batch = plan, broker, warehouse, on_batch
        self.on_retry, self.max_backoff = on_retry, max_backoff
        self.log = CommitLog(warehouse, plan.name, offset_key(plan))
        self.stats = StreamStats()
        self.run_id = str(uuid.uuid4())
        self.committed: str | None = None
        self.sink = BatchSink(plan, warehouse, broker, redis_client or getattr(broker, "client", None))
        self.on_alerts = on_alerts
        self.started = False

    def start(self) -> None:
        """Create the group when missing and read the committed id (run() does this when not done)."""
        self.broker.ensure_group()
        legacy = read_watermark(self.warehouse, self.plan.name, offset_key(self.plan))  # slice 1's id
        self.log.ensure(None if legacy is None else str(legacy))
        self.committed = self.stats.last_id = self.log.last()
        self.started = True

    def run(
        self,
        should_stop: Callable[[], bool],
        *,
        max_events: int | None = None,
        idle_exit: float | None = None,
    ) -> StreamStats:
        """Batches until `should_stop()` (checked between batches), `max_events` read, or no entry for
        `idle_exit` seconds."""
        idle_since = time.monotonic()
        backoff = 0.0
        while not should_stop():
            if max_events is not None and self.stats.events_read >= max_events:
                break
            count = self.plan.source.batch_size
            if max_events is not None:
                count = min(count, max_events - self.stats.events_read)
            try:
                if not self.started:
                    self.start()
                read = self.step(count)
            except (TransientError, sa.exc.DBAPIError) as exc:
                if isinstance(exc, sa.exc.DBAPIError) and not is_transient(exc):
                    raise
                # Redis restarting, the warehouse unreachable: nothing acknowledged is lost (the batch
                # stays pending, or was committed and is recognised); wait, then read own pending first
                backoff = min(self.max_backoff, backoff * 2 or 0.5)
                self.stats.retries += 1
                log.warning("%s: %s; retrying in %.1f s", self.plan.name, exc, backoff)
                if self.on_retry is not None:
                    self.on_retry(self.stats, exc, backoff)
                self.broker.reset()
                time.sleep(backoff)
                idle_since = time.monotonic()
                continue
            backoff = 0.0
            if read:
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
        read_at = time.monotonic()
        contiguous = self.broker.contiguous
        # entries read with `>` were never delivered before: no committed range holds them. Others
        # (own pending after a restart, claimed) may have been committed before a crash or elsewhere
        done = set() if contiguous else self.log.covered([e.id for e in entries])
        lost: set[str] = set()
        fresh = [e for e in entries if e.id not in done]
        while fresh:
            try:
                self._finish(fresh, contiguous and not done, read_at)
                break
            except Superseded as exc:  # rolled back: finish the rest
                done |= exc.committed
                lost |= exc.lost
                fresh = [e for e in fresh if e.id not in done and e.id not in lost]
                contiguous = False
        self.broker.ack([e.id for e in entries if e.id not in lost])  # only after the commit
        self.stats.events_read += len(entries) - len(lost)
        self.stats.events_skipped += len(done)
        self.stats.batches += 1
        self.stats.lag = self.broker.lag()
        self.stats.pending = self.broker.pending()
        self.stats.last_batch_at = datetime.now(UTC)
        self.stats.batch_ids = tuple(e.id for e in fresh)
        if self.on_batch is not None:
            self.on_batch(self.stats)
        return len(entries)

    def _finish(self, entries: list[Entry], contiguous: bool = False, read_at: float | None = None) -> None:
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
        good = processed.good
        self.broker.dead_letter(sorted(dead, key=lambda d: id_key(d.entry.id)), self.plan.name)
        last_id = max((e.id for e in entries), key=id_key)
        # ---- the sink (headwater/streams/sink.py): under the group's lock, in one transaction, the
        # ids, rows, closed windows, alert firings and states; late events dead-lettered inside it
        guard = self._recorder(entries, contiguous, read_at)
        done = self.sink.commit(processed.events, good, live, self.run_id, guard)
        dead += done.late
        # ---- end of the sink
        if self.committed is None or id_key(last_id) > id_key(self.committed):
            self.committed = self.stats.last_id = last_id
        self.stats.events_loaded += good.height
        self.stats.events_dead += len(dead)
        self.stats.windows_closed += done.closed
        self.stats.alerts_fired += done.firings
        self.stats.published += done.published
        if done.firings and self.on_alerts is not None:
            self.on_alerts(done.firings)

    def _recorder(
        self, entries: list[Entry], contiguous: bool, read_at: float | None = None
    ) -> Callable[[sa.Connection], None]:
        """Run in the batch's transaction: under the group's commit lock, refuse (roll back) when some
        entry was committed or claimed away by another consumer since it was read; else record the
        ids the batch covers (and forget ranges wholly acknowledged). A batch read with `>` less than
        half the claim timeout ago cannot have been claimed (an entry is claimable only once idle for
        the timeout), so nobody else can have committed it: the checks are skipped."""
        ids = [e.id for e in entries]
        ranges = ranges_of(entries, contiguous)
        consumer = self.broker.consumer
        safe_for = self.plan.source.claim_idle_ms / 2000

        def record(conn: sa.Connection) -> None:
            self.log.lock(conn)
            fresh = contiguous and read_at is not None and time.monotonic() - read_at < safe_for
            if not fresh:
                committed = self.log.covered(ids, conn)
                lost = set(ids) - self.broker.owned(ids) - committed
                if committed or lost:
                    raise Superseded(committed, lost)
            self.log.record(conn, ranges, consumer, self.run_id, self.broker.pending_floor())

        return record
