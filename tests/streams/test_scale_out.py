"""Several consumers, recovery and backpressure, against the real Redis and PostgreSQL. The sink is
in mode `append` here (no key to hide a second load), so count(*) = count(DISTINCT _entry_id) = the
good events of an independent filter proves each event was loaded once:

- a batch another consumer committed (crash before XACK) and then claimed is only acknowledged; a
  batch claimed away before its commit is refused by the commit (Superseded) and finished once by
  the claimer;
- two `headwater stream run` processes, one SIGKILLed and never restarted: the other claims its
  pending entries after claim_idle_ms;
- a private Redis with append-only persistence stopped and started again mid-stream: the processor
  retries with backoff (and says so), nothing acknowledged is lost;
- a sink held by a table lock: one batch stays in flight, the processor reads no more, its memory
  does not grow with the backlog, and the stream_processors row reports the lag exactly."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from headwater.settings import Settings
from headwater.spec.loader import load_pipeline
from headwater.store.tables import stream_processors
from headwater.streams.broker import RedisStreamBroker
from headwater.streams.commits import Superseded
from headwater.streams.plan import StreamPlan
from headwater.streams.processor import StreamProcessor
from headwater.streams.vitals import produce, vitals_events
from tests.streams.redis_keys import REDIS_URL, rds_fixture, stream_key_fixture  # noqa: F401
from tests.streams.test_processor import dead_letters, expected, warehouse_figures

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[2]
GROUP = "vitals_stream"


def append_spec(tmp_path: Path, stream: str, batch_size: int, claim_idle_ms: int) -> Path:
    """The vitals example without its windows, loading in mode append, reading `stream`."""
    text = (REPO / "pipelines" / "vitals_stream.yaml").read_text().split("  - name: per_30s")[0]
    text = (
        text.replace("stream: vitals\n", f"stream: {stream}\n")
        .replace("batch_size: 1000", f"batch_size: {batch_size}\n    claim_idle_ms: {claim_idle_ms}")
        .replace("mode: upsert, primary_key: [_entry_id]", "mode: append")
    )
    path = tmp_path / "vitals_stream.yaml"
    path.write_text(text)
    return path


def broker(plan: StreamPlan, consumer: str, claim_idle_ms: int | None = None) -> RedisStreamBroker:
    s = plan.source
    return RedisStreamBroker.connect(
        REDIS_URL,
        stream=s.stream,
        group=s.group,
        consumer=consumer,
        dead_stream=s.dead_letter_stream,
        start=s.start,
        claim_idle_ms=claim_idle_ms or s.claim_idle_ms,
    )


def assert_exact(engine: sa.Engine, rds: redis.Redis, stream: str) -> tuple[int, int]:
    """The warehouse holds each good event once, the dead-letter stream each bad one, nothing pending."""
    good, bad = expected(rds, stream)
    assert warehouse_figures(engine) == (
        len(good),
        len(good),
        sum(v["heart_rate"] for v in good.values()),
        round(sum(v["temperature"] for v in good.values()), 1),
    )
    with engine.connect() as conn:
        assert {r[0] for r in conn.execute(sa.text("SELECT _entry_id FROM vitals"))} == set(good)
    dead = dead_letters(rds, stream)  # asserts no source id twice
    assert {k: sorted(json.loads(f["rules"])) for k, f in dead.items()} == bad
    assert rds.xpending(stream, GROUP)["pending"] == 0
    return len(good), len(bad)


def test_claimed_entries_are_committed_once_whoever_finishes_them(
    tmp_path: Path, pg_url: str, rds: redis.Redis, stream_key: str
) -> None:
    produce(rds, stream_key, vitals_events(3000, bad_share=0.1, seed=21))
    plan = StreamPlan.of(load_pipeline(append_spec(tmp_path, stream_key, batch_size=500, claim_idle_ms=50)))
    engine = sa.create_engine(pg_url)
    a = StreamProcessor(plan, broker(plan, "a", claim_idle_ms=600_000), engine)  # "a" never claims
    b = StreamProcessor(plan, broker(plan, "b"), engine)
    a.start()
    b.start()
    first = a.broker.read(500, 100)
    a._finish(first, a.broker.contiguous)  # committed; "a" dies before its XACK
    second = a.broker.read(500, 100)  # read; "a" stalls before its commit
    time.sleep(0.1)  # longer than claim_idle_ms
    assert b.step() == 500 and b.stats.events_skipped == 500  # claims `first`: committed, only acked
    assert b.step() == 500 and b.stats.events_skipped == 500  # claims `second` and commits it
    with pytest.raises(Superseded) as refused:  # "a" wakes up: its commit is refused, rolled back
        a._finish(second, True)
    assert (refused.value.committed, refused.value.lost) == ({e.id for e in second}, set())

    third = a.broker.read(500, 100)
    time.sleep(0.1)
    claimed = b.broker.read(500, 100)  # "b" claims `third` and has not committed it yet
    assert [e.id for e in claimed] == [e.id for e in third] and claimed[0].deliveries == 2
    with pytest.raises(Superseded) as refused:  # "a" no longer owns them: it must not commit them
        a._finish(third, True)
    assert (refused.value.committed, refused.value.lost) == (set(), {e.id for e in third})
    b._finish(claimed, False)
    b.broker.ack([e.id for e in claimed])
    b.run(lambda: False, idle_exit=0.5)
    assert b.stats.events_read == 500 + 500 + 1500  # first, second, then the 1500 never read (third
    # was read outside step())
    assert assert_exact(engine, rds, stream_key) == (2702, 298)
    engine.dispose()


def test_claimed_entries_delivered_too_often_are_poison(
    tmp_path: Path, pg_url: str, rds: redis.Redis, stream_key: str
) -> None:
    produce(rds, stream_key, vitals_events(10, bad_share=0.0, seed=61))
    plan = StreamPlan.of(load_pipeline(append_spec(tmp_path, stream_key, batch_size=100, claim_idle_ms=1)))
    engine = sa.create_engine(pg_url)
    b = StreamProcessor(plan, broker(plan, "b"), engine)
    b.start()
    ids = [i for i, _ in rds.xreadgroup(GROUP, "ghost", {stream_key: ">"})[0][1]]  # a consumer that dies
    for _ in range(4):  # ...each time it takes them: 5 deliveries
        rds.xclaim(stream_key, GROUP, "ghost", 0, ids)
    time.sleep(0.01)
    b.run(lambda: False, idle_exit=0.3)  # the 6th delivery, by claim: more than max_deliveries (5)
    dead = dead_letters(rds, stream_key)
    assert sorted(dead) == sorted(ids) and {f["reason"] for f in dead.values()} == {"poison"}
    assert {f["deliveries"] for f in dead.values()} == {"6"}
    assert (b.stats.events_read, b.stats.events_loaded, b.stats.events_dead) == (10, 0, 10)
    assert rds.xpending(stream_key, GROUP)["pending"] == 0
    engine.dispose()


def _env(settings: Settings, pg_url: str, redis_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "HEADWATER_HOME": str(settings.home),
        "HEADWATER_WAREHOUSE_URL": pg_url,
        "HEADWATER_REDIS_URL": redis_url,
    }


def _run(spec: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "headwater.cli",
        "stream",
        "run",
        "vitals_stream",
        "--pipelines",
        str(spec.parent),
        *extra,
    ]


def _loaded(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("vitals"):
            return 0
        return int(conn.execute(sa.text("SELECT count(*) FROM vitals")).scalar_one())


def _wait(condition: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_two_consumers_one_killed_the_other_claims_its_pending_entries(
    tmp_path: Path, hw_env: Settings, pg_url: str, rds: redis.Redis, stream_key: str
) -> None:
    produce(rds, stream_key, vitals_events(40_000, bad_share=0.05, seed=31))
    spec = append_spec(tmp_path, stream_key, batch_size=500, claim_idle_ms=3000)
    env = _env(hw_env, pg_url, REDIS_URL)
    engine = sa.create_engine(pg_url)
    c1 = subprocess.Popen(
        _run(spec, "--consumer", "c1"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    c2 = subprocess.Popen(
        _run(spec, "--consumer", "c2", "--idle-exit", "6"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait(lambda: _loaded(engine) > 5000)
    _wait(lambda: bool(rds.xpending_range(stream_key, GROUP, "-", "+", 1, "c1")))  # a batch in hand
    c1.send_signal(signal.SIGKILL)
    c1.wait()
    orphaned = {c["name"]: c["pending"] for c in rds.xinfo_consumers(stream_key, GROUP)}["c1"]
    assert orphaned > 0
    out, err = c2.communicate(timeout=180)
    assert c2.returncode == 0, err
    assert {c["name"]: c["pending"] for c in rds.xinfo_consumers(stream_key, GROUP)} == {"c1": 0, "c2": 0}
    assert assert_exact(engine, rds, stream_key) == (37_998, 2002)
    print(f"c1 left {orphaned} pending; c2: {out.strip()}")
    engine.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A redis-server of this test's own: append-only, fsync on every write, no RDB snapshots."""

    def __init__(self, directory: Path) -> None:
        self.dir, self.port = directory, _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.dir),
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        _wait(lambda: _pings(client), timeout=20)
        client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # Redis fsyncs the append-only file and exits
            self.proc.wait(timeout=30)
        self.proc = None


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    server.dir.mkdir()
    server.start()
    yield server
    server.stop()


