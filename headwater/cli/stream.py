"""`headwater stream run NAME`: run a streaming spec's processor until stopped (SIGTERM or Ctrl-C
finish the batch in hand, commit, acknowledge and exit 0); `headwater stream produce`: write test
events to a stream."""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from headwater.cli.common import PIPELINES_HELP
from headwater.errors import PermanentError
from headwater.settings import Settings


def _redis_url(url: str | None, settings: Settings) -> str:
    found = url or settings.redis_url
    if not found:
        raise PermanentError(
            "no Redis to read the stream from",
            hint="set HEADWATER_REDIS_URL (e.g. redis://127.0.0.1:6379/0) or give the source a url",
        )
    return found


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.connections import Connections
    from headwater.redact import redact
    from headwater.spec.loader import find_pipeline
    from headwater.store import Store
    from headwater.streams.broker import RedisStreamBroker
    from headwater.streams.plan import StreamPlan
    from headwater.streams.processor import StreamProcessor, StreamStats
    from headwater.streams.records import ProcessorRecord

    loaded = find_pipeline(Path(args.pipelines or settings.pipelines_dir), args.name)
    if loaded.spec.type != "streaming":
        raise PermanentError(
            f"{args.name} is a {loaded.spec.type} pipeline, not a stream processor",
            hint=f"run it with: headwater run {args.name}",
        )
    plan = StreamPlan.of(loaded)
    source = plan.source
    consumer = args.consumer or source.consumer or socket.gethostname()
    broker = RedisStreamBroker.connect(
        _redis_url(source.url, settings),
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
        message = redact(str(exc))
        print(f"{plan.name}: {message}; retrying in {wait:.1f} s", file=sys.stderr, flush=True)
        with contextlib.suppress(Exception):  # the store may be down too; the next batch writes it
            record.update(stats, "retrying", message)

    processor = StreamProcessor(plan, broker, warehouse, on_batch=record.update, on_retry=retrying)
    stopping: list[int] = []

    def stop(signum: int, _frame: Any) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        processor.start()
        record.started(processor.committed)
        stats = processor.run(lambda: bool(stopping), max_events=args.max_events, idle_exit=args.idle_exit)
        record.update(stats, "stopped")
    except Exception as exc:
        record.update(processor.stats, "failed", redact(str(exc)))
        raise
    finally:
        store.dispose()
    print(f"{plan.name}: stopped: {stats.summary()}", flush=True)
    return 0


def cmd_produce(args: argparse.Namespace, settings: Settings) -> int:
    import redis

    from headwater.streams.vitals import produce, vitals_events

    client = redis.Redis.from_url(_redis_url(args.redis_url, settings))
    events = vitals_events(args.count, bad_share=args.bad_share, seed=args.seed)
    written = produce(client, args.stream, events, rate=args.rate)
    print(f"wrote {written} {args.example} event(s) to {args.stream}")
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("stream", help="stream processors: run one, or write test events to a stream")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = actions.add_parser(
        "run",
        help="run a streaming pipeline until stopped (SIGTERM/Ctrl-C: finish the batch, commit, exit 0)",
    )
    run.add_argument("name", help="the streaming pipeline (its spec's name)")
    run.add_argument("--pipelines", help=PIPELINES_HELP)
    run.add_argument(
        "--max-events",
        type=int,
        metavar="N",
        help="stop after reading N entries (default: run until stopped)",
    )
    run.add_argument(
        "--idle-exit",
        type=float,
        metavar="SECONDS",
        help="stop when no entry came for this long (default: wait for entries forever)",
    )
    run.add_argument(
        "--consumer",
        help="this process's consumer name in the group (default: the spec's, else the host name)",
    )
    run.set_defaults(func=cmd_run)
    produce = actions.add_parser("produce", help="write test events to a Redis stream")
    produce.add_argument("--stream", required=True, help="the stream's key")
    produce.add_argument("--count", type=int, required=True, metavar="N", help="how many events to write")
    produce.add_argument(
        "--rate", type=float, metavar="R", help="at most R events per second (default: as fast as possible)"
    )
    produce.add_argument(
        "--example", choices=["vitals"], default="vitals", help="which events: vitals (patient device JSON)"
    )
    produce.add_argument(
        "--bad-share",
        type=float,
        default=0.05,
        metavar="F",
        help="share of events with an out-of-range vital (default 0.05)",
    )
    produce.add_argument(
        "--seed", type=int, default=0, help="random seed: the same seed writes the same events"
    )
    produce.add_argument("--redis-url", help="the Redis (default: $HEADWATER_REDIS_URL)")
    produce.set_defaults(func=cmd_produce)
