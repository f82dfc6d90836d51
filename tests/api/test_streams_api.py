"""GET /api/streams and GET /api/streams/{name} over a real `headwater api` process (uvicorn), on a
store filled by a real processor run (tests/streams/metrics_run.py): each figure against SQL over the
store and the dead-letter stream's length; a reader token suffices, no token is 401, an unknown
processor 404.

Real services: Redis (the test's own stream key), the embedded SQLite store and warehouse, uvicorn."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
import redis

from headwater.access.tokens import create_token
from tests.api.server import serving
from tests.streams.metrics_run import EVENTS, StreamRun, stream_run_fixture  # noqa: F401
from tests.streams.redis_keys import rds_fixture, stream_key_fixture  # noqa: F401

pytestmark = pytest.mark.redis


def _utc(value: object) -> datetime:
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def test_stream_endpoints_agree_with_the_store(stream_run: StreamRun, rds: redis.Redis) -> None:
    run = stream_run
    token = create_token(run.store, "reader", "data_analyst", datetime.now(UTC), created_by="test").secret
    auth = {"Authorization": f"Bearer {token}"}
    env = {k: v for k, v in run.env.items() if not k.startswith("PREFECT_API_URL")}
    with serving(env) as url:
        assert httpx.get(f"{url}/api/streams", timeout=30).status_code == 401
        body = httpx.get(f"{url}/api/streams", headers=auth, timeout=30).json()
        proc = run.sql("SELECT * FROM stream_processors")[0]
        newest = run.sql("SELECT * FROM stream_metrics ORDER BY minute DESC LIMIT 1")[0]
        [p] = body["processors"]
        assert (p["name"], p["health"], p["status"], p["lag"], p["last_id"]) == (
            run.name,
            "stopped",
            "stopped",
            proc.lag,
            proc.last_id,
        )
        assert (p["events_read"], p["events_loaded"], p["events_dead"]) == (
            EVENTS,
            proc.events_loaded,
            proc.events_dead,
        )
        assert p["throughput"] == newest.throughput and p["pending"] == newest.pending == 0
        assert _utc(p["last_batch_at"]) == _utc(proc.last_batch_at)

        one = httpx.get(f"{url}/api/streams/{run.name}", params={"minutes": 60}, headers=auth, timeout=30)
        detail = one.json()
        assert detail["processor"] == p and detail["minutes"] == 60
        assert detail["dead_letters"] == rds.xlen(f"{run.stream}:dead") == run.bad
        minutes = run.sql("SELECT * FROM stream_metrics ORDER BY minute")
        assert [h["events_read"] for h in detail["history"]] == [m.events_read for m in minutes]
        assert sum(h["events_read"] for h in detail["history"]) == EVENTS
        assert [h["events_dead"] for h in detail["history"]] == [m.events_dead for m in minutes]
        assert [h["latency_p99_ms"] for h in detail["history"]] == [m.latency_p99_ms for m in minutes]
        assert [_utc(h["minute"]) for h in detail["history"]] == [_utc(m.minute) for m in minutes]

        missing = httpx.get(f"{url}/api/streams/nope", headers=auth, timeout=30)
        assert missing.status_code == 404 and missing.json()["error"]["fix"]