def test_a_redis_restart_mid_stream_loses_nothing_acknowledged(
    tmp_path: Path, hw_env: Settings, pg_url: str, private_redis: PrivateRedis
) -> None:
    rds = redis.Redis.from_url(private_redis.url, decode_responses=True)
    stream = "vitals_restart"
    produce(rds, stream, vitals_events(30_000, bad_share=0.05, seed=41))
    spec = append_spec(tmp_path, stream, batch_size=500, claim_idle_ms=30_000)
    engine = sa.create_engine(pg_url)
    proc = subprocess.Popen(
        _run(spec, "--consumer", "c1", "--idle-exit", "4"),
        env=_env(hw_env, pg_url, private_redis.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait(lambda: _loaded(engine) > 5000)
    acked_before = _acked(rds, stream)
    private_redis.stop()
    at_stop = _loaded(engine)
    time.sleep(2.0)  # the processor finds Redis gone and retries
    private_redis.start()
    rds = redis.Redis.from_url(private_redis.url, decode_responses=True)
    assert rds.xlen(stream) == 30_000
    acked_after = _acked(rds, stream)  # read at once: the processor is still backing off
    assert acked_after >= acked_before > 0
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert "retrying in" in err
    assert at_stop < 28_500
    assert assert_exact(engine, rds, stream) == (28_401, 1599)
    skipped = int(re.search(r"skipped (\d+) already loaded", out).group(1))  # type: ignore[union-attr]
    assert skipped <= 500  # at most the batch in hand was redelivered: no acknowledgement was lost
    store = sa.create_engine(hw_env.database_url)
    with store.connect() as conn:
        row = conn.execute(sa.select(stream_processors)).one()
    assert row.status == "stopped"
    print(f"acked {acked_before} -> {acked_after}; {out.strip()}; {err.count('retrying in')} retries")
    store.dispose()
    rds.close()
    engine.dispose()


def _acked(rds: redis.Redis, stream: str) -> int:
    """Entries the group delivered and had acknowledged (entries-read is not kept across a restart)."""
    group = next(g for g in rds.xinfo_groups(stream) if g["name"] == GROUP)
    delivered = len(rds.xrange(stream, "-", group["last-delivered-id"]))
    return delivered - int(group["pending"])


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_stalled_sink_keeps_one_batch_in_flight_bounded_memory_and_reports_lag(
    tmp_path: Path, hw_env: Settings, pg_url: str, rds: redis.Redis, stream_key: str
) -> None:
    total = 100_000
    produce(rds, stream_key, vitals_events(total, bad_share=0.05, seed=51))
    backlog_bytes = int(rds.memory_usage(stream_key) or 0)
    spec = append_spec(tmp_path, stream_key, batch_size=1000, claim_idle_ms=600_000)
    engine = sa.create_engine(pg_url)
    store = sa.create_engine(hw_env.database_url)
    proc = subprocess.Popen(
        _run(spec, "--consumer", "c1", "--idle-exit", "3"),
        env=_env(hw_env, pg_url, REDIS_URL),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    rss: list[int] = []
    _wait(lambda: _loaded(engine) >= 3000)
    rss.append(_rss_kib(proc.pid))
    locker = engine.connect()
    tx = locker.begin()
    locker.execute(sa.text("LOCK TABLE vitals IN ACCESS EXCLUSIVE MODE"))  # the sink stalls
    time.sleep(1.0)
    stalled = []
    for _ in range(20):  # 4 s of a stalled sink
        group = next(g for g in rds.xinfo_groups(stream_key) if g["name"] == GROUP)
        with store.connect() as conn:
            row = conn.execute(sa.select(stream_processors)).one()
        stalled.append((group["entries-read"], group["pending"], group["lag"], row.events_read, row.lag))
        rss.append(_rss_kib(proc.pid))
        time.sleep(0.2)
    tx.rollback()
    locker.close()
    while proc.poll() is None:
        try:
            rss.append(_rss_kib(proc.pid))
        except (AssertionError, FileNotFoundError):  # it exited between the poll and the read
            break
        time.sleep(0.2)
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    # while stalled: nothing more read, one batch pending, the row's lag is the backlog it has not read
    assert len(set(stalled)) == 1, stalled
    ((entries_read, pending, lag, row_read, row_lag),) = set(stalled)
    assert pending == 1000 and entries_read == row_read + 1000
    assert row_lag == total - row_read and lag == total - entries_read
    assert row_read < total / 2
    assert_exact(engine, rds, stream_key)
    growth = (max(rss) - rss[0]) * 1024
    print(f"backlog {backlog_bytes} B in Redis; RSS {rss[0]} .. {max(rss)} KiB; stalled at {stalled[0]}")
    assert growth < 40 * 2**20 and growth < backlog_bytes / 2, (growth, backlog_bytes)
    store.dispose()
    engine.dispose()
