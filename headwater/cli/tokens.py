"""`headwater tokens`: API tokens for the HTTP API (see headwater.access.tokens). Whoever can run
this has the store itself, so no sign-in is asked; each change is audited (source cli) under the
operating-system user."""

from __future__ import annotations

import argparse
import getpass
import json
from datetime import UTC, datetime
from typing import Any

from headwater.cli.common import table
from headwater.settings import Settings


def _when(value: datetime | None) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M}"


def cmd_tokens(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.access import tokens
    from headwater.store import Store

    now = datetime.now(UTC)
    by = f"os:{getpass.getuser()}"
    store = Store(settings.database_url).migrate()
    try:
        if args.action == "create":
            if not args.name:
                print("give the token a name: headwater tokens create --name NAME --role ROLE")
                return 2
            made = tokens.create_token(
                store.engine,
                args.name,
                args.role,
                now,
                created_by=by,
                username=args.user,
                expires_in=tokens.parse_expiry(args.expires),
            )
            if args.json:
                print(
                    json.dumps(
                        {
                            "id": made.id,
                            "name": made.name,
                            "role": made.role,
                            "token": made.secret,
                            "expires_at": made.expires_at.isoformat() if made.expires_at else None,
                        }
                    )
                )
            else:
                print(made.secret)
                expiry = f"expires {_when(made.expires_at)} UTC" if made.expires_at else "never expires"
                print(
                    f"token {made.name} ({made.role}, {expiry}): shown once, only its hash is kept; "
                    "send it as `Authorization: Bearer <token>`",
                )
            return 0
        if args.action == "revoke":
            which = args.which or args.name
            if not which:
                print("give the token's name or id: headwater tokens revoke NAME")
                return 2
            gone = tokens.revoke_token(store.engine, which, now, by=by)
            print(f"revoked token {gone.name} ({gone.prefix}…)")
            return 0
        listed = tokens.list_tokens(store.engine)
        rows = [
            (
                t.id,
                t.name,
                t.prefix + "…",
                t.role,
                t.username or "(service)",
                t.state(now),
                _when(t.created_at),
                _when(t.expires_at) or "never",
                _when(t.last_used_at),
            )
            for t in listed
            if args.all or t.state(now) == "active"
        ]
        print(
            table(rows, ["id", "name", "token", "role", "user", "state", "created", "expires", "last used"])
            if rows
            else "no API tokens (make one: headwater tokens create --name NAME --role data_engineer)"
        )
        return 0
    finally:
        store.dispose()


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("tokens", help="API tokens for the HTTP API: create, list, revoke")
    p.add_argument("action", choices=["create", "list", "revoke"], help="what to do")
    p.add_argument("which", nargs="?", help="revoke: the token's name or id")
    p.add_argument("--name", dest="name", help="create: a name for the token (e.g. the program using it)")
    p.add_argument(
        "--role",
        choices=["data_analyst", "data_engineer", "system_admin"],
        default="data_analyst",
        help="create: what the token may do (default data_analyst: read only)",
    )
    p.add_argument("--user", help="create: the console user whose token it is (its role stays within theirs)")
    p.add_argument(
        "--expires", default="90d", help="create: lifetime such as 90d, 12h, 2w, or never (default 90d)"
    )
    p.add_argument("--all", action="store_true", help="list: revoked and expired tokens too")
    p.add_argument("--json", action="store_true", help="create: print the new token as JSON")
    p.set_defaults(func=cmd_tokens)
