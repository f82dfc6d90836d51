"""`headwater users`: the console's users (see headwater.access.commands)."""

from __future__ import annotations

import argparse
from typing import Any

from headwater.cli.common import table
from headwater.settings import Settings


def cmd_users(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.access.commands import run_users_command
    from headwater.store import Store

    store = Store(settings.database_url).migrate()
    try:
        return run_users_command(args, store.engine, table)
    finally:
        store.dispose()


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("users", help="console users: add, list, set-role, passwd, disable, enable")
    p.add_argument(
        "action",
        choices=["add", "list", "set-role", "passwd", "disable", "enable"],
        help="what to do with the user",
    )
    p.add_argument("username", nargs="?", help="the user (all but list)")
    p.add_argument(
        "--role", choices=["data_analyst", "data_engineer", "system_admin"], help="with add and set-role"
    )
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=cmd_users)
