"""API tokens: what a program shows the HTTP API instead of a password. A token is a random secret
(`hwt_` + 43 URL-safe characters) shown once when it is made; the store keeps its sha256, a short
prefix to tell tokens apart, its role, whose it is, and when it expires or was revoked. A token acts
with its own role, never more than its owner has now: demoting or disabling the owner takes effect at
the next request."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from headwater.access.audit import AuditEntry, record
from headwater.access.roles import Role
from headwater.access.sessions import TOUCH_EVERY, Principal, SessionExpired
from headwater.durations import parse_duration
from headwater.errors import PermanentError
from headwater.store.store import aware
from headwater.store.tables import api_tokens, console_users

TOKEN_PREFIX = "hwt_"
RANK = {Role.DATA_ANALYST.value: 0, Role.DATA_ENGINEER.value: 1, Role.SYSTEM_ADMIN.value: 2}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_api_token(token: str | None) -> bool:
    return bool(token) and str(token).startswith(TOKEN_PREFIX)


def parse_expiry(text: str | None) -> timedelta | None:
    """`90d`, `12h`, `2w`; `never` (or None) for a token that does not expire."""
    if text is None or text.strip().lower() == "never":
        return None
    try:
        return timedelta(seconds=parse_duration(text))
    except ValueError:
        raise PermanentError(
            f"expiry {text!r} is not a duration", hint="write e.g. 90d, 12h or 2w (or never)"
        ) from None


@dataclass(frozen=True)
class NewToken:
    id: int
    name: str
    role: str
    secret: str
    """Shown once; only its hash is kept."""
    expires_at: datetime | None


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    prefix: str
    role: str
    username: str | None
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"


def _role(role: str) -> str:
    try:
        return Role(role).value
    except ValueError:
        raise PermanentError(
            f"there is no role {role!r}", hint=f"choose one of {', '.join(r.value for r in Role)}"
        ) from None


def create_token(
    engine: sa.Engine,
    name: str,
    role: str,
    now: datetime,
    *,
    created_by: str,
    username: str | None = None,
    expires_in: timedelta | None = None,
    source: str = "cli",
) -> NewToken:
    """A new token. With `username`, the token is that user's and may not hold a higher role than
    theirs; without, it is a service token (the audit log names it `<name> (service)`)."""
    role = _role(role)
    if not _NAME.match(name):
        raise PermanentError(
            f"token name {name!r} is not usable",
            hint="use letters, digits, '.', '_' or '-' (up to 100), starting with a letter or digit",
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    writer = engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
    with writer.begin() as conn:
        if username is not None:
            username = username.strip().lower()
            user = conn.execute(
                sa.select(console_users.c.role, console_users.c.is_active).where(
                    console_users.c.username == username
                )
            ).first()
            if user is None or not user.is_active:
                raise PermanentError(
                    f"there is no active user {username!r}",
                    hint="add the user first (headwater users add), or leave out --user for a service token",
                )
            if RANK.get(role, 99) > RANK.get(user.role, -1):
                raise PermanentError(
                    f"{username} is {user.role}: their token cannot be {role}",
                    hint=f"give the token the role {user.role} or lower",
                )
        taken = conn.execute(
            sa.select(api_tokens.c.id).where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
        ).first()
        if taken:
            raise PermanentError(
                f"a token named {name!r} exists", hint="choose another name, or revoke that one first"
            )
        expires_at = now + expires_in if expires_in else None
        token_id = conn.execute(
            sa.insert(api_tokens)
            .values(
                name=name,
                token_hash=digest(secret),
                prefix=secret[: len(TOKEN_PREFIX) + 6],
                role=role,
                username=username,
                created_at=now,
                created_by=created_by,
                expires_at=expires_at,
            )
            .returning(api_tokens.c.id)
        ).scalar_one()
    record(
        engine,
        AuditEntry(
            created_by,
            None,
            "token.create",
            f"token {name}",
            "ok",
            f"role {role}"
            + (f", user {username}" if username else "")
            + (f", expires {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ", never expires"),
            source=source,
        ),
        now,
    )
    return NewToken(int(token_id), name, role, secret, expires_at)


def list_tokens(engine: sa.Engine) -> list[TokenInfo]:
    t = api_tokens
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                t.c.id,
                t.c.name,
                t.c.prefix,
                t.c.role,
                t.c.username,
                t.c.created_at,
                t.c.created_by,
                t.c.expires_at,
                t.c.last_used_at,
                t.c.revoked_at,
            ).order_by(t.c.id)
        ).all()
    return [
        TokenInfo(
            int(r.id),
            r.name,
            r.prefix,
            r.role,
            r.username,
            aware(r.created_at),
            r.created_by,
            aware(r.expires_at) if r.expires_at else None,
            aware(r.last_used_at) if r.last_used_at else None,
            aware(r.revoked_at) if r.revoked_at else None,
        )
        for r in rows
    ]


def revoke_token(engine: sa.Engine, which: str, now: datetime, *, by: str, source: str = "cli") -> TokenInfo:
    """Revoke the active token named `which` (or with that id, or that prefix)."""
    found = [
        t for t in list_tokens(engine) if t.revoked_at is None and which in (t.name, str(t.id), t.prefix)
    ]
    if len(found) != 1:
        raise PermanentError(
            f"no active token {which!r}" if not found else f"{len(found)} active tokens match {which!r}",
            hint="see `headwater tokens list` and give the token's name or id",
        )
    token = found[0]
    writer = engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
    with writer.begin() as conn:
        conn.execute(sa.update(api_tokens).where(api_tokens.c.id == token.id).values(revoked_at=now))
    record(
        engine, AuditEntry(by, None, "token.revoke", f"token {token.name}", "ok", None, source=source), now
    )
    return token


def token_principal(engine: sa.Engine, token: str, now: datetime) -> Principal:
    """Who acts with `token`, or SessionExpired saying why not (unknown, revoked, expired, the owner
    disabled). The role is the token's, capped by its owner's role now."""
    t, u = api_tokens, console_users
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(
                t.c.id,
                t.c.name,
                t.c.role,
                t.c.username,
                t.c.expires_at,
                t.c.revoked_at,
                t.c.last_used_at,
                u.c.id.label("user_id"),
                u.c.role.label("user_role"),
                u.c.is_active,
            )
            .select_from(t.outerjoin(u, u.c.username == t.c.username))
            .where(t.c.token_hash == digest(token))
        ).first()
    if row is None:
        raise SessionExpired("the API token is not known", hint="create one with `headwater tokens create`")
    if row.revoked_at is not None:
        raise SessionExpired(f"the API token {row.name!r} was revoked", hint="create a new one")
    if row.expires_at is not None and now >= aware(row.expires_at):
        raise SessionExpired(
            f"the API token {row.name!r} expired at {aware(row.expires_at):%Y-%m-%d %H:%M} UTC",
            hint="create a new one",
        )
    role = row.role
    if row.username is not None:
        if row.user_id is None or not row.is_active:
            raise SessionExpired(
                f"the API token {row.name!r} belongs to {row.username}, whose account is disabled",
                hint="ask a system admin",
            )
        if RANK.get(row.user_role, -1) < RANK.get(role, 99):
            role = row.user_role
    last = aware(row.last_used_at) if row.last_used_at else None
    if last is None or now - last >= TOUCH_EVERY:
        writer = engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
        with writer.begin() as conn:
            conn.execute(sa.update(t).where(t.c.id == row.id).values(last_used_at=now))
    return Principal(
        int(row.user_id or 0), row.username or f"{row.name} (service)", role, f"api-token-{int(row.id)}"
    )
