"""Circuit breakers (headwater.breakers) and graceful degradation.

- The state machine on a real store (SQLite and PostgreSQL), with an injected clock: failures within
  the window open it, older ones do not count; open, no call is let through until `open_until`; then
  at most `half_open_probes` probes; a probe's success closes it, its failure opens it again.
- The acceptance: a REST source (a local HTTP server that counts requests) failing 5 times opens its
  breaker; the next run makes 0 requests, loads exactly the last good rows flagged stale (age on the
  run record) and ends completed_with_warnings; after the open period one probe succeeds and closes
  it; opening raises an alert and closing resolves it (a real webhook receiver).
- Two `headwater run` worker processes on a PostgreSQL store see the same breaker.

Real services: SQLite store/warehouse of `hw_env`, PostgreSQL (`pg_url`, `store_engine`), local HTTP
servers (tests.test_extract_rest's FakeApi, tests.alerting's webhook receiver)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from headwater.alerting.after_run import alert_on
from headwater.alerting.engine import history
from headwater.breakers import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    BreakerPolicy,
    Breakers,
    CircuitOpen,
    open_breakers,
)
from headwater.cli.main import main
from headwater.connections import Connections
from headwater.errors import SpecError
from headwater.pipeline import PipelineRun
from headwater.pipeline.driver import SequentialExecutor, execute
from headwater.pipeline.outcome import RunOutcome
from headwater.settings import Settings
from headwater.spec.loader import find_pipeline, load_pipeline
from headwater.store import Store
from tests.alerting.conftest import serve_webhook
from tests.conftest import REPO
from tests.test_extract_rest import FakeApi, Reply
from tests.test_extract_rest import api as rest_api

# the fixture `api`: a local HTTP server that serves scripted replies and logs every request
api = rest_api

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
POLICY = BreakerPolicy(failures=5, window=600, open_for=60, half_open_probes=1)


# ------------------------------------------------------------------ the state machine


def test_failures_within_the_window_open_it_and_a_probe_closes_it(store_engine: sa.Engine) -> None:
    breakers = Breakers(store_engine)
    key = "rest:http://svc.example:80"
    # four failures, then one 11 minutes later: the first four fell out of the 10-minute window
    for i in range(4):
        assert breakers.failed(breakers.acquire(key, POLICY, T0), "503", T0 + timedelta(seconds=i)) is None
    late = T0 + timedelta(minutes=11)
    assert breakers.failed(breakers.acquire(key, POLICY, late), "503", late) is None
    state = breakers.get(key)
    assert state is not None and (state.state, state.recent_failures) == (CLOSED, 1)
    # four more within the window: five in all, the breaker opens for 60 s
    for i in range(1, 5):
        now = late + timedelta(seconds=i)
        transition = breakers.failed(breakers.acquire(key, POLICY, now), f"503 #{i}", now)
    opened_at = late + timedelta(seconds=4)
    assert transition is not None and (transition.before, transition.after) == (CLOSED, OPEN)
    state = breakers.get(key)
    assert state is not None
    assert (state.state, state.opened_at, state.open_until) == (
        OPEN,
        opened_at,
        opened_at + timedelta(seconds=60),
    )
    assert state.last_error == "503 #4"
    # open: nothing is let through until open_until, and the refusal says until when
    with pytest.raises(CircuitOpen) as refused:
        breakers.acquire(key, POLICY, opened_at + timedelta(seconds=59))
    assert f"circuit open for {key} until 2026-12-01 09:12:04 UTC" in str(refused.value)
    assert [b.key for b in open_breakers(store_engine, opened_at)] == [key]
    # after it: one probe at a time (half_open_probes: 1)
    after = opened_at + timedelta(seconds=60)
    probe = breakers.acquire(key, POLICY, after)
    assert probe.probe
    with pytest.raises(CircuitOpen, match="half-open"):
        breakers.acquire(key, POLICY, after)
    # the probe fails: open again for another 60 s from then
    reopened = breakers.failed(probe, "still 503", after + timedelta(seconds=1))
    assert reopened is not None and (reopened.before, reopened.after) == (HALF_OPEN, OPEN)
    assert reopened.state.open_until == after + timedelta(seconds=61)
    # the next probe succeeds: closed, failures forgotten
    probe = breakers.acquire(key, POLICY, after + timedelta(seconds=61))
    closed = breakers.succeeded(probe, after + timedelta(seconds=62))
    assert closed is not None and (closed.before, closed.after) == (HALF_OPEN, CLOSED)
    state = breakers.get(key)
    assert state is not None and (state.state, state.recent_failures, state.open_until) == (CLOSED, 0, None)
    assert open_breakers(store_engine, after + timedelta(seconds=62)) == []


def test_a_probe_that_never_reports_gives_its_slot_back(store_engine: sa.Engine) -> None:
    """A probe whose process died (no success, no failure) blocks others only for open_for; a call
    that ends with the user's error (released) gives the slot back at once and counts nothing."""
    breakers = Breakers(store_engine)
    policy = BreakerPolicy(failures=1, window=60, open_for=30, half_open_probes=1)
    breakers.failed(breakers.acquire("k", policy, T0), "down", T0)
    first = T0 + timedelta(seconds=30)
    breakers.acquire("k", policy, first)  # this probe's process "dies"
    with pytest.raises(CircuitOpen):
        breakers.acquire("k", policy, first + timedelta(seconds=29))
    second = breakers.acquire("k", policy, first + timedelta(seconds=30))
    assert second.probe
    breakers.released(second, first + timedelta(seconds=31))  # e.g. a 401: says nothing of availability
    state = breakers.get("k")
    assert state is not None and (state.state, state.probes, state.recent_failures) == (HALF_OPEN, 0, 1)
    assert breakers.acquire("k", policy, first + timedelta(seconds=32)).probe


