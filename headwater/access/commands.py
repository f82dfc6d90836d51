"""`headwater users ...` and the first administrator `headwater console` creates. The shell user
acts with the store's own credentials, so these need no sign-in; each change is audited as
source "cli" under the login name."""

from __future__ import annotations

import getpass
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from headwater.access import users
from headwater.access.audit import AuditEntry, record
from headwater.access.passwords import generate_password
from headwater.access.roles import Role
from headwater.errors import HeadwaterError, PermanentError


def _password(args: Any) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(f"password for {args.username}: ")
    if getpass.getpass("again: ") != first:
        raise PermanentError("the two passwords differ", hint="type the same password twice")
    return first


def _audit(
    engine: sa.Engine, action: str, target: str, outcome: str, detail: str | None, params: Any
) -> None:
    who = os.environ.get("USER") or getpass.getuser()
    record(engine, AuditEntry(who, None, action, target, outcome, detail, params, "cli"), datetime.now(UTC))


def run_users_command(args: Any, engine: sa.Engine, table: Any) -> int:
    now = datetime.now(UTC)
    if args.action == "list":
        rows = [
            (
                u["username"],
                u["role"],
                "yes" if u["is_active"] else "no",
                f"{u['last_login_at']:%Y-%m-%d %H:%M}" if u["last_login_at"] else "",
                f"{u['locked_until']:%Y-%m-%d %H:%M}" if u["locked_until"] else "",
            )
            for u in users.list_users(engine)
        ]
        print(table(rows, ["user", "role", "active", "last sign-in (UTC)", "locked until"]))
        return 0
    if not args.username:
        raise PermanentError(f"`headwater users {args.action}` needs a user name")
    if args.action in ("add", "set-role") and not args.role:
        roles = "data_analyst, data_engineer or system_admin"
        raise PermanentError(f"`headwater users {args.action}` needs --role", hint=roles)
    target = f"user {args.username}"
    params: dict[str, Any] = {"op": args.action.replace("-", "_")}
    try:
        if args.action == "add":
            params["role"] = args.role
            users.add_user(engine, args.username, args.role, _password(args), now)
            print(f"user {args.username} added as {args.role}")
        elif args.action == "set-role":
            params["role"] = args.role
            users.set_role(engine, args.username, args.role, now)
            print(f"{args.username} is now {args.role}")
        elif args.action == "passwd":
            users.set_password(engine, args.username, _password(args), now)
            print(f"password of {args.username} changed; their sessions ended")
        elif args.action in ("disable", "enable"):
            users.set_active(engine, args.username, args.action == "enable", now)
            print(f"{args.username} {args.action}d")
    except HeadwaterError as exc:
        _audit(engine, "users.manage", target, "failed", str(exc), params)
        raise
    _audit(engine, "users.manage", target, "ok", None, params)
    return 0


def ensure_first_admin(engine: sa.Engine, home: Path) -> Path | None:
    """With no users at all, create `admin` (system_admin) with a random password kept in a file
    only the owner can read; return that file. None when users exist."""
    if users.count_users(engine):
        return None
    password = generate_password()
    users.add_user(engine, "admin", Role.SYSTEM_ADMIN.value, password, datetime.now(UTC))
    path = home / "secrets" / "console_admin_password"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch(mode=0o600)
    path.write_text(password + "\n")
    _audit(
        engine,
        "users.manage",
        "user admin",
        "ok",
        "first administrator created",
        {"op": "add", "role": "system_admin"},
    )
    return path
