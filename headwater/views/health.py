"""Health of what Headwater depends on: the metadata store, the warehouse, the Prefect API and
Redis. Each check has a short timeout and says what it reached, how fast, and what is wrong."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import sqlalchemy as sa

from headwater.connections import display_url
from headwater.redact import redact

TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class HealthCheck:
    component: str
    status: str
    """ok | down | not_configured"""
    target: str
    latency_ms: float | None
    detail: str


def _timed(component: str, target: str, probe: Callable[[], str]) -> HealthCheck:
    start = time.perf_counter()
    try:
        detail = probe()
    except Exception as exc:  # a health check reports every failure, it never raises
        message = redact(f"{type(exc).__name__}: {exc}".splitlines()[0])[:300]
        return HealthCheck(component, "down", target, None, message)
    return HealthCheck(component, "ok", target, round((time.perf_counter() - start) * 1000, 1), detail)


def check_database(component: str, url: str) -> HealthCheck:
    """Connect and run a query on a fresh connection (not a pooled one that may hide an outage)."""
    parsed = sa.make_url(url)
    args = {"connect_timeout": int(TIMEOUT_SECONDS)} if parsed.get_backend_name() == "postgresql" else {}

    def probe() -> str:
        engine = sa.create_engine(parsed, poolclass=sa.NullPool, connect_args=args)
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
                tables = len(sa.inspect(conn).get_table_names())
                version = conn.dialect.server_version_info
        finally:
            engine.dispose()
        name = parsed.get_backend_name()
        where = f"{name} {'.'.join(map(str, version))}" if version else name
        return f"{where}, {tables} tables"

    return _timed(component, display_url(url), probe)


def check_prefect(api_url: str | None) -> HealthCheck:
    if not api_url:
        return HealthCheck(
            "Prefect API",
            "not_configured",
            "",
            None,
            "PREFECT_API_URL is not set: each run starts a temporary API; schedules come from the specs",
        )

    def probe() -> str:
        response = httpx.get(f"{api_url.rstrip('/')}/health", timeout=TIMEOUT_SECONDS)
        response.raise_for_status()
        version = httpx.get(f"{api_url.rstrip('/')}/admin/version", timeout=TIMEOUT_SECONDS)
        return f"Prefect {version.json()}" if version.status_code == 200 else "healthy"

    return _timed("Prefect API", api_url, probe)


def check_redis(url: str | None) -> HealthCheck:
    if not url:
        return HealthCheck(
            "Redis", "not_configured", "", None, "HEADWATER_REDIS_URL is not set: stream events are off"
        )

    def probe() -> str:
        import redis

        client = redis.Redis.from_url(
            url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS
        )
        try:
            client.ping()
            info = client.info("server")
            keys = client.dbsize()
        finally:
            client.close()
        return f"Redis {info.get('redis_version', '?')}, {keys} keys"

    return _timed("Redis", display_url(url), probe)


def check_all(
    database_url: str, warehouse_url: str, prefect_api_url: str | None, redis_url: str | None
) -> list[HealthCheck]:
    return [
        check_database("Metadata store", database_url),
        check_database("Warehouse", warehouse_url),
        check_prefect(prefect_api_url),
        check_redis(redis_url),
    ]


REQUIRED = ("Metadata store", "Warehouse")
"""Without these nothing runs; the others count when they are configured."""


def readiness(checks: list[HealthCheck]) -> tuple[bool, list[HealthCheck]]:
    """Ready when every required component is ok and every configured one is too; and the failing ones."""
    failing = [c for c in checks if c.status == "down" or (c.component in REQUIRED and c.status != "ok")]
    return not failing, failing


def as_json(check: HealthCheck) -> dict[str, object]:
    return {
        "component": check.component,
        "status": check.status,
        "target": check.target,
        "latency_ms": check.latency_ms,
        "detail": check.detail,
    }
