"""Signing in and out. The browser holds a random token; the store keeps only its sha256, with the
user, when it was last used and when it expires. Every request re-reads the user, so a role change
or a disabled account takes effect at once."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from headwater.access.audit import AuditEntry, record
from headwater.access.config import read_settings
from headwater.access.passwords import verify_password
from headwater.errors import PermanentError
from headwater.store.store import aware
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


ENDED = {
    "logout": "you signed out",
    "disabled": "the account is disabled",
    "password_changed": "the password was changed",
    "expired": "the session is too old",
    "idle": "the session was idle too long",
}
"""What a request of an ended session is told, by why it ended."""
TOUCH_EVERY = timedelta(seconds=60)
"""How stale last_seen_at may get before a request writes it (the idle clock's resolution)."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def login(engine: sa.Engine, username: str, password: str, now: datetime, source: str = "console") -> str:
    """A new session token, or LoginFailed (audited either way). The password is checked outside
    any write transaction: scrypt is slow on purpose and must not hold the store's write lock."""
    settings = read_settings(engine)
    username = username.strip().lower()
    with engine.connect() as conn:
        user = conn.execute(sa.select(console_users).where(console_users.c.username == username)).first()
    ok = verify_password(password, user.password_hash if user else _DUMMY_HASH)
    locked_until = aware(user.locked_until) if user is not None and user.locked_until else None
    problem = None
    if locked_until is not None and locked_until > now:
        problem = f"the account is locked until {locked_until:%H:%M} UTC after too many wrong passwords"
    elif user is None or not ok or not user.is_active:
        problem = "wrong user name or password"  # the same words whichever it was
    token = secrets.token_urlsafe(32)
    writer = engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
    with writer.begin() as conn:
        if user is not None and not ok and problem and not problem.startswith("the account is locked"):
            failures = (
                1
                + conn.execute(
                    sa.select(console_users.c.failed_logins).where(console_users.c.id == user.id)
                ).scalar_one()
            )
            lock = now + timedelta(minutes=settings["lockout_minutes"])
            locking = failures >= settings["lockout_attempts"]
            conn.execute(
                sa.update(console_users)
                .where(console_users.c.id == user.id)
                .values(failed_logins=0 if locking else failures, locked_until=lock if locking else None)
            )
        elif problem is None and user is not None:
            conn.execute(
                sa.insert(console_sessions).values(
                    id=_digest(token),
                    user_id=user.id,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + timedelta(hours=settings["session_max_hours"]),
                )
            )
            conn.execute(
                sa.update(console_users)
                .where(console_users.c.id == user.id)
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
    """Who holds `token`, or SessionExpired. With `touch`, the idle clock restarts (written at most
    once a minute: most requests only read)."""
    if not token:
        raise SessionExpired("not signed in")
    idle = timedelta(minutes=read_settings(engine)["session_idle_minutes"])
    digest = _digest(token)
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(
                console_sessions.c.last_seen_at,
                console_sessions.c.expires_at,
                console_sessions.c.ended_at,
                console_sessions.c.end_reason,
                console_users.c.id,
                console_users.c.username,
                console_users.c.role,
                console_users.c.is_active,
            )
            .join(console_users, console_users.c.id == console_sessions.c.user_id)
            .where(console_sessions.c.id == digest)
        ).first()
    if row is None:
        raise SessionExpired("the session has ended; sign in again")
    if row.ended_at is not None:
        raise SessionExpired(ENDED.get(row.end_reason or "", "the session has ended; sign in again"))
    last_seen = aware(row.last_seen_at)
    reason = None
    if not row.is_active:
        reason = "disabled"
    elif now >= aware(row.expires_at):
        reason = "expired"
    elif now - last_seen > idle:
        reason = "idle"
    values: dict[str, object] | None = None
    if reason:
        values = {"ended_at": now, "end_reason": reason}
    elif touch and now - last_seen >= TOUCH_EVERY:
        values = {"last_seen_at": now}
    if values:
        writer = engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
        with writer.begin() as conn:
            conn.execute(
                sa.update(console_sessions)
                .where(console_sessions.c.id == digest, console_sessions.c.ended_at.is_(None))
                .values(values)
            )
    if reason:
        if reason == "idle":
            raise SessionExpired(
                f"signed out after {int(idle.total_seconds() // 60)} minutes without activity"
            )
        raise SessionExpired(ENDED[reason])
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
