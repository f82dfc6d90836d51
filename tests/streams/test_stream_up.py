"""`headwater up` keeps a streaming spec's processor running as one long-lived flow run of its
deployment, with a real Prefect server and worker, Redis and PostgreSQL: the one run processes what
is produced, in batches, as it comes; SIGKILLed, its run ends Crashed and `up` starts a new one that
carries on with nothing lost and nothing loaded twice; cancelled through Prefect's API, it finishes
its batch, acknowledges, ends Cancelled, and is not restarted."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa

from headwater.settings import Settings
from headwater.store import Store
from headwater.store.tables import stream_metrics, stream_processors
from headwater.streams.records import FLUSH_SECONDS
from headwater.streams.vitals import produce, vitals_events
from tests.streams.redis_keys import REDIS_URL, rds_fixture, stream_key_fixture  # noqa: F401
from tests.streams.test_processor import dead_letters, expected, vitals_spec, warehouse_figures

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.postgres]
HEADWATER = [sys.executable, "-m", "headwater.cli"]


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(what: str, check: Callable[[], Any], timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _loaded(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("vitals"):
            return 0
        return int(conn.execute(sa.text("SELECT count(*) FROM vitals")).scalar_one())


def _processor(settings: Settings) -> dict[str, Any]:
    store = Store(settings.database_url)
    try:
        with store.engine.connect() as conn:
            row = conn.execute(sa.select(stream_processors)).one()
        return dict(row._mapping)
    finally:
        store.dispose()


def _batches(settings: Settings) -> int:
    store = Store(settings.database_url)
    try:
        with store.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(stream_metrics.c.batches), 0))
                ).scalar_one()
            )
    finally:
        store.dispose()


class Prefect:
    """The flow runs of the stream's deployment, through Prefect's REST API."""

    def __init__(self, api: str) -> None:
        self.client = httpx.Client(base_url=api, timeout=60)
        self.deployment = self.client.get("/deployments/name/vitals_stream/vitals_stream").json()

    def runs(self) -> list[dict[str, Any]]:
        """Oldest first."""
        found = self.client.post(
            "/flow_runs/filter",
            json={"flow_runs": {"deployment_id": {"any_": [self.deployment["id"]]}}, "limit": 50},
        ).json()
        return sorted(found, key=lambda r: r["created"])

    def states(self) -> list[str]:
        return [r["state_type"] for r in self.runs()]


def test_up_keeps_a_stream_processor_running_as_one_flow_run(
    tmp_path: Path, pg_url: str, rds: redis.Redis, stream_key: str
) -> None:
    home, folder = tmp_path / "home", tmp_path / "pipelines"
    folder.mkdir()
    vitals_spec(folder, stream_key, batch_size=500)
    # 3,000 events wait in the stream before the processor starts: it reads them 500 a batch
    produce(rds, stream_key, vitals_events(3000, seed=1))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_URL", "HEADWATER_"))}
    env.update(
        HEADWATER_HOME=str(home),
        HEADWATER_WAREHOUSE_URL=pg_url,
        HEADWATER_REDIS_URL=REDIS_URL,
        PREFECT_WORKER_QUERY_SECONDS="2",
    )
    pipelines = ["--pipelines", str(folder)]
    up = subprocess.run(
        [*HEADWATER, "up", "--workers", "1", "--no-console", "--no-api", "--port", str(_port()), *pipelines],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    assert "streams      vitals_stream kept running\n" in up.stdout
    settings = Settings.from_env({"HEADWATER_HOME": str(home)})
    engine = sa.create_engine(pg_url)
    try:
        prefect = Prefect(json.loads((home / "run" / "up.json").read_text())["api_url"])
        assert prefect.deployment["tags"] == ["headwater", "headwater:stream"]
        assert prefect.deployment["entrypoint"] == "flows.stream.vitals_stream"
        assert prefect.deployment["schedules"] == []

        # ---- one flow run, started by up, processes the backlog (6 batches of 500) and what comes
        # later: one event, past the metrics' flush interval, is its 7th batch
        good, _ = expected(rds, stream_key)
        _wait("the backlog loaded", lambda: _loaded(engine) == len(good))
        assert _processor(settings)["events_read"] == 3000
        time.sleep(FLUSH_SECONDS + 0.5)
        produce(rds, stream_key, vitals_events(1, seed=2))
        _wait("the 7th batch recorded", lambda: _batches(settings) == 7)
        first = _processor(settings)
        assert (first["status"], first["events_read"]) == ("running", 3001)
        (run,) = prefect.runs()
        assert run["state_type"] == "RUNNING" and "headwater:kept" in run["tags"]
        status = subprocess.run([*HEADWATER, "status"], env=env, capture_output=True, text=True, timeout=60)
        assert "streams      vitals_stream kept running\n" in status.stdout, status.stdout

        # ---- SIGKILL its process while events arrive: a new run carries on, exactly once
        producer = threading.Thread(
            target=produce, args=(rds, stream_key, vitals_events(20000, seed=3)), kwargs={"rate": 4000}
        )
        producer.start()
        before = _loaded(engine)
        _wait("loading the third lot", lambda: _loaded(engine) > before + 2000, timeout=60)
        os.kill(int(run["infrastructure_pid"]), signal.SIGKILL)
        producer.join()
        _wait("a second flow run", lambda: prefect.states() == ["CRASHED", "RUNNING"], timeout=180)
        good, bad = expected(rds, stream_key)
        assert len(good) + len(bad) == 23001
        _wait("everything loaded", lambda: _loaded(engine) == len(good), timeout=180)
        assert warehouse_figures(engine) == (
            len(good),
            len(good),
            sum(v["heart_rate"] for v in good.values()),
            round(sum(v["temperature"] for v in good.values()), 1),
        )
        dead = dead_letters(rds, stream_key)  # asserts no source id twice
        assert {k: sorted(json.loads(f["rules"])) for k, f in dead.items()} == bad
        _wait("nothing pending", lambda: rds.xpending(stream_key, "vitals_stream")["pending"] == 0)

        # ---- cancelled through Prefect's API: it stops cleanly and is not restarted
        second = prefect.runs()[1]
        cancel = prefect.client.post(
            f"/flow_runs/{second['id']}/set_state", json={"state": {"type": "CANCELLING"}}
        )
        assert cancel.status_code in (200, 201) and cancel.json()["status"] == "ACCEPT", cancel.text
        _wait("the run cancelled", lambda: prefect.states() == ["CRASHED", "CANCELLED"], timeout=90)
        stopped = _processor(settings)
        assert (stopped["status"], stopped["error"]) == ("stopped", None)
        assert prefect.runs()[1]["state"]["message"].startswith("vitals_stream: cancelled after ")
        produce(rds, stream_key, vitals_events(100, seed=4))
        time.sleep(12)  # two looks of the keeper (every 5 s), past the 5 s restart back-off
        assert prefect.states() == ["CRASHED", "CANCELLED"]
        assert _loaded(engine) == len(good)
        assert rds.xpending(stream_key, "vitals_stream")["pending"] == 0
        log = (home / "logs" / "up.log").read_text()
        assert "vitals_stream: no flow run yet: started flow run" in log
        assert "ended Crashed after" in log
        assert "was cancelled: not restarted" in log
    finally:
        engine.dispose()
        down = subprocess.run([*HEADWATER, "down"], env=env, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
