"""The audit log: every action anyone attempts, allowed or not, with who, what, on what and how it
ended. Rows are only ever added."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from headwater.redact import redact
from headwater.store.tables import audit_log

OUTCOMES = ("ok", "denied", "failed")


@dataclass(frozen=True)
class AuditEntry:
    username: str | None
    role: str | None
    action: str
    target: str | None
    outcome: str
    detail: str | None = None
    parameters: dict[str, Any] | None = None
    source: str = "console"


def record(engine: sa.Engine, entry: AuditEntry, now: datetime) -> int:
    if entry.outcome not in OUTCOMES:
        raise ValueError(f"audit outcome {entry.outcome!r} is not one of {OUTCOMES}")
    writer = engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
    with writer.begin() as conn:
        new_id = conn.execute(
            sa.insert(audit_log).values(
                at=now,
                username=entry.username,
                role=entry.role,
                action=entry.action,
                target=entry.target,
                parameters=entry.parameters,
                outcome=entry.outcome,
                detail=redact(entry.detail) if entry.detail else None,
                source=entry.source,
            )
        ).inserted_primary_key[0]  # type: ignore[index]
    return int(new_id)


def read(
    engine: sa.Engine,
    *,
    limit: int = 200,
    username: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
) -> list[dict[str, Any]]:
    """Newest first."""
    query = sa.select(audit_log).order_by(audit_log.c.at.desc(), audit_log.c.id.desc()).limit(limit)
    if username:
        query = query.where(audit_log.c.username == username)
    if action:
        query = query.where(audit_log.c.action == action)
    if outcome:
        query = query.where(audit_log.c.outcome == outcome)
    if since:
        query = query.where(audit_log.c.at >= since)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]
