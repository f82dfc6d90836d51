"""Signing in and out. The browser holds a random token; the store keeps only its sha256, with the
user, when it was last used and when it expires. Every request re-reads the user, so a role change
or a disabled account takes effect at once."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from headwater.access.audit import AuditEntry, record
from headwater.access.config import read_settings
from headwater.access.passwords import verify_password
from headwater.errors import PermanentError
from headwater.store.tables import console_sessions, console_users

# a scrypt hash to compare against when the user does not exist, so a wrong name takes as long as
# a wrong password (no user enumeration by timing)
_DUMMY_HASH = (
    "scrypt$16384$8$1$" + base64.b64encode(bytes(16)).decode() + "$" + base64.b64encode(bytes(32)).decode()
)


class LoginFailed(PermanentError):
    """Wrong user name or password, a disabled account, or a locked one (the message says which only
    for a lock, which the owner needs to know about)."""


class SessionExpired(PermanentError):
    """The session ended: signed out, idle too long, too old, or the account changed."""


@dataclass(frozen=True)
class Principal:
    """Who is acting, as the store says now."""

    user_id: int
    username: str
    role: str
    session_id: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def login(engine: sa.Engine, username: str, password: str, now: datetime, source: str = "console") -> str:
    """A new session token, or LoginFailed (audited either way)."""
    settings = read_settings(engine)
    writer = engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
    username = username.strip().lower()
    with writer.begin() as conn:
        user = conn.execute(sa.select(console_users).where(console_users.c.username == username)).first()
        ok = verify_password(password, user.password_hash if user else _DUMMY_HASH)
        locked = user is not None and (_aware(user.locked_until) or now) > now
        problem = None
        if user is None or not ok:
            problem = "wrong user name or password"
        elif not user.is_active:
            problem = "wrong user name or password"  # do not tell an attacker which accounts exist
        if locked:
            until = _aware(user.locked_until)  # type: ignore[union-attr]
            problem = f"the account is locked until {until:%H:%M} UTC after too many wrong passwords"
        if problem:
            if user is not None and not ok and not locked:
                failures = user.failed_logins + 1
                lock = (
                    now + timedelta(minutes=settings["lockout_minutes"])
                    if failures >= settings["lockout_attempts"]
                    else None
                )
                conn.execute(
                    sa.update(console_users)
                    .where(console_users.c.id == user.id)
                    .values(failed_logins=0 if lock else failures, locked_until=lock)
                )
        else:
            token = secrets.token_urlsafe(32)
            conn.execute(
                sa.insert(console_sessions).values(
                    id=_digest(token),
                    user_id=user.id,  # type: ignore[union-attr]
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + timedelta(hours=settings["session_max_hours"]),
                )
            )
            conn.execute(
                sa.update(console_users)
                .where(console_users.c.id == user.id)  # type: ignore[union-attr]
                .values(failed_logins=0, locked_until=None, last_login_at=now)
            )
    role = user.role if user else None
    record(
        engine,
        AuditEntry(username, role, "login", None, "denied" if problem else "ok", problem, source=source),
        now,
    )
    if problem:
        raise LoginFailed(problem)
    return token


def principal(engine: sa.Engine, token: str | None, now: datetime, *, touch: bool = True) -> Principal:
    """Who holds `token`, or SessionExpired. With `touch`, the idle clock restarts."""
    if not token:
        raise SessionExpired("not signed in")
    idle = timedelta(minutes=read_settings(engine)["session_idle_minutes"])
    digest = _digest(token)
    writer = engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
    with writer.begin() as conn:
        row = conn.execute(
            sa.select(
                console_sessions.c.last_seen_at,
                console_sessions.c.expires_at,
                console_sessions.c.ended_at,
                console_users.c.id,
                console_users.c.username,
                console_users.c.role,
                console_users.c.is_active,
            )
            .join(console_users, console_users.c.id == console_sessions.c.user_id)
            .where(console_sessions.c.id == digest)
        ).first()
        if row is None or row.ended_at is not None:
            raise SessionExpired("the session has ended; sign in again")
        reason = None
        if not row.is_active:
            reason = "disabled"
        elif now >= _aware(row.expires_at):  # type: ignore[operator]
            reason = "expired"
        elif now - _aware(row.last_seen_at) > idle:  # type: ignore[operator]
            reason = "idle"
        if reason:
            conn.execute(
                sa.update(console_sessions)
                .where(console_sessions.c.id == digest)
                .values(ended_at=now, end_reason=reason)
            )
        elif touch:
            conn.execute(
                sa.update(console_sessions).where(console_sessions.c.id == digest).values(last_seen_at=now)
            )
    if reason:
        what = {"disabled": "the account is disabled", "expired": "the session is too old", "idle": ""}
        raise SessionExpired(
            what[reason] or f"signed out after {int(idle.total_seconds() // 60)} minutes without activity"
        )
    return Principal(int(row.id), row.username, row.role, digest)


def logout(engine: sa.Engine, token: str, now: datetime) -> None:
    try:
        who = principal(engine, token, now, touch=False)
    except SessionExpired:
        return
    writer = engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
    with writer.begin() as conn:
        conn.execute(
            sa.update(console_sessions)
            .where(console_sessions.c.id == who.session_id)
            .values(ended_at=now, end_reason="logout")
        )
    record(engine, AuditEntry(who.username, who.role, "logout", None, "ok"), now)
