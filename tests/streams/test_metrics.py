"""Stream metrics from a real processor run (real Redis, `headwater stream run` as a process, the
embedded SQLite store and warehouse): the per-minute rows of stream_metrics add up to what was
produced, loaded (rows in the warehouse) and dead-lettered (entries of the dead-letter stream, and
the events breaking a rule by an independent check); the view's health, throughput and history
agree with direct SQL; and health is classified as documented for rows written into a real store."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import redis
import sqlalchemy as sa

from headwater.store import Store
from headwater.store.tables import stream_metrics, stream_processors
from headwater.streams.broker import id_key
from headwater.views import streams
from tests.streams.metrics_run import BATCH, EVENTS, StreamRun, stream_run_fixture  # noqa: F401
from tests.streams.redis_keys import rds_fixture, stream_key_fixture  # noqa: F401

pytestmark = pytest.mark.redis


def test_minutes_add_up_to_what_was_produced_loaded_and_dead_lettered(
    stream_run: StreamRun, rds: redis.Redis
) -> None:
    run = stream_run
    rows = run.sql("SELECT * FROM stream_metrics WHERE name = :n ORDER BY minute", n=run.name)
    assert 1 <= len(rows) <= 2  # the run may straddle a minute
    with run.warehouse.connect() as conn:
        loaded = conn.execute(sa.text("SELECT count(*) FROM vitals")).scalar_one()
    dead = rds.xlen(f"{run.stream}:dead")
    assert dead == run.bad and loaded == EVENTS - run.bad
    assert sum(r.events_read for r in rows) == EVENTS
    assert sum(r.events_loaded for r in rows) == loaded
    assert sum(r.events_dead for r in rows) == dead
    assert sum(r.batches for r in rows) == math.ceil(EVENTS / BATCH)
    assert sum(r.errors for r in rows) == 0
    last = rows[-1]
    assert (last.lag, last.pending) == (0, 0)  # all read and acknowledged
    entry_ms = [id_key(i)[0] for i, _ in rds.xrange(run.stream)]
    for r in rows:
        assert r.throughput == pytest.approx(r.events_read / r.seconds)
        assert 0 < r.seconds <= 60
        assert 0 < r.latency_p50_ms <= r.latency_p99_ms
        ended = datetime.fromisoformat(str(r.updated_at)).replace(tzinfo=UTC).timestamp() * 1000
        assert r.latency_p99_ms <= ended - min(entry_ms)  # no entry waited longer than the run
        assert r.cpu_seconds > 0 and r.rss_bytes > 20 * 2**20
    # the processor's row: figures since it started, the same totals
    proc = run.sql("SELECT * FROM stream_processors WHERE name = :n", n=run.name)[0]
    assert (proc.status, proc.events_read, proc.events_loaded, proc.events_dead, proc.lag) == (
        "stopped",
        EVENTS,
        loaded,
        dead,
        0,
    )
    assert proc.last_id == rds.xrevrange(run.stream, count=1)[0][0]


def test_view_matches_sql(stream_run: StreamRun, rds: redis.Redis) -> None:
    run = stream_run
    now = datetime.now(UTC)
    table = streams.processors(run.store, now)
    assert table["name"].to_list() == [run.name]
    row = table.row(0, named=True)
    newest = run.sql(
        "SELECT throughput, pending FROM stream_metrics WHERE name = :n ORDER BY minute DESC LIMIT 1",
        n=run.name,
    )[0]
    assert (row["health"], row["status"]) == ("stopped", "stopped")
    assert (row["throughput"], row["pending"]) == (newest.throughput, newest.pending)
    assert row["events_read"] == EVENTS
    history = streams.history(run.store, run.name, now - timedelta(minutes=60))
    expected = run.sql(
        "SELECT events_read, events_dead, latency_p99_ms FROM stream_metrics WHERE name = :n ORDER BY minute",
        n=run.name,
    )
    assert history.select("events_read", "events_dead", "latency_p99_ms").rows() == [
        tuple(r) for r in expected
    ]
    assert streams.history(run.store, run.name, now + timedelta(minutes=2)).is_empty()
    # the dead-letter browser: the newest N, newest first, as in the stream, PII masked
    letters = streams.dead_letters(rds, run.stream, 25)
    raw = rds.xrevrange(f"{run.stream}:dead", count=25)
    assert letters["id"].to_list() == [i for i, _ in raw]
    assert letters["rules"].to_list() == [", ".join(json.loads(f["rules"])) for _, f in raw]
    assert set(letters["reason"].to_list()) == {"rules"}
    patient_ids = {json.loads(f["payload"])["patient_id"] for _, f in rds.xrange(run.stream)}
    shown = " ".join(letters["values"].to_list())
    assert not any(p in shown for p in patient_ids)
    assert streams.dead_count(rds, run.stream) == run.bad


def test_health_is_classified_as_documented(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}").migrate()
    now = datetime.now(UTC).replace(microsecond=0)
    old, fresh = now - timedelta(seconds=streams.STALLED_SECONDS + 30), now - timedelta(seconds=2)
    cases = {  # name: (status, last batch, lag, throughput of the newest minute) -> health
        "a_failed": ("failed", fresh, 0, 100.0, "failed"),
        "b_stopped": ("stopped", old, 500, 100.0, "stopped"),
        "c_stalled": ("running", old, 1, 100.0, "stalled"),
        "d_idle": ("running", old, 0, 0.0, "ok"),
        "e_lagging": ("running", fresh, 5000, 100.0, "lagging"),
        "f_keeping_up": ("running", fresh, 2500, 100.0, "ok"),  # 25 s of work: under 30 s
        "g_small_lag": ("running", fresh, 900, 1.0, "ok"),  # under 1,000 entries
        "h_retrying": ("retrying", old, 10, 100.0, "stalled"),  # Redis away for over a minute
    }
    with store.engine.begin() as conn:
        for name, (status, at, lag, throughput, _) in cases.items():
            conn.execute(
                sa.insert(stream_processors).values(
                    name=name,
                    stream="s",
                    group_name="g",
                    consumer="c",
                    status=status,
                    started_at=old,
                    last_batch_at=at,
                    last_id="1-0",
                    lag=lag,
                    updated_at=at,
                )
            )
            conn.execute(
                sa.insert(stream_metrics).values(
                    name=name,
                    minute=at.replace(second=0),
                    seconds=60.0,
                    throughput=throughput,
                    updated_at=at,
                )
            )
    table = streams.processors(store.engine, now)
    assert dict(table.select("name", "health").iter_rows()) == {n: c[-1] for n, c in cases.items()}
    assert table.schema["throughput"] == pl.Float64
    store.dispose()
