"""Store a received event durably, once per (endpoint, idempotency key), before the API answers.

The key is the sender's `Idempotency-Key` header; a post without one is keyed by the SHA-256 of its
body, so a sender's retry of the same body is stored once (two events with identical bodies are then
one event: send the header, or an id in the body, to tell them apart). The same key again with the
same body is a duplicate (stored once, answered 200); with a different body it is refused
(IdempotencyConflict): a key names one event."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from headwater.errors import PermanentError
from headwater.store.tables import webhook_events

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255
_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII: what every sender's ids are made of


@dataclass(frozen=True)
class Received:
    event_id: int
    idempotency_key: str
    duplicate: bool
    """The key was stored before (with the same body): nothing new was stored."""


class IdempotencyConflict(PermanentError):
    """The key was used before for a different body."""

    def __init__(self, endpoint: str, key: str, event_id: int) -> None:
        self.endpoint, self.key, self.event_id = endpoint, key, event_id
        super().__init__(
            f"idempotency key {key!r} of endpoint {endpoint} already names event {event_id}, "
            "which has a different body",
            hint="send each event with its own Idempotency-Key; a retry sends the same body again",
        )


class BadIdempotencyKey(PermanentError):
    def __init__(self) -> None:
        super().__init__(
            f"the {IDEMPOTENCY_HEADER} header is empty, too long or has characters other than visible ASCII",
            hint=f"send 1 to {MAX_KEY_CHARS} visible ASCII characters, e.g. the sender's event id or a UUID",
        )


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def idempotency_key(header: str | None, body: bytes) -> str:
    """The event's key: the header's value, or `sha256:<hex of the body>` when there is none."""
    if header is None:
        return f"sha256:{body_digest(body)}"
    key = header.strip()
    if not _KEY.fullmatch(key):
        raise BadIdempotencyKey()
    return key


def store_event(
    engine: sa.Engine,
    endpoint: str,
    key: str,
    body: bytes,
    *,
    signed_at: datetime,
    now: datetime,
) -> Received:
    """Insert the event in its own committed transaction (it is durable when this returns), or
    find the one stored under the same key. `body` is UTF-8 JSON (the API checked it)."""
    digest = body_digest(body)
    writer = engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
    try:
        with writer.begin() as conn:
            new_id = conn.execute(
                sa.insert(webhook_events).values(
                    endpoint=endpoint,
                    idempotency_key=key,
                    body_sha256=digest,
                    body=body.decode("utf-8"),
                    signed_at=signed_at,
                    received_at=now,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        return Received(int(new_id), key, duplicate=False)
    except sa.exc.IntegrityError:  # the unique (endpoint, idempotency_key): stored before
        pass
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(webhook_events.c.id, webhook_events.c.body_sha256).where(
                webhook_events.c.endpoint == endpoint, webhook_events.c.idempotency_key == key
            )
        ).one()
    if row.body_sha256 != digest:
        raise IdempotencyConflict(endpoint, key, int(row.id))
    return Received(int(row.id), key, duplicate=True)
