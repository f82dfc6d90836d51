"""`headwater stream run NAME`: run a streaming spec's processor until stopped (SIGTERM or Ctrl-C
finish the batch in hand, commit, acknowledge and exit 0); `headwater stream produce`: write test
events to a stream; `headwater stream replay NAME` and `headwater stream dead NAME [--replay]`:
reprocess a range of the stream, list or replay dead letters (headwater/streams/replay.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from headwater.cli.common import PIPELINES_HELP
from headwater.settings import Settings


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.spec.loader import find_pipeline
    from headwater.streams.run import run_stream

    loaded = find_pipeline(Path(args.pipelines or settings.pipelines_dir), args.name)
    result = run_stream(
        loaded,
        settings,
        consumer=args.consumer,
        max_events=args.max_events,
        idle_exit=args.idle_exit,
        say=lambda message: print(message, file=sys.stderr, flush=True),
    )
    print(f"{result.name}: stopped: {result.stats.summary()}", flush=True)
    return 0


def cmd_produce(args: argparse.Namespace, settings: Settings) -> int:
    import redis

    from headwater.streams.run import redis_url_for
    from headwater.streams.vitals import produce, vitals_events
    from headwater.streams.wedding import wedding_events

    client = redis.Redis.from_url(redis_url_for(args.redis_url, settings))
    make = wedding_events if args.example == "wedding" else vitals_events
    events = make(args.count, bad_share=args.bad_share, seed=args.seed)
    written = produce(client, args.stream, events, rate=args.rate)
    print(f"wrote {written} {args.example} event(s) to {args.stream}")
    return 0


def _audit(settings: Settings, action: str, target: str, outcome: str, detail: str, params: Any) -> None:
    """Record a replay in the store's audit log (source cli, the login name)."""
    import getpass
    import os
    from datetime import UTC, datetime

    from headwater.access.audit import AuditEntry, record
    from headwater.store import Store

    who = os.environ.get("USER") or getpass.getuser()
    settings.ensure_home()
    store = Store(settings.database_url).migrate()
    try:
        entry = AuditEntry(who, None, action, target, outcome, detail, params, "cli")
        record(store.engine, entry, datetime.now(UTC))
    finally:
        store.dispose()


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.access.roles import Action
    from headwater.redact import redact
    from headwater.streams.replay import open_target, replay_range

    target = open_target(args.name, settings, args.pipelines)
    params = {"from": args.start, "to": args.end}
    action = Action.REPLAY_STREAM.value
    try:
        result = replay_range(target.plan, target.client, target.warehouse, args.start, args.end)
    except Exception as exc:
        _audit(settings, action, args.name, "failed", redact(str(exc))[:2000], params)
        raise
    finally:
        target.close()
    _audit(settings, action, args.name, "ok", result.summary(), params)
    print(result.summary(), flush=True)
    return 0


def cmd_dead(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.access.roles import Action
    from headwater.cli.common import table
    from headwater.redact import redact
    from headwater.streams.replay import open_target, read_dead, replay_dead

    target = open_target(args.name, settings, args.pipelines)
    try:
        if args.replay:
            params = {"ids": args.ids, "reason": args.reason, "rule": args.rule}
            action = Action.REPLAY_DEAD_LETTERS.value
            try:
                result = replay_dead(
                    target.plan,
                    target.client,
                    target.warehouse,
                    ids=args.ids,
                    reason=args.reason,
                    rule=args.rule,
                )
            except Exception as exc:
                _audit(settings, action, args.name, "failed", redact(str(exc))[:2000], params)
                raise
            for source_id in result.trimmed:
                print(f"  {source_id}: the source entry was trimmed from the stream; the letter stays")
            for source_id, rules in result.still_dead.items():
                print(f"  {source_id}: still fails {', '.join(rules)}; the letter stays")
            _audit(settings, action, args.name, "ok", result.summary(), params)
            print(result.summary(), flush=True)
            return 0
        dead_stream = target.plan.source.dead_letter_stream
        letters = read_dead(target.client, dead_stream, reason=args.reason, rule=args.rule, ids=args.ids)
    finally:
        target.close()
    rows = [
        (d.source_id, d.reason, ", ".join(d.rules), d.values[:60], d.deliveries or "", d.replayed_at or "")
        for d in letters[: args.limit]
    ]
    print(table(rows, ["entry id", "reason", "rules", "values (masked)", "deliveries", "replayed (UTC)"]))
    waiting = sum(1 for d in letters if not d.replayed_at)
    shown = f", first {args.limit} shown" if len(letters) > args.limit else ""
    print(f"\n{len(letters)} dead letter(s) in {dead_stream}, {waiting} not replayed{shown}")
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "stream", help="stream processors: run one, write test events, replay history or dead letters"
    )
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
        "--example",
        choices=["vitals", "wedding"],
        default="vitals",
        help="which events: vitals (patient device JSON), wedding (vendor price changes, RSVPs, payments)",
    )
    produce.add_argument(
        "--bad-share",
        type=float,
        default=0.05,
        metavar="F",
        help="share of bad events: a vital out of range, or a wedding event with a defect (default 0.05)",
    )
    produce.add_argument(
        "--seed", type=int, default=0, help="random seed: the same seed writes the same events"
    )
    produce.add_argument("--redis-url", help="the Redis (default: $HEADWATER_REDIS_URL)")
    produce.set_defaults(func=cmd_produce)
    replay = actions.add_parser(
        "replay",
        help="reprocess a range of the stream's history into the spec's load (upsert only; the "
        "consumer group is not touched)",
    )
    replay.add_argument("name", help="the streaming pipeline (its spec's name)")
    replay.add_argument(
        "--from",
        dest="start",
        required=True,
        metavar="ID|TIME",
        help="the first entry: an entry id (1733011200000-0), a millisecond, or an ISO-8601 time "
        "(UTC when no zone is given)",
    )
    replay.add_argument(
        "--to",
        dest="end",
        default="+",
        metavar="ID|TIME",
        help="the last entry, included (same forms as --from; a time includes its whole "
        "millisecond; default: the stream's newest entry)",
    )
    replay.add_argument("--pipelines", help=PIPELINES_HELP)
    replay.set_defaults(func=cmd_replay)
    dead = actions.add_parser(
        "dead",
        help="list a stream processor's dead letters (values masked); with --replay, load those "
        "that pass the spec now, once each",
    )
    dead.add_argument("name", help="the streaming pipeline (its spec's name)")
    dead.add_argument(
        "--reason", help="only dead letters with this reason (rules, unparseable, poison, late)"
    )
    dead.add_argument("--rule", help="only dead letters that broke this rule (its name in expect)")
    dead.add_argument(
        "--ids",
        nargs="+",
        metavar="ID",
        help="only the dead letters of these source entry ids (the `entry id` column)",
    )
    dead.add_argument(
        "--replay",
        action="store_true",
        help="run the selected letters' source entries through the current spec: those that pass "
        "are loaded once and marked replayed; the others stay dead",
    )
    dead.add_argument(
        "--limit", type=int, default=50, metavar="N", help="list at most N dead letters (default 50)"
    )
    dead.add_argument("--pipelines", help=PIPELINES_HELP)
    dead.set_defaults(func=cmd_dead)
