"""A real processor run for the metrics, console and API tests: `headwater stream produce` writes
vitals events to the test's own stream, `headwater stream run --idle-exit` processes them into the
embedded SQLite store and warehouse of a fresh HEADWATER_HOME; the figures it recorded are then read
back by the test and compared with SQL and with what was produced."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from headwater.settings import Settings
from headwater.store import Store
from tests.streams.redis_keys import REDIS_URL
from tests.streams.test_processor import expected, vitals_spec

EVENTS = 5000
BATCH = 500
BAD_SHARE = 0.08
SEED = 7


@dataclass
class StreamRun:
    settings: Settings
    env: dict[str, str]
    store: sa.Engine
    warehouse: sa.Engine
    stream: str
    name: str
    bad: int
    """events breaking a rule, found independently of the processor (tests.streams.test_processor.expected)"""

    def sql(self, text: str, **params: object) -> list[sa.Row[tuple[object, ...]]]:
        with self.store.connect() as conn:
            return list(conn.execute(sa.text(text), params).all())


def _cli(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "headwater.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(name="stream_run")
def stream_run_fixture(
    tmp_path: Path, hw_env: Settings, rds: redis.Redis, stream_key: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[StreamRun]:
    monkeypatch.setenv("HEADWATER_REDIS_URL", REDIS_URL)
    env = {**os.environ, "HEADWATER_REDIS_URL": REDIS_URL}
    spec = vitals_spec(tmp_path, stream_key, batch_size=BATCH)
    _cli(
        env,
        "stream",
        "produce",
        "--stream",
        stream_key,
        "--count",
        str(EVENTS),
        "--bad-share",
        str(BAD_SHARE),
        "--seed",
        str(SEED),
    )
    _good, bad = expected(rds, stream_key)
    line = _cli(
        env,
        "stream",
        "run",
        "vitals_stream",
        "--pipelines",
        str(spec.parent),
        "--idle-exit",
        "1",
        "--consumer",
        "c1",
    )
    assert f"read {EVENTS} event(s)" in line, line
    store = Store(hw_env.database_url).migrate()
    warehouse = sa.create_engine(hw_env.warehouse_url)
    yield StreamRun(hw_env, env, store.engine, warehouse, stream_key, "vitals_stream", len(bad))
    warehouse.dispose()
    store.dispose()
