"""Console users: a name, a role and a scrypt password hash; never the password itself."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from headwater.access.passwords import check_strength, hash_password
from headwater.access.roles import Role
from headwater.errors import PermanentError
from headwater.store.tables import console_sessions, console_users

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,99}$")


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str
    is_active: bool


def _role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError as exc:
        raise PermanentError(
            f"{role!r} is not a role", hint=f"use one of {', '.join(r.value for r in Role)}"
        ) from exc


def add_user(engine: sa.Engine, username: str, role: str, password: str, now: datetime) -> User:
    if not USERNAME.match(username):
        raise PermanentError(
            f"{username!r} is not a valid user name",
            hint="use 2-100 lower-case letters, digits, '.', '_', '@' or '-', starting with a letter/digit",
        )
    checked = _role(role)
    check_strength(username, password)
    writer = engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
    with writer.begin() as conn:
        if conn.execute(sa.select(console_users.c.id).where(console_users.c.username == username)).first():
            raise PermanentError(
                f"user {username!r} exists already", hint="change their role with `headwater users set-role`"
            )
        new_id = conn.execute(
            sa.insert(console_users).values(
                username=username,
                role=checked.value,
                password_hash=hash_password(password),
                is_active=True,
                failed_logins=0,
                password_changed_at=now,
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key[0]  # type: ignore[index]
    return User(int(new_id), username, checked.value, True)


def list_users(engine: sa.Engine) -> list[dict[str, Any]]:
    """Every user without the password hash."""
    cols = [c for c in console_users.c if c.name != "password_hash"]
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(*cols).order_by(console_users.c.username))]


def count_users(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(console_users)).scalar_one())


def _update(
    engine: sa.Engine, username: str, now: datetime, *, end_sessions: str | None, **values: Any
) -> None:
    writer = engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
    with writer.begin() as conn:
        user_id = conn.execute(
            sa.select(console_users.c.id).where(console_users.c.username == username)
        ).scalar()
        if user_id is None:
            raise PermanentError(
                f"there is no user {username!r}", hint="list users with `headwater users list`"
            )
        conn.execute(
            sa.update(console_users).where(console_users.c.id == user_id).values(updated_at=now, **values)
        )
        if end_sessions:  # what the user could do changed: their open sessions end now
            conn.execute(
                sa.update(console_sessions)
                .where(console_sessions.c.user_id == user_id, console_sessions.c.ended_at.is_(None))
                .values(ended_at=now, end_reason=end_sessions)
            )


def set_role(engine: sa.Engine, username: str, role: str, now: datetime) -> None:
    _update(engine, username, now, end_sessions=None, role=_role(role).value)


def set_password(engine: sa.Engine, username: str, password: str, now: datetime) -> None:
    check_strength(username, password)
    _update(
        engine,
        username,
        now,
        end_sessions="password_changed",
        password_hash=hash_password(password),
        password_changed_at=now,
        failed_logins=0,
        locked_until=None,
    )


def set_active(engine: sa.Engine, username: str, active: bool, now: datetime) -> None:
    _update(
        engine,
        username,
        now,
        end_sessions=None if active else "disabled",
        is_active=active,
        failed_logins=0,
        locked_until=None,
    )
