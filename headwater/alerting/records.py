"""Records the alert engine reads and writes: deliveries, silences, MTTA/MTTR, and row helpers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from headwater.alerting.delivery import DeliveryFailed
from headwater.errors import NotificationError
from headwater.store.store import aware

ACTIVE = ("open", "acknowledged", "suppressed")
"""Instance states that count as the one instance of a fingerprint."""
MATCHER_KEYS = ("pipeline", "rule", "severity")


@dataclass(frozen=True)
class Delivery:
    """One message to one channel, as recorded: sent, held (quiet hours/maintenance), suppressed
    (silence), failed (refused on every attempt), skipped (the channel's circuit breaker was open:
    not tried) or superseded (held, then no longer relevant)."""

    id: int
    channel: str
    kind: str
    status: str
    instance_ids: list[int]
    title: str
    body: str
    reason: str | None
    attempts: int
    error: str | None


@dataclass(frozen=True)
class Silence:
    id: int
    matchers: dict[str, str]
    reason: str
    created_by: str
    created_at: datetime
    expires_at: datetime

    def covers(self, instance: Mapping[str, Any]) -> bool:
        values = {"pipeline": instance["pipeline_name"], "rule": instance["rule_name"]}
        values["severity"] = instance["severity"]
        return all(fnmatchcase(values[k], pattern) for k, pattern in self.matchers.items())


@dataclass(frozen=True)
class MttaMttr:
    """Mean time to acknowledge / resolve, in seconds, over the instances that were."""

    mtta_seconds: float | None
    mttr_seconds: float | None
    acknowledged: int
    resolved: int


def as_dict(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = aware(value)
    return out


def new_plan(
    kind: str, channel: str, group: Sequence[Mapping[str, Any]], title: str, body: str, run_id: str | None
) -> dict[str, Any]:
    return {
        "instance_ids": [int(i["id"]) for i in group],
        "kind": kind,
        "channel": channel,
        "run_id": run_id,
        "title": title,
        "body": body,
        "status": None,
        "reason": None,
        "attempts": 0,
        "error": None,
        "created_at": None,
        "sent_at": None,
    }


def as_delivery(row: Any) -> Delivery:
    m = row if isinstance(row, Mapping) else row._mapping
    return Delivery(
        int(m["id"]),
        m["channel"],
        m["kind"],
        m["status"],
        list(m["instance_ids"]),
        m["title"],
        m["body"],
        m["reason"],
        m["attempts"],
        m["error"],
    )


def raise_failures(failures: Sequence[DeliveryFailed]) -> None:
    if len(failures) == 1:
        raise failures[0]
    if failures:
        raise NotificationError("; ".join(str(f) for f in failures))
