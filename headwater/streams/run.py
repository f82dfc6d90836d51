"""Run a streaming spec's processor until it is told to stop: the one code path of `headwater stream
run` and of the flow `headwater up` keeps running (flows/stream.py). SIGTERM or SIGINT finish the
batch in hand, commit, acknowledge and return; the run is recorded in the store's stream_processors
row (running, after every batch, stopped or failed)."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from headwater.errors import PermanentError
from headwater.settings import Settings
from headwater.spec.loader import LoadedSpec
from headwater.streams.processor import StreamStats

if TYPE_CHECKING:
    from headwater.streams.alerts import StreamAlerter

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def redis_url_for(url: str | None, settings: Settings) -> str:
    """The source's own url, else HEADWATER_REDIS_URL."""
    found = url or settings.redis_url
    if not found:
        raise PermanentError(
            "no Redis to read the stream from",
            hint="set HEADWATER_REDIS_URL (e.g. redis://127.0.0.1:6379/0) or give the source a url",
        )
    return found


def needs_redis_url(loaded: LoadedSpec, settings: Settings) -> bool:
    """True when the spec's source names no Redis and HEADWATER_REDIS_URL is unset (it cannot run)."""
    source = next(iter(loaded.spec.sources.values()), None)
    return getattr(source, "url", None) is None and not settings.redis_url


@dataclass(frozen=True)
class StreamRunResult:
    name: str
    consumer: str
    stats: StreamStats
    stopped_by: int | None
    """The signal that stopped it (SIGTERM, SIGINT); None: --max-events or --idle-exit."""


@contextlib.contextmanager
def stop_signals() -> Iterator[list[int]]:
    """SIGTERM and SIGINT append to the yielded list instead of ending the process (the processor
    checks it between batches); the previous handlers come back afterwards. Outside the main thread
    (where no handler can be set) the list stays empty."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def stop(signum: int, _frame: Any) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_stream(
    loaded: LoadedSpec,
    settings: Settings,
    *,
    consumer: str | None = None,
    max_events: int | None = None,
    idle_exit: float | None = None,
    say: Callable[[str], None] | None = None,
) -> StreamRunResult:
    """Run the spec's processor until SIGTERM/SIGINT (or `max_events` read, or `idle_exit` seconds
    with no entry). `consumer`: default the spec's, else the host name (so a processor restarted on
    the same host reads its own pending entries first). `say`: where retry messages go (default the
    log)."""
    from headwater.connections import Connections
    from headwater.redact import redact
    from headwater.store import Store
    from headwater.streams.alerts import alerter_for
    from headwater.streams.broker import RedisStreamBroker
    from headwater.streams.plan import StreamPlan
    from headwater.streams.processor import StreamProcessor
    from headwater.streams.records import ProcessorRecord

    if loaded.spec.type != "streaming":
        raise PermanentError(
            f"{loaded.spec.name} is a {loaded.spec.type} pipeline, not a stream processor",
            hint=f"run it with: headwater run {loaded.spec.name}",
        )
    plan = StreamPlan.of(loaded)
    source = plan.source
    consumer = consumer or source.consumer or socket.gethostname()
    broker = RedisStreamBroker.connect(
        redis_url_for(source.url, settings),
        stream=source.stream,
        group=source.group,
        consumer=consumer,
        dead_stream=source.dead_letter_stream,
        start=source.start,
        claim_idle_ms=source.claim_idle_ms,
    )
    warehouse = Connections(settings.warehouse_url).engine(loaded.spec.warehouse_of(plan.load))
    settings.ensure_home()
    store = Store(settings.database_url).migrate()
    record = ProcessorRecord(store.engine, plan, consumer)

    def retrying(stats: StreamStats, exc: Exception, wait: float) -> None:
        message = f"{plan.name}: {redact(str(exc))}; retrying in {wait:.1f} s"
        if say is not None:
            say(message)
        with contextlib.suppress(Exception):  # the store may be down too; the next batch writes it
            record.update(stats, "retrying", redact(str(exc)))

    processor = StreamProcessor(plan, broker, warehouse, on_batch=record.update, on_retry=retrying)
    alerter = alerter_for(plan, warehouse, store.engine, settings.alerts_dir, processor.run_id, consumer)
    if alerter is not None:
        processor.on_alerts = lambda _fired: _send_alerts(alerter, say)

        def after_batch(stats: StreamStats) -> None:
            record.update(stats)
            alerter.tick()

        processor.on_batch = after_batch
        _send_alerts(alerter, say)  # firings a crashed run committed and did not send
    try:
        with stop_signals() as stopping:
            try:
                processor.start()
                record.started(processor.committed)
                stats = processor.run(lambda: bool(stopping), max_events=max_events, idle_exit=idle_exit)
                record.update(stats, "stopped")
            except Exception as exc:
                record.update(processor.stats, "failed", redact(str(exc)))
                raise
    finally:
        store.dispose()
    return StreamRunResult(plan.name, consumer, stats, stopping[0] if stopping else None)


def _send_alerts(alerter: StreamAlerter, say: Callable[[str], None] | None) -> None:
    """Send the outbox's firings; a channel that fails is recorded by the engine, and a failure here
    (the store unreachable) leaves them claimed, to be sent again, never stopping the stream."""
    from headwater.redact import redact

    try:
        alerter.send()
    except Exception as exc:  # the stream goes on; the outbox keeps the firings
        message = f"{alerter.pipeline}: alerts not sent yet: {redact(str(exc))}"
        log.warning(message)
        if say is not None:
            say(message)
