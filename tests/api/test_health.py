"""The API's /health and /ready over HTTP (a real uvicorn), and `headwater health`: with the metadata
store on a real PostgreSQL database that stops taking connections, /ready answers 503 naming the
store and why, and 200 again once it is back; /health answers 200 throughout."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from headwater.cli import main
from tests.api.server import serving
from tests.conftest import PG_ADMIN_URL

pytestmark = pytest.mark.postgres


@pytest.fixture
def api(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEADWATER_", "PREFECT_API_URL"))}
    env.update(HEADWATER_HOME=str(tmp_path / "home"), HEADWATER_DATABASE_URL=pg_url)
    for key in ("HEADWATER_DATABASE_URL", "HEADWATER_HOME"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.delenv("HEADWATER_REDIS_URL", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with serving(env) as url:
        yield url


def _allow(database: str, allowed: bool) -> None:
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            conn.exec_driver_sql(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"
            )
    admin.dispose()


def test_ready_names_the_store_while_it_is_unreachable(
    api: str, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    database = sa.make_url(pg_url).database
    assert database
    ready = httpx.get(f"{api}/ready", timeout=10)
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready" and body["failing"] == []
    assert {c["component"]: c["status"] for c in body["components"]} == {
        "Metadata store": "ok",
        "Warehouse": "ok",
        "Prefect API": "not_configured",
        "Workers": "not_configured",
        "Redis": "not_configured",
        "Circuit breakers": "ok",
    }
    assert main(["health"]) == 0

    _allow(database, False)
    try:
        down = httpx.get(f"{api}/ready", timeout=10)
        assert down.status_code == 503
        (failing,) = down.json()["failing"]
        assert failing["component"] == "Metadata store"
        assert f'database "{database}" is not currently accepting connections' in failing["why"]
        assert httpx.get(f"{api}/health", timeout=10).status_code == 200  # the process itself is fine
        capsys.readouterr()
        assert main(["health"]) == 1
        assert "NOT READY: Metadata store" in capsys.readouterr().out
    finally:
        _allow(database, True)
    assert httpx.get(f"{api}/ready", timeout=10).status_code == 200
    assert httpx.get(f"{api}/openapi.json", timeout=10).json()["info"]["title"] == "Headwater API"


def test_an_open_breaker_is_reported_degraded_but_ready(api: str, pg_url: str) -> None:
    """A source Headwater stopped calling is named in /ready (and `headwater health`), with until
    when; the API stays ready: Headwater serves, and the runs on that source fail fast or load their
    last good data."""
    from datetime import UTC, datetime

    from headwater.breakers import BreakerPolicy, Breakers

    engine = sa.create_engine(pg_url)
    breakers = Breakers(engine)
    now = datetime.now(UTC)
    policy = BreakerPolicy(failures=2, window=600, open_for=3600)
    for _ in range(2):
        breakers.failed(breakers.acquire("rest:http://vendor.example:443", policy, now), "HTTP 503", now)
    engine.dispose()
    ready = httpx.get(f"{api}/ready", timeout=10)
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready" and body["failing"] == []
    until = datetime.fromtimestamp(now.timestamp() + 3600, UTC)
    assert body["degraded"] == [
        {
            "component": "Circuit breakers",
            "why": f"rest:http://vendor.example:443 open until {until:%Y-%m-%d %H:%M} UTC",
        }
    ]
