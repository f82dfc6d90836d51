"""A store filled by really running the example pipelines (once per session, through the Prefect
test harness), with alerting on to a local webhook and one failed run; each test gets its own copy
of that store and warehouse and its own users, and talks to the console (AppTest or a browser) or the
HTTP API. The fixtures are registered for the whole suite in tests/conftest.py, so the console's and
the API's tests share one filling per backend."""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from headwater.access import login
from headwater.access.users import add_user
from headwater.settings import Settings
from headwater.store import Store
from tests.alerting.conftest import Webhook, serve_webhook
from tests.conftest import EXAMPLES, PG_ADMIN_URL, REPO, run_flow

APP = str(Path(__file__).resolve().parents[1] / "console" / "streamlit_app.py")
EXAMPLE_RUNS = ["flights_daily", "carrier_monthly", "flights_clean", "vendor_prices", "claims_deidentified"]
PASSWORD = "console-test-Passw0rd"
REDIS_URL = "redis://127.0.0.1:6379/0"
BROKEN_FEED = 'vendor_id,vendor_name,category,city,price,currency,updated_at\nV001,"Rose & Co,florist\n'


def write_alerts(folder: Path, receiver: Webhook) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "channels.yaml").write_text(
        f"channels:\n  ops-webhook: {{url: '{receiver.url()}'}}\n"
        "delivery: {attempts: 1, backoff_seconds: 0.1}\n"
    )
    (folder / "rules.yaml").write_text(
        "severity_channels: {critical: [ops-webhook], warning: [ops-webhook]}\n"
        "rules:\n"
        "  - {name: run-failed, severity: critical, when: {run_failed: true}}\n"
        "  - {name: quarantine-high, severity: warning, when: {quarantine_rate_over: 0.05}}\n"
    )


@dataclass(frozen=True)
class Golden:
    home: Path
    pipelines: Path
    alerts: Path
    receiver: Webhook
    database_url: str | None
    """None: the embedded SQLite store in `home`; else a PostgreSQL database used as a template."""


def _checkpoint(folder: Path) -> None:
    """Fold SQLite's WAL into the database files so a plain copy holds everything."""
    for db in folder.glob("*.db"):
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _pg(name: str) -> str:
    return sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _admin(sql: str) -> None:
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(sql)
    engine.dispose()


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def golden(
    request: pytest.FixtureRequest, prefect_api: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Golden]:
    """The example pipelines run for real into a fresh store (embedded SQLite, or a PostgreSQL
    database); then vendor_prices runs once more on a malformed feed and fails (alerting to the
    local receiver). Tests get copies of it (`console`)."""
    root = tmp_path_factory.mktemp(f"console_golden_{request.param}")
    pipelines = root / "pipelines"
    shutil.copytree(EXAMPLES, pipelines)
    shutil.copytree(REPO / "quality_suites", root / "quality_suites")  # specs name ../quality_suites/
    (pipelines / "data" / "broken_feed.csv").write_text(BROKEN_FEED)
    database = f"hw_golden_{uuid.uuid4().hex[:10]}" if request.param == "postgres" else None
    with serve_webhook() as receiver:
        if database:
            _admin(f'CREATE DATABASE "{database}"')
        try:
            golden = Golden(
                root / "home", pipelines, root / "alerts", receiver, _pg(database) if database else None
            )
            write_alerts(golden.alerts, receiver)
            _fill(golden)
            yield golden
        finally:
            if database:
                _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _fill(golden: Golden) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HEADWATER_HOME", str(golden.home))
        if golden.database_url:
            mp.setenv("HEADWATER_DATABASE_URL", golden.database_url)
        else:
            mp.delenv("HEADWATER_DATABASE_URL", raising=False)
        mp.delenv("HEADWATER_WAREHOUSE_URL", raising=False)
        mp.setenv("HEADWATER_PIPELINES", str(golden.pipelines))
        mp.setenv("HEADWATER_ALERTS", str(golden.alerts))
        for name in EXAMPLE_RUNS:
            result = run_flow(name, golden.pipelines, execution_type="manual")
            assert result["status"] in ("completed", "completed_with_warnings"), result
        failed = run_flow(
            "vendor_prices",
            golden.pipelines,
            execution_type="manual",
            params={"feed": "data/broken_feed.csv"},
        )
        assert failed["status"] == "failed", failed
    _checkpoint(golden.home)


@dataclass
class Console:
    """One test's copy of the golden store and warehouse, with users of every role signed in."""

    settings: Settings
    engine: sa.Engine
    tokens: dict[str, str]

    def warehouse(self) -> sa.Engine:
        return sa.create_engine(self.settings.warehouse_url)


@pytest.fixture
def console(golden: Golden, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Console]:
    home = tmp_path / "home"
    shutil.copytree(golden.home, home)
    database = None
    monkeypatch.setenv("HEADWATER_HOME", str(home))
    if golden.database_url:  # a database of its own, copied from the golden one
        database = f"hw_test_{uuid.uuid4().hex[:10]}"
        template = sa.make_url(golden.database_url).database
        _admin(f'CREATE DATABASE "{database}" TEMPLATE "{template}"')
        monkeypatch.setenv("HEADWATER_DATABASE_URL", _pg(database))
    else:
        monkeypatch.delenv("HEADWATER_DATABASE_URL", raising=False)
    monkeypatch.delenv("HEADWATER_WAREHOUSE_URL", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("HEADWATER_PIPELINES", str(golden.pipelines))
    monkeypatch.setenv("HEADWATER_ALERTS", str(golden.alerts))
    monkeypatch.setenv("HEADWATER_REDIS_URL", REDIS_URL)
    settings = Settings.from_env()
    store = Store(settings.database_url).migrate()
    now = datetime.now(UTC)
    tokens = {}
    for role in ("data_analyst", "data_engineer", "system_admin"):
        name = role.split("_")[1]
        add_user(store.engine, name, role, PASSWORD, now)
        tokens[role] = login(store.engine, name, PASSWORD, now)
    yield Console(settings, store.engine, tokens)
    store.dispose()
    if database:
        _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


sqlite_only = pytest.mark.parametrize("golden", ["sqlite"], indirect=True)
"""For tests whose subject is not the store (a browser, Prefect deployments): one backend is enough."""


def app(console: Console, role: str | None = None, timeout: float = 60) -> Any:
    """An AppTest of the console, signed in as `role` (None: not signed in), already run once."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=timeout)
    if role:
        at.session_state["hw_token"] = console.tokens[role]
    return at.run()
