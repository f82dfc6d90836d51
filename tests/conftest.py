"""Shared fixtures. Every test gets its own HEADWATER_HOME (SQLite store and warehouse) and, when it
asks for one, its own PostgreSQL database; the Prefect test harness starts once per session, only
for tests that ask for it."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from headwater.settings import Settings
from headwater.store import Store

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no telemetry from test servers
os.environ.setdefault("HASH_SALT", "headwater-tests-salt-4f1c2a9b7e")  # the claims example's secret
REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "pipelines"
PG_ADMIN_URL = os.environ.get(
    "HEADWATER_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
def hw_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A fresh HEADWATER_HOME with the embedded SQLite store and warehouse."""
    home = tmp_path / "hw_home"
    monkeypatch.setenv("HEADWATER_HOME", str(home))
    monkeypatch.delenv("HEADWATER_DATABASE_URL", raising=False)
    monkeypatch.delenv("HEADWATER_WAREHOUSE_URL", raising=False)
    monkeypatch.setenv("HEADWATER_PIPELINES", str(EXAMPLES))
    return Settings.from_env()


def _admin() -> sa.Engine:
    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL database, dropped afterwards."""
    name = f"hw_test_{uuid.uuid4().hex[:10]}"
    admin = _admin()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """A real Prefect API (the test harness: a temporary server on a temporary database)."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield str(PREFECT_API_URL.value())


def run_flow(pipeline: str, pipelines_dir: Path | str, **params: Any) -> dict[str, Any]:
    """Run a pipeline's flow in-process; a failed run returns its summary instead of raising."""
    from flows.pipeline import PipelineRunFailed, flow_for

    try:
        return flow_for(pipeline)(pipeline=pipeline, pipelines_dir=str(pipelines_dir), **params)
    except PipelineRunFailed as exc:
        return exc.outcome.as_dict()


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    """A folder for a test's own pipeline specs (with a copy of the example data)."""
    folder = tmp_path / "pipelines"
    shutil.copytree(EXAMPLES / "data", folder / "data")
    return folder


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """A fresh, migrated store: SQLite, and the real PostgreSQL (its own throwaway database)."""
    url = f"sqlite:///{tmp_path}/s.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    store = Store(url).migrate()
    yield store.engine
    store.dispose()


# the golden store (the examples really run once per backend) for the console's and the API's tests
pytest_plugins = ["tests.golden"]
