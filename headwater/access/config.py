"""Console settings a system admin changes from the console (kept in the store, table
console_settings); each has a default, bounds and a description."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from headwater.errors import PermanentError
from headwater.store.tables import console_settings


@dataclass(frozen=True)
class SettingDef:
    key: str
    default: int
    low: int
    high: int
    description: str


DEFINITIONS = {
    d.key: d
    for d in (
        SettingDef(
            "session_idle_minutes", 30, 1, 24 * 60, "Sign a user out after this long without a click."
        ),
        SettingDef("session_max_hours", 12, 1, 24 * 7, "Sign a user out this long after signing in."),
        SettingDef(
            "lockout_attempts", 5, 1, 100, "Lock an account after this many wrong passwords in a row."
        ),
        SettingDef("lockout_minutes", 15, 1, 24 * 60, "How long a locked account stays locked."),
    )
}


def read_settings(engine: sa.Engine) -> dict[str, int]:
    """Every setting: the stored value, or its default."""
    with engine.connect() as conn:
        stored = {r.key: r.value for r in conn.execute(sa.select(console_settings))}
    return {k: int(stored.get(k, d.default)) for k, d in DEFINITIONS.items()}


def setting_rows(engine: sa.Engine) -> list[dict[str, Any]]:
    """Each setting with its value, default, bounds, description and who changed it last."""
    with engine.connect() as conn:
        stored = {r.key: r for r in conn.execute(sa.select(console_settings))}
    rows = []
    for key, d in DEFINITIONS.items():
        row = stored.get(key)
        rows.append(
            {
                "key": key,
                "value": int(row.value) if row else d.default,
                "default": d.default,
                "range": f"{d.low} to {d.high}",
                "description": d.description,
                "updated_by": row.updated_by if row else None,
                "updated_at": row.updated_at if row else None,
            }
        )
    return rows


def write_setting(engine: sa.Engine, key: str, value: Any, by: str, now: datetime) -> int:
    definition = DEFINITIONS.get(key)
    if definition is None:
        raise PermanentError(
            f"there is no console setting {key!r}", hint=f"use one of {', '.join(DEFINITIONS)}"
        )
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise PermanentError(f"{key} must be a whole number, not {value!r}") from exc
    if not definition.low <= number <= definition.high:
        raise PermanentError(
            f"{key} = {number} is out of range",
            hint=f"give a value from {definition.low} to {definition.high}",
        )
    writer = engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
    with writer.begin() as conn:
        values = {"value": number, "updated_at": now, "updated_by": by}
        if not conn.execute(
            sa.update(console_settings).where(console_settings.c.key == key).values(values)
        ).rowcount:
            conn.execute(sa.insert(console_settings).values(key=key, **values))
    return number