@pytest.mark.postgres
def test_racing_callers_get_exactly_one_probe(pg_url: str) -> None:
    """Eight callers, each with its own connection pool (as separate workers have), ask at the same
    moment once the open period is over: the row lock lets exactly one probe through."""
    Store(pg_url).migrate().dispose()
    first = Breakers(sa.create_engine(pg_url))
    policy = BreakerPolicy(failures=1, window=60, open_for=30, half_open_probes=1)
    first.failed(first.acquire("svc", policy, T0), "down", T0)
    after = T0 + timedelta(seconds=30)
    barrier = threading.Barrier(8)

    def ask(_: int) -> str:
        breakers = Breakers(sa.create_engine(pg_url, poolclass=sa.pool.NullPool))
        barrier.wait()
        try:
            return "probe" if breakers.acquire("svc", policy, after).probe else "call"
        except CircuitOpen:
            return "refused"

    with ThreadPoolExecutor(8) as pool:
        answers = sorted(pool.map(ask, range(8)))
    assert answers == ["probe"] + ["refused"] * 7
    state = first.get("svc")
    assert state is not None and (state.state, state.probes) == (HALF_OPEN, 1)
    first.engine.dispose()


# ------------------------------------------------------------------ the spec


SPEC = """\
name: {name}
sources:
  orders:
    kind: rest
    url: {url}
    max_retries: 0
    breaker: {{failures: 5, window: 10m, open_for: {open_for}}}
steps:
  - {{name: extract_orders, type: extract, source: orders, on_unavailable: {on_unavailable}}}
  - name: load_orders
    type: load
    depends_on: [extract_orders]
    destination: {{table: orders, mode: {mode}, primary_key: [id]}}
"""


def write_spec(folder: Path, name: str, url: str, **fields: Any) -> Path:
    values = {"open_for": "60s", "on_unavailable": "use_last", "mode": "upsert", **fields}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(SPEC.format(name=name, url=url, **values))
    return path


