"""Roles and what each may do. Reading is open to every signed-in user; every action is listed here."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    DATA_ANALYST = "data_analyst"
    """Reads everything the console shows; takes no action."""
    DATA_ENGINEER = "data_engineer"
    """Runs, pauses and resumes pipelines, replays quarantine and dead letters, handles alerts."""
    SYSTEM_ADMIN = "system_admin"
    """Everything an engineer may do, plus users, console settings and the audit log."""


class Action(StrEnum):
    RUN_PIPELINE = "pipeline.run"
    PAUSE_PIPELINE = "pipeline.pause"
    RESUME_PIPELINE = "pipeline.resume"
    REPLAY_QUARANTINE = "quarantine.replay"
    REPLAY_DEAD_LETTERS = "stream.replay_dead"
    REPLAY_STREAM = "stream.replay"
    ACK_ALERT = "alert.ack"
    RESOLVE_ALERT = "alert.resolve"
    SILENCE_ALERT = "alert.silence"
    MANAGE_USERS = "users.manage"
    CHANGE_SETTINGS = "settings.change"
    VIEW_AUDIT = "audit.view"


_ENGINEER = frozenset(
    {
        Action.RUN_PIPELINE,
        Action.PAUSE_PIPELINE,
        Action.RESUME_PIPELINE,
        Action.REPLAY_QUARANTINE,
        Action.REPLAY_DEAD_LETTERS,
        Action.REPLAY_STREAM,
        Action.ACK_ALERT,
        Action.RESOLVE_ALERT,
        Action.SILENCE_ALERT,
    }
)
PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.DATA_ANALYST: frozenset(),
    Role.DATA_ENGINEER: _ENGINEER,
    Role.SYSTEM_ADMIN: frozenset(Action),
}


def allowed(role: str, action: Action) -> bool:
    """Unknown roles may do nothing."""
    try:
        return action in PERMISSIONS[Role(role)]
    except ValueError:
        return False


def roles_allowed(action: Action) -> list[str]:
    return [r.value for r, actions in PERMISSIONS.items() if action in actions]
