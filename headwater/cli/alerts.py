"""`headwater alerts ...`. Reading (list, history) needs nothing but the store: no channels, no
secrets. Acting (ack, resolve, silence) is audited as the console's actions are, with source
"cli" and the login name; resolve and tick send messages, so they use the configured channels."""

from __future__ import annotations

import argparse
import getpass
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from headwater.cli.common import table
from headwater.errors import PermanentError
from headwater.settings import Settings


def matchers_text(matchers: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in matchers.items())


def parse_matchers(given: list[str]) -> dict[str, str]:
    from headwater.alerting.records import MATCHER_KEYS

    matchers: dict[str, str] = {}
    for item in given:
        key, sep, value = item.partition("=")
        if not sep or key.strip() not in MATCHER_KEYS or not value.strip():
            raise PermanentError(
                f"--match {item!r} is not KEY=PATTERN",
                hint=f"give e.g. --match pipeline=flights_* (keys: {', '.join(MATCHER_KEYS)})",
            )
        matchers[key.strip()] = value.strip()
    if not matchers:
        raise PermanentError(
            "`headwater alerts silence` needs at least one --match",
            hint="e.g. --match pipeline=flights_* --hours 4 --reason backfill",
        )
    return matchers


def _engine(settings: Settings, store_engine: Any, *, sending: bool) -> Any:
    """The alert engine; with `sending`, over the configured channels (their secrets needed)."""
    from headwater.alerting import AlertEngine, engine_for
    from headwater.alerting.config import AlertRules, Channels

    if sending and settings.alerts_dir is not None:
        return engine_for(store_engine, settings.alerts_dir)
    return AlertEngine(store_engine, Channels(channels={}), AlertRules(rules=[]))


def _audit(
    store_engine: Any, who: str, action: str, target: str, outcome: str, detail: str | None, params: Any
) -> None:
    from headwater.access.audit import AuditEntry, record

    record(
        store_engine, AuditEntry(who, None, action, target, outcome, detail, params, "cli"), datetime.now(UTC)
    )


def cmd_alerts(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.access.roles import Action
    from headwater.alerting.engine import history, mtta_mttr
    from headwater.store import Store

    store = Store(settings.database_url).migrate()
    try:
        now, who = datetime.now(UTC), args.by or os.environ.get("USER") or getpass.getuser()
        if args.action in ("list", "history"):
            rows = history(store.engine, args.pipeline)
            shown = [r for r in rows if args.action == "history" or r["status"] in ("open", "acknowledged")]
            print(
                table(
                    [
                        (
                            r["id"],
                            r["pipeline_name"],
                            r["rule_name"],
                            r["severity"],
                            r["status"],
                            r["occurrences"],
                            r["level"],
                            f"{r['opened_at']:%Y-%m-%d %H:%M}",
                        )
                        for r in shown
                    ],
                    ["id", "pipeline", "rule", "severity", "status", "seen", "level", "opened (UTC)"],
                )
            )
            if args.action == "history":
                m = mtta_mttr(rows)
                mtta = "-" if m.mtta_seconds is None else f"{m.mtta_seconds / 60:.1f} min"
                mttr = "-" if m.mttr_seconds is None else f"{m.mttr_seconds / 60:.1f} min"
                print(f"\nMTTA {mtta} ({m.acknowledged} acknowledged), MTTR {mttr} ({m.resolved} resolved)")
            elif not shown:
                print("no open alerts")
            return 0
        if args.action in ("ack", "resolve") and args.id is None:
            raise PermanentError(
                f"`headwater alerts {args.action}` needs the alert's id",
                hint=f"see the ids with `headwater alerts list`, then e.g. headwater alerts {args.action} 7",
            )
        if args.action == "tick":
            if settings.alerts_dir is None:
                print("HEADWATER_ALERTS is not set: no channels to send escalations to")
                return 1
            sent = _engine(settings, store.engine, sending=True).tick(now)
            print(f"{len(sent)} message(s) from escalations and released holds")
            return 0
        action, target, params = {
            "ack": (Action.ACK_ALERT, f"alert {args.id}", None),
            "resolve": (Action.RESOLVE_ALERT, f"alert {args.id}", None),
            "silence": (Action.SILENCE_ALERT, "", None),
        }[args.action]
        try:
            if args.action == "ack":
                _engine(settings, store.engine, sending=False).ack(args.id, who, now)
                detail = None
                print(f"alert {args.id} acknowledged by {who}: escalation stops")
            elif args.action == "resolve":
                sent = _engine(settings, store.engine, sending=True).resolve(args.id, who, now)
                detail = f"{len(sent)} message(s)"
                print(f"alert {args.id} resolved by {who}; {len(sent)} message(s)")
            else:
                matchers = parse_matchers(args.match)
                target = matchers_text(matchers)
                params = {"matchers": matchers, "hours": args.hours, "reason": args.reason or ""}
                if not 0 < args.hours <= 24 * 14:
                    raise PermanentError(
                        f"a silence of {args.hours:g} hours", hint="give --hours from 0.02 to 336"
                    )
                until = now + timedelta(hours=args.hours)
                silence = _engine(settings, store.engine, sending=False).silence(
                    matchers, until, who, now, args.reason or ""
                )
                detail = f"silence {silence.id}"
                print(f"silence {silence.id} on {target} until {silence.expires_at:%Y-%m-%d %H:%M} UTC")
        except Exception as exc:
            _audit(store.engine, who, action.value, target, "failed", f"{type(exc).__name__}: {exc}", params)
            raise
        _audit(store.engine, who, action.value, target, "ok", detail, params)
        return 0
    finally:
        store.dispose()


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("alerts", help="alerts: list, history, ack, resolve, silence, tick")
    p.add_argument(
        "action",
        choices=["list", "history", "ack", "resolve", "silence", "tick"],
        help="list open alerts; history with MTTA/MTTR; ack or resolve one; silence some; tick: "
        "send escalations and released holds",
    )
    p.add_argument(
        "id", nargs="?", type=int, help="with ack/resolve: the alert's id (see: headwater alerts list)"
    )
    p.add_argument("--pipeline", help="with list/history: only this pipeline's alerts")
    p.add_argument("--by", help="who acts (default: the login name)")
    p.add_argument(
        "--match",
        action="append",
        default=[],
        metavar="KEY=PATTERN",
        help="with silence: pipeline=, rule= or severity= (globs such as flights_*); repeatable",
    )
    p.add_argument("--hours", type=float, default=4.0, help="with silence: how long (default 4)")
    p.add_argument("--reason", help="with silence: why, for the audit log and the console")
    p.set_defaults(func=cmd_alerts)