def test_bad_breaker_settings_are_refused_at_load(tmp_path: Path) -> None:
    url = "http://127.0.0.1:9/orders"
    path = write_spec(tmp_path, "bad_window", url, open_for="soon")
    with pytest.raises(SpecError) as bad:
        load_pipeline(path)
    (problem,) = bad.value.problems
    assert (problem.field, problem.line) == ("sources.orders.breaker.open_for", 7)
    assert "'soon' is not a duration" in problem.message
    path = write_spec(tmp_path, "appends", url, mode="append")
    with pytest.raises(SpecError) as bad:
        load_pipeline(path)
    (problem,) = bad.value.problems
    assert (problem.field, problem.line) == ("steps[0].on_unavailable", 9)
    assert "load step load_orders appends" in problem.message and "upsert" in (problem.hint or "")
    file_spec = tmp_path / "files.yaml"
    file_spec.write_text(
        "name: files\nsources:\n  feed: {kind: file, path: feed.csv}\nsteps:\n"
        "  - {name: extract, type: extract, source: feed, on_unavailable: use_last}\n"
        "  - {name: load, type: load, depends_on: [extract], destination: {table: t, mode: overwrite}}\n"
    )
    (tmp_path / "feed.csv").write_text("id\n1\n")
    with pytest.raises(SpecError) as bad:
        load_pipeline(file_spec)
    (problem,) = bad.value.problems
    assert (problem.field, problem.line) == ("steps[0].on_unavailable", 5)
    assert "has no circuit breaker" in problem.message


# ------------------------------------------------------------------ the acceptance


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def run_once(settings: Settings, folder: Path, name: str, clock: Clock) -> tuple[RunOutcome, Store]:
    store = Store(settings.database_url).migrate()
    connections = Connections(settings.warehouse_url)
    run = PipelineRun(find_pipeline(folder, name), store, connections, clock=clock)
    run.start()
    try:
        return run.outcome(execute(run, SequentialExecutor())), store
    finally:
        connections.dispose()


def warehouse(settings: Settings, table: str) -> pl.DataFrame:
    engine = sa.create_engine(settings.warehouse_url)
    try:
        return pl.read_database(f"SELECT * FROM {table} ORDER BY id", engine)
    finally:
        engine.dispose()


