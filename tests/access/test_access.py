"""Users, sessions, roles and the audit log, on SQLite and the real PostgreSQL, with a clock the
test drives: lockout after wrong passwords, idle and absolute session timeouts, a role change or a
disabled account taking effect on the next request, and every refused action audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from headwater.access import (
    AccessDenied,
    Action,
    Actions,
    LoginFailed,
    SessionExpired,
    login,
    logout,
    principal,
)
from headwater.access.audit import read
from headwater.access.config import read_settings, write_setting
from headwater.access.passwords import hash_password, verify_password
from headwater.access.roles import PERMISSIONS, Role
from headwater.access.users import add_user, set_active, set_password, set_role
from headwater.errors import PermanentError
from headwater.store.tables import console_sessions

T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
PW = "correct horse battery"


@pytest.fixture
def engine(store_engine: sa.Engine) -> sa.Engine:
    """A fresh store: SQLite, and the real PostgreSQL (tests/conftest.py)."""
    return store_engine


def test_password_hashes_are_salted_and_verify() -> None:
    a, b = hash_password(PW), hash_password(PW)
    assert a != b and a.startswith("scrypt$16384$8$1$")
    assert verify_password(PW, a) and verify_password(PW, b)
    assert not verify_password(PW + "!", a)
    assert not verify_password(PW, "md5$whatever")


def test_weak_passwords_and_bad_names_are_refused(engine: sa.Engine) -> None:
    with pytest.raises(PermanentError, match="at least 10 characters"):
        add_user(engine, "ann", "data_analyst", "short", T0)
    with pytest.raises(PermanentError, match="may not contain the user name"):
        add_user(engine, "annabelle", "data_analyst", "xxannabelle1", T0)
    with pytest.raises(PermanentError, match="not a valid user name"):
        add_user(engine, "Ann Smith", "data_analyst", PW, T0)
    with pytest.raises(PermanentError, match="'root' is not a role"):
        add_user(engine, "ann", "root", PW, T0)
    add_user(engine, "ann", "data_analyst", PW, T0)
    with pytest.raises(PermanentError, match="exists already"):
        add_user(engine, "ann", "data_engineer", PW, T0)


def test_lockout_after_wrong_passwords(engine: sa.Engine) -> None:
    add_user(engine, "ann", "data_analyst", PW, T0)
    write_setting(engine, "lockout_attempts", 3, "test", T0)
    for i in range(3):
        with pytest.raises(LoginFailed, match="wrong user name or password"):
            login(engine, "ann", f"wrong-{i}", T0 + timedelta(seconds=i))
    with pytest.raises(LoginFailed, match="locked until 09:15 UTC"):
        login(engine, "ann", PW, T0 + timedelta(minutes=1))  # the right password does not open a lock
    token = login(engine, "ann", PW, T0 + timedelta(minutes=16))
    assert principal(engine, token, T0 + timedelta(minutes=16)).username == "ann"
    # an unknown user and a wrong password look the same to the caller
    with pytest.raises(LoginFailed, match="wrong user name or password"):
        login(engine, "nobody", PW, T0 + timedelta(minutes=17))
    outcomes = [(e["username"], e["outcome"]) for e in read(engine, action="login")]
    assert outcomes == [("nobody", "denied"), ("ann", "ok")] + [("ann", "denied")] * 4


def test_sessions_end_when_idle_too_old_or_changed(engine: sa.Engine) -> None:
    add_user(engine, "ann", "data_engineer", PW, T0)
    settings = read_settings(engine)
    assert settings["session_idle_minutes"] == 30 and settings["session_max_hours"] == 12
    token = login(engine, "ann", PW, T0)
    # each use restarts the idle clock: 25 minutes apart, five times, is never idle for 30
    for i in range(1, 6):
        assert principal(engine, token, T0 + timedelta(minutes=25 * i)).role == "data_engineer"
    with pytest.raises(SessionExpired, match="30 minutes without activity"):
        principal(engine, token, T0 + timedelta(minutes=125 + 31))
    with pytest.raises(SessionExpired, match="idle too long"):
        principal(engine, token, T0 + timedelta(minutes=157))

    token = login(engine, "ann", PW, T0)
    with pytest.raises(SessionExpired, match="too old"):
        for minutes in range(20, 12 * 60 + 21, 20):
            principal(engine, token, T0 + timedelta(minutes=minutes))

    token = login(engine, "ann", PW, T0)
    set_role(engine, "ann", "data_analyst", T0)
    assert principal(engine, token, T0).role == "data_analyst"  # the new role applies at once
    set_active(engine, "ann", False, T0)
    with pytest.raises(SessionExpired, match="the account is disabled"):
        principal(engine, token, T0)
    with pytest.raises(LoginFailed):
        login(engine, "ann", PW, T0)

    set_active(engine, "ann", True, T0)
    token = login(engine, "ann", PW, T0)
    set_password(engine, "ann", "another long secret", T0)
    with pytest.raises(SessionExpired, match="the password was changed"):
        principal(engine, token, T0)
    token = login(engine, "ann", "another long secret", T0)
    logout(engine, token, T0)
    with pytest.raises(SessionExpired):
        principal(engine, token, T0)
    with engine.connect() as conn:
        reasons = sorted(r for (r,) in conn.execute(sa.select(console_sessions.c.end_reason)))
    assert reasons == ["disabled", "expired", "idle", "logout", "password_changed"]


def test_tokens_are_stored_only_as_hashes(engine: sa.Engine) -> None:
    add_user(engine, "ann", "data_analyst", PW, T0)
    token = login(engine, "ann", PW, T0)
    with engine.connect() as conn:
        stored = [r for (r,) in conn.execute(sa.select(console_sessions.c.id))]
        dump = " ".join(
            str(tuple(r))
            for t in ("console_users", "console_sessions", "audit_log")
            for r in conn.execute(sa.text(f"SELECT * FROM {t}"))
        )
    assert stored and token not in stored and token not in dump and PW not in dump


def test_permissions_matrix() -> None:
    assert PERMISSIONS[Role.DATA_ANALYST] == frozenset()
    assert Action.RUN_PIPELINE in PERMISSIONS[Role.DATA_ENGINEER]
    assert Action.MANAGE_USERS not in PERMISSIONS[Role.DATA_ENGINEER]
    assert PERMISSIONS[Role.SYSTEM_ADMIN] == frozenset(Action)


def test_an_analyst_is_refused_every_action_and_each_refusal_is_audited(engine: sa.Engine) -> None:
    add_user(engine, "ann", "data_analyst", PW, T0)
    token = login(engine, "ann", PW, T0)
    actions = Actions(engine, orchestrator=None, alerts=None, clock=lambda: T0)
    attempts = [
        (Action.RUN_PIPELINE, lambda: actions.run_pipeline(token, "flights_daily", {"x": 1})),
        (Action.PAUSE_PIPELINE, lambda: actions.set_paused(token, "flights_daily", True)),
        (Action.RESUME_PIPELINE, lambda: actions.set_paused(token, "flights_daily", False)),
        (Action.REPLAY_QUARANTINE, lambda: actions.replay_quarantine(token, "flights_clean")),
        (Action.ACK_ALERT, lambda: actions.ack_alert(token, 1)),
        (Action.RESOLVE_ALERT, lambda: actions.resolve_alert(token, 1)),
        (Action.SILENCE_ALERT, lambda: actions.silence(token, {"pipeline": "*"}, 1, "x")),
        (Action.MANAGE_USERS, lambda: actions.add_user(token, "eve", "system_admin", "a long password")),
        (Action.MANAGE_USERS, lambda: actions.set_role(token, "ann", "system_admin")),
        (Action.CHANGE_SETTINGS, lambda: actions.change_setting(token, "session_idle_minutes", 600)),
    ]
    for action, attempt in attempts:
        with pytest.raises(AccessDenied, match=f"ann \\(data_analyst\\) may not {action.value}"):
            attempt()
    denied = read(engine, outcome="denied")
    assert [(e["username"], e["role"], e["action"]) for e in reversed(denied)] == [
        ("ann", "data_analyst", a.value) for a, _ in attempts
    ]
    assert denied[-1]["parameters"] == {"x": 1} and denied[-1]["target"] == "flights_daily"
    # nothing changed: still an analyst, still the default timeout, no new user
    assert principal(engine, token, T0).role == "data_analyst"
    assert read_settings(engine)["session_idle_minutes"] == 30
    with pytest.raises(LoginFailed):
        login(engine, "eve", "a long password", T0)
    # no session at all is refused too
    with pytest.raises(AccessDenied, match="not signed in"):
        actions.run_pipeline("forged-token", "flights_daily")
    assert read(engine, limit=1)[0]["username"] is None


def test_admin_actions_are_audited_and_keep_an_admin(engine: sa.Engine) -> None:
    add_user(engine, "root1", "system_admin", PW, T0)
    token = login(engine, "root1", PW, T0)
    actions = Actions(engine, clock=lambda: T0)
    actions.add_user(token, "bob", "data_engineer", "a long pass phrase")
    actions.set_role(token, "bob", "data_analyst")
    assert actions.change_setting(token, "session_idle_minutes", 45) == 45
    with pytest.raises(PermanentError, match="out of range"):
        actions.change_setting(token, "session_idle_minutes", 0)
    with pytest.raises(PermanentError, match="last active system admin"):
        actions.set_role(token, "root1", "data_engineer")
    with pytest.raises(PermanentError, match="last active system admin"):
        actions.set_active(token, "root1", False)
    log = [(e["action"], e["target"], e["outcome"]) for e in reversed(read(engine)) if e["action"] != "login"]
    assert log == [
        ("users.manage", "user bob", "ok"),
        ("users.manage", "user bob", "ok"),
        ("settings.change", "setting session_idle_minutes", "ok"),
        ("settings.change", "setting session_idle_minutes", "failed"),
        ("users.manage", "user root1", "failed"),
        ("users.manage", "user root1", "failed"),
    ]
    assert read_settings(engine)["session_idle_minutes"] == 45


def test_requests_write_the_idle_clock_at_most_once_a_minute(engine: sa.Engine) -> None:
    add_user(engine, "ann", "data_analyst", PW, T0)
    token = login(engine, "ann", PW, T0)

    def last_seen() -> datetime:
        with engine.connect() as conn:
            value = conn.execute(sa.select(console_sessions.c.last_seen_at)).scalar_one()
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    principal(engine, token, T0 + timedelta(seconds=30))
    assert last_seen() == T0
    principal(engine, token, T0 + timedelta(seconds=61))
    assert last_seen() == T0 + timedelta(seconds=61)
    principal(engine, token, T0 + timedelta(seconds=90), touch=False)
    assert last_seen() == T0 + timedelta(seconds=61)
