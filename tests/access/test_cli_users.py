"""`headwater users` and the first administrator `headwater console` creates, against a real store:
what each command changes, what it prints, and the audit rows it leaves (source "cli")."""

from __future__ import annotations

import io
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from headwater.access import LoginFailed, login
from headwater.access.commands import ensure_first_admin
from headwater.cli import main
from headwater.settings import Settings
from headwater.store import Store


def _users(settings: Settings, monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["users", *args])


def test_users_commands(
    hw_env: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("USER", "ops-person")
    pw = "a long pass phrase\n"
    assert (
        _users(hw_env, monkeypatch, "add", "ann", "--role", "data_engineer", "--password-stdin", stdin=pw)
        == 0
    )
    assert _users(hw_env, monkeypatch, "add", "bob", "--password-stdin", stdin=pw) == 1  # no --role
    assert (
        _users(
            hw_env, monkeypatch, "add", "bob", "--role", "data_analyst", "--password-stdin", stdin="short\n"
        )
        == 1
    )
    assert (
        _users(hw_env, monkeypatch, "add", "bob", "--role", "data_analyst", "--password-stdin", stdin=pw) == 0
    )
    assert _users(hw_env, monkeypatch, "set-role", "bob", "--role", "system_admin") == 0
    assert _users(hw_env, monkeypatch, "disable", "ann") == 0
    assert (
        _users(hw_env, monkeypatch, "passwd", "bob", "--password-stdin", stdin="another pass phrase\n") == 0
    )
    capsys.readouterr()
    assert _users(hw_env, monkeypatch, "list") == 0
    listing = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in listing[2:]] == [
        ["ann", "data_engineer", "no"],
        ["bob", "system_admin", "yes"],
    ]

    engine = Store(hw_env.database_url).engine
    now = datetime.now(UTC)
    with pytest.raises(LoginFailed):
        login(engine, "ann", "a long pass phrase", now)  # disabled
    with pytest.raises(LoginFailed):
        login(engine, "bob", "a long pass phrase", now)  # the old password
    assert login(engine, "bob", "another pass phrase", now)
    with engine.connect() as conn:
        audit = conn.execute(
            sa.text(
                "SELECT username, target, parameters, outcome, source FROM audit_log "
                "WHERE action = 'users.manage'"
            )
        ).all()
    assert [(u, t, o, s) for u, t, _, o, s in audit] == [
        ("ops-person", "user ann", "ok", "cli"),
        ("ops-person", "user bob", "failed", "cli"),
        ("ops-person", "user bob", "ok", "cli"),
        ("ops-person", "user bob", "ok", "cli"),
        ("ops-person", "user ann", "ok", "cli"),
        ("ops-person", "user bob", "ok", "cli"),
    ]
    assert all("pass phrase" not in str(p) and "short" not in str(p) for _, _, p, _, _ in audit)


def test_first_admin_is_created_once_with_a_private_password_file(hw_env: Settings) -> None:
    store = Store(hw_env.database_url).migrate()
    path = ensure_first_admin(store.engine, hw_env.home)
    assert path == hw_env.home / "secrets" / "console_admin_password"
    assert stat.S_IMODE(Path(path).stat().st_mode) == 0o600
    password = Path(path).read_text().strip()
    assert len(password) >= 16
    assert login(store.engine, "admin", password, datetime.now(UTC))
    assert ensure_first_admin(store.engine, hw_env.home) is None
    store.dispose()