def test_an_open_breaker_loads_the_last_good_data_then_a_probe_closes_it(
    hw_env: Settings,
    tmp_path: Path,
    api: FakeApi,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = hw_env
    settings.ensure_home()
    folder = tmp_path / "specs"
    write_spec(folder, "orders_feed", api.url())
    good = [{"id": 1, "amount": 10.5}, {"id": 2, "amount": 20.0}, {"id": 3, "amount": 7.25}]
    newer = [*good, {"id": 4, "amount": 1.0}]
    answer = {"reply": Reply(200, good)}
    api.respond = lambda hit: answer["reply"]
    with serve_webhook() as hook:
        alerts = tmp_path / "alerts"
        alerts.mkdir()
        (alerts / "channels.yaml").write_text(
            f"channels:\n  ops: {{url: '{hook.url()}'}}\ndelivery: {{attempts: 1, backoff_seconds: 0.1}}\n"
        )
        (alerts / "rules.yaml").write_text("severity_channels: {warning: [ops]}\nrules: []\n")
        monkeypatch.setenv("HEADWATER_ALERTS", str(alerts))

        def run(at: datetime) -> RunOutcome:
            outcome, store = run_once(settings, folder, "orders_feed", Clock(at))
            alert_on(outcome, Settings.from_env(), store, secrets=set(), links={})
            store.dispose()
            return outcome

        # 1: a good run; its extract is kept
        first = run(T0)
        assert first.status == "completed" and len(api.hits) == 1
        # 2-6: the source answers 503; the fifth failure within 10 minutes opens the breaker
        answer["reply"] = Reply(503, {"error": "down"})
        for i in range(1, 6):
            failed = run(T0 + timedelta(minutes=i))
            assert failed.status == "failed" and failed.summary.error_type == "TransientError"
        assert len(api.hits) == 6
        opened_at = T0 + timedelta(minutes=5)
        assert [b["key"] for b in failed.summary.breakers] == [f"rest:http://127.0.0.1:{api.port}"]
        assert failed.summary.breakers[0]["open_until"] == (opened_at + timedelta(seconds=60)).isoformat()
        (raised,) = hook.at("hook")
        assert "orders_feed.circuit-open" in raised["message"]
        assert (
            f"circuit breaker rest:http://127.0.0.1:{api.port} is open (opened {opened_at.isoformat()}, "
            f"open until {(opened_at + timedelta(seconds=60)).isoformat()}; last error: source orders: "
            f"GET http://127.0.0.1:{api.port}/orders failed after 1 request(s): HTTP 503"
        ) in raised["message"]

        # 7: open: no request at all; the last good rows load, flagged stale, with their age
        stale_at = opened_at + timedelta(seconds=30)
        stale = run(stale_at)
        assert len(api.hits) == 6
        assert stale.status == "completed_with_warnings"
        age = (stale_at - T0).total_seconds()  # the kept extract is from run 1 at T0: 330 s
        assert stale.summary.data_age_seconds == age == 330.0
        (warning,) = stale.summary.warnings
        assert f"circuit breaker rest:http://127.0.0.1:{api.port} is open" in warning
        assert "opened 2026-12-01 09:05:00 UTC, open until 2026-12-01 09:06:00 UTC" in warning
        assert "last good extract of 2026-12-01 09:00:00 UTC" in warning and "stale by 5 min 30 s" in warning
        expected = pl.DataFrame(good)
        assert_frame_equal(warehouse(settings, "orders"), expected)
        store = Store(settings.database_url)
        record = store.run(stale.run_id)
        assert record is not None
        assert (record["status"], record["data_age_seconds"]) == ("completed_with_warnings", 330.0)
        (used,) = record["stale_data"]
        assert (used["step"], used["rows"], used["extracted_at"]) == ("extract_orders", 3, T0.isoformat())
        assert used["run_id"] == first.run_id
        store.dispose()
        assert len(hook.at("hook")) == 1  # still open: the alert fires again without a new message
        store_engine = Store(settings.database_url).engine
        (instance,) = history(store_engine)
        assert (instance["rule_name"], instance["status"], instance["occurrences"]) == (
            "orders_feed.circuit-open",
            "open",
            2,
        )
        assert instance["details"]["fired"][1] == (
            f"step extract_orders loaded its last good extract of {T0.isoformat()} "
            "(3 rows, 330 s old): the data is stale"
        )
        store_engine.dispose()
        # `headwater runs` flags it, and one run's detail says which extract, how old, which breaker
        capsys.readouterr()
        assert main(["runs", "--pipeline", "orders_feed"]) == 0
        listed = [line for line in capsys.readouterr().out.splitlines() if line.startswith(stale.run_id[:8])]
        assert len(listed) == 1 and listed[0].rstrip().endswith("STALE 5 min 30 s")
        assert main(["runs", "--run", stale.run_id]) == 0
        assert (
            f"stale data         step extract_orders: last good extract of {T0.isoformat()} (3 rows, "
            f"5 min 30 s old) loaded instead of source orders: circuit breaker "
            f"rest:http://127.0.0.1:{api.port} open until {(opened_at + timedelta(seconds=60)).isoformat()}"
        ) in capsys.readouterr().out

        # 8: past open_for, the source is back: one probe, which closes the breaker and resolves the alert
        answer["reply"] = Reply(200, newer)
        back = run(opened_at + timedelta(seconds=61))
        assert len(api.hits) == 7
        assert back.status == "completed" and back.summary.breakers == []
        assert back.summary.data_age_seconds is None
        assert_frame_equal(warehouse(settings, "orders"), pl.DataFrame(newer))
        raised, resolved = hook.at("hook")
        assert "RESOLVED" in resolved["title"].upper() and "orders_feed.circuit-open" in resolved["message"]
        store_engine = Store(settings.database_url).engine
        (instance,) = history(store_engine)
        assert (instance["status"], instance["resolved_run_id"]) == ("resolved", back.run_id)
        store_engine.dispose()


def test_without_use_last_an_open_breaker_fails_fast(
    hw_env: Settings,
    tmp_path: Path,
    api: FakeApi,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hw_env.ensure_home()
    folder = tmp_path / "specs"
    write_spec(folder, "strict_feed", api.url(), on_unavailable="fail")
    api.respond = lambda hit: Reply(503, {})
    for i in range(5):
        outcome, store = run_once(hw_env, folder, "strict_feed", Clock(T0 + timedelta(seconds=i)))
        store.dispose()
    outcome, store = run_once(hw_env, folder, "strict_feed", Clock(T0 + timedelta(seconds=10)))
    assert len(api.hits) == 5
    assert (outcome.status, outcome.summary.error_type) == ("failed", "CircuitOpen")
    key = f"rest:http://127.0.0.1:{api.port}"
    message = outcome.summary.error_message or ""
    assert f"circuit open for {key} until 2026-12-01 09:01:04 UTC" in message
    assert "on_unavailable: use_last" in message  # the fix
    steps = {s["step_name"]: s["status"] for s in store.steps(outcome.run_id)}
    assert steps == {"extract_orders": "failed", "load_orders": "skipped"}
    store.dispose()
    # `headwater breakers` lists it (past its open period by the wall clock: half-open), and
    # `--reset` closes it by hand
    capsys.readouterr()
    assert main(["breakers"]) == 0
    (row,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith(key)]
    assert row.split()[1:3] == ["source", "half_open"] and "HTTP 503" in row
    assert main(["breakers", "--reset", key]) == 0
    assert capsys.readouterr().out.strip() == f"{key}: closed"
    assert main(["breakers"]) == 0
    assert capsys.readouterr().out.startswith("no open circuit breakers")


# ------------------------------------------------------------------ two processes


def headwater_run(folder: Path, name: str, env: dict[str, str]) -> dict[str, Any]:
    """`headwater run NAME` as a worker process (the domain's driver: tests.breaker_worker)."""
    proc = subprocess.run(
        [sys.executable, "-m", "headwater.cli", "run", name, "--pipelines", str(folder)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    return {"returncode": proc.returncode, "stderr": proc.stderr}


@pytest.mark.postgres
def test_two_worker_processes_share_the_breaker(
    tmp_path: Path,
    pg_url: str,
    api: FakeApi,
) -> None:
    """Process A's failures open the breaker in the PostgreSQL store; process B, started after,
    sees it open: it makes no request and loads nothing from the source."""
    folder = tmp_path / "specs"
    write_spec(folder, "shared_a", api.url(), on_unavailable="fail", open_for="10m")
    text = (folder / "shared_a.yaml").read_text()
    (folder / "shared_a.yaml").write_text(text.replace("failures: 5", "failures: 2"))
    (folder / "shared_b.yaml").write_text(
        text.replace("failures: 5", "failures: 2").replace("name: shared_a", "name: shared_b")
    )
    api.respond = lambda hit: Reply(503, {})
    env = {
        **os.environ,
        "HEADWATER_HOME": str(tmp_path / "home"),
        "HEADWATER_DATABASE_URL": pg_url,
        "HEADWATER_WAREHOUSE_URL": f"sqlite:///{tmp_path / 'warehouse.db'}",
        "HEADWATER_ORCHESTRATION": "tests.breaker_worker:Sequential",
        "HEADWATER_WORKER": "1",
    }
    env.pop("HEADWATER_ALERTS", None)
    for _ in range(2):
        assert headwater_run(folder, "shared_a", env)["returncode"] == 1
    assert len(api.hits) == 2
    assert headwater_run(folder, "shared_b", env)["returncode"] == 1
    assert len(api.hits) == 2  # process B made no request
    store = Store(pg_url)
    try:
        (b,) = store.runs("shared_b")
        assert (b["status"], b["error_type"]) == ("failed", "CircuitOpen")
        assert f"circuit open for rest:http://127.0.0.1:{api.port} until" in b["error_message"]
        (state,) = open_breakers(store.engine, datetime.now(UTC))
        assert (state.key, state.state, state.recent_failures) == (
            f"rest:http://127.0.0.1:{api.port}",
            OPEN,
            2,
        )
    finally:
        store.dispose()
