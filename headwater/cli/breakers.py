"""`headwater breakers`: the circuit breakers in front of sources and alert channels (all, or only
those not closed), and `--reset KEY` to close one by hand once its service is known to be back."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from headwater.cli.common import table
from headwater.settings import Settings


def cmd_breakers(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.breakers import CLOSED, Breakers, open_breakers, stamp
    from headwater.store import Store

    settings.ensure_home()
    store = Store(settings.database_url).migrate()
    now = datetime.now(UTC)
    try:
        breakers = Breakers(store.engine)
        if args.reset:
            if breakers.get(args.reset) is None:
                known = ", ".join(b.key for b in breakers.all()) or "none yet"
                print(f"no breaker {args.reset!r} (known: {known})")
                return 1
            closed = breakers.reset(args.reset, now)
            print(f"{args.reset}: {'closed' if closed else 'was already closed'}")
            return 0
        shown = breakers.all() if args.all else open_breakers(store.engine, now)
    finally:
        store.dispose()
    if not shown:
        print("no open circuit breakers" + ("" if args.all else "  (--all lists the closed ones too)"))
        return 0
    rows: list[tuple[Any, ...]] = [
        (
            b.key,
            b.kind,
            b.state,
            "" if b.state == CLOSED else stamp(b.opened_at),
            "" if b.state == CLOSED else stamp(b.open_until),
            b.recent_failures,
            (b.last_error or "")[:90],
        )
        for b in shown
    ]
    print(table(rows, ["breaker", "kind", "state", "opened", "open until", "failures", "last error"]))
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "breakers", help="circuit breakers of sources and alert channels: which are open, until when"
    )
    p.add_argument("--all", action="store_true", help="list closed breakers too")
    p.add_argument("--reset", metavar="KEY", help="close this breaker now (its service is back)")
    p.set_defaults(func=cmd_breakers)
