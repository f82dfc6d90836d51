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


def check_workers(api_url: str | None) -> HealthCheck:
    """Every work pool a Headwater deployment runs in has a worker that Prefect has seen lately
    (status ONLINE: a heartbeat within its timeout). A pool nobody polls runs nothing."""
    if not api_url:
        return HealthCheck(
            "Workers", "not_configured", "", None, "no Prefect API: runs start in this process"
        )
    base = api_url.rstrip("/")

    def probe() -> str:
        with httpx.Client(timeout=TIMEOUT_SECONDS) as client:
            response = client.post(
                f"{base}/deployments/filter",
                json={"deployments": {"tags": {"all_": ["headwater"]}}, "limit": 200},
            )
            response.raise_for_status()
            pools = sorted({d["work_pool_name"] for d in response.json() if d.get("work_pool_name")})
            if not pools:
                return "no Headwater deployments yet (headwater deploy)"
            seen: list[str] = []
            missing: list[str] = []
            for pool in pools:
                workers = client.post(f"{base}/work_pools/{pool}/workers/filter", json={})
                workers.raise_for_status()
                online = [w for w in workers.json() if w.get("status") == "ONLINE"]
                (seen if online else missing).append(f"{pool} ({len(online)})")
        if missing:
            raise RuntimeError(
                f"no worker online in pool {', '.join(missing)}: start one with `headwater up` "
                "or `prefect worker start --pool <pool>`"
            )
        return "online: " + ", ".join(seen)

    return _timed("Workers", base, probe)


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


def check_breakers(database_url: str) -> HealthCheck:
    """Circuit breakers that are open or half-open: a source or an alert channel Headwater has
    stopped calling for a while. Reported ("degraded"), but not a reason to be unready: Headwater
    itself serves, and the runs that read those sources fail fast or load their last good data."""

    def probe() -> str:
        from datetime import UTC, datetime

        from headwater.breakers import open_breakers

        engine = sa.create_engine(database_url, poolclass=sa.NullPool)
        try:
            found = open_breakers(engine, datetime.now(UTC))
        finally:
            engine.dispose()
        if not found:
            return "all closed"
        return "; ".join(
            f"{b.key} {b.state}" + (f" until {b.open_until:%Y-%m-%d %H:%M} UTC" if b.open_until else "")
            for b in found
        )

    check = _timed("Circuit breakers", display_url(database_url), probe)
    if check.status == "down":  # the store's own check names the outage
        return HealthCheck(
            check.component, "unknown", check.target, None, "the metadata store did not answer"
        )
    if check.detail != "all closed":
        return HealthCheck(check.component, "degraded", check.target, check.latency_ms, check.detail)
    return check


def check_all(
    database_url: str, warehouse_url: str, prefect_api_url: str | None, redis_url: str | None
) -> list[HealthCheck]:
    return [
        check_database("Metadata store", database_url),
        check_database("Warehouse", warehouse_url),
        check_prefect(prefect_api_url),
        check_workers(prefect_api_url),
        check_redis(redis_url),
        check_breakers(database_url),
    ]


REQUIRED = ("Metadata store", "Warehouse")
"""Without these nothing runs; the others count when they are configured."""


def readiness(checks: list[HealthCheck]) -> tuple[bool, list[HealthCheck]]:
    """Ready when every required component is ok and every configured one is too; and the failing
    ones. "degraded" (open circuit breakers) is reported, not failing."""
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
