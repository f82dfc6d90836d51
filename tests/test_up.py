"""`headwater up` on a fresh home, end to end (slow: it waits for two ticks of a one-minute schedule):
a spec on `interval: 1m` runs twice by itself (recorded `scheduled`), the pipeline triggered after it
runs `triggered`, a gated pipeline whose precondition sees nothing new records `skipped`; `headwater
status` reports everything alive; `headwater down` leaves none of the processes up started alive
(checked by pid, the workers' flow-run processes included)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import psutil
import pytest
import sqlalchemy as sa

from headwater.settings import Settings
from headwater.store import Store
from tests.conftest import EXAMPLES
from tests.http_json import reply_json

pytestmark = pytest.mark.slow

LOAD = (
    "  - {{name: load, type: load, depends_on: [extract],"
    " destination: {{table: {table}, mode: overwrite}}}}\n"
)
BODY = (
    """sources:
  feed: {{kind: file, path: data/vendor_prices.csv}}
steps:
  - {{name: extract, type: extract, source: feed}}
"""
    + LOAD
)

WINDOWED = """name: up_window
concurrency: 2
params:
  window_start: {type: date, required: true}
  window_end: {type: date, required: true}
sources:
  feed: {kind: file, path: data/vendor_prices.csv}
steps:
  - {name: extract, type: extract, source: feed}
  - name: tag
    type: transform
    depends_on: [extract]
    ops:
      - derive: {window_start: "'${params.window_start}'"}
  - {name: load, type: load, depends_on: [tag], destination: {table: up_window, mode: append}}
"""

SPECS = {
    "tick.yaml": "name: up_tick\nschedule: {interval: 1m}\n" + BODY.format(table="up_tick"),
    "after.yaml": "name: up_after\ntriggers: {after: [up_tick]}\n" + BODY.format(table="up_after"),
    "gated.yaml": "name: up_gated\nschedule: {interval: 1m}\nwhen: {new_files: data/vendor_prices.csv}\n"
    + BODY.format(table="up_gated"),
}


KILLED = """name: up_killed
sources:
  api: {{kind: rest, url: "http://127.0.0.1:{port}/rows", records: rows, timeout: 120, max_retries: 0}}
steps:
  - {{name: extract, type: extract, source: api}}
  - {{name: load, type: load, depends_on: [extract], destination: {{table: up_killed, mode: overwrite}}}}
"""


class _Api(BaseHTTPRequestHandler):
    """Answers at once while `open` is set; holds the request while it is not (a run stuck in its
    extract, to be killed)."""

    open = threading.Event()
    rows: ClassVar[list[dict[str, int]]] = [{"id": 1, "amount": 10}, {"id": 2, "amount": 20}]

    def do_GET(self) -> None:
        self.open.wait(timeout=300)
        reply_json(self, json.dumps({"rows": self.rows}).encode())

    def log_message(self, *args: object) -> None:
        pass


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _runs(settings: Settings) -> dict[str, list[tuple[str, str]]]:
    store = Store(settings.database_url).migrate()
    try:
        out: dict[str, list[tuple[str, str]]] = {}
        for run in reversed(store.runs(limit=100)):
            out.setdefault(run["pipeline_name"], []).append((run["execution_type"], run["status"]))
        return out
    finally:
        store.dispose()


def test_up_runs_schedules_triggers_and_preconditions_and_down_ends_it_all(tmp_path: Path) -> None:
    home, folder = tmp_path / "home", tmp_path / "pipelines"
    (folder / "data").mkdir(parents=True)
    shutil.copy(EXAMPLES / "data" / "vendor_prices.csv", folder / "data")
    for name, text in SPECS.items():
        (folder / name).write_text(text)
    api = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    _Api.open.set()
    (folder / "killed.yaml").write_text(KILLED.format(port=api.server_address[1]))
    (folder / "window.yaml").write_text(WINDOWED)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_URL", "HEADWATER_"))}
    env.update(HEADWATER_HOME=str(home), PREFECT_WORKER_QUERY_SECONDS="2")
    headwater = [sys.executable, "-m", "headwater.cli"]
    up = subprocess.run(
        [
            *headwater,
            "up",
            "--workers",
            "2",
            "--no-console",
            "--port",
            str(_port()),
            "--pipelines",
            str(folder),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    settings = Settings.from_env({"HEADWATER_HOME": str(home)})
    ours: set[int] = set()
    try:
        status = subprocess.run([*headwater, "status"], env=env, capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr
        assert "API healthy: yes" in status.stdout
        for name in ("up_tick", "up_after", "up_gated"):
            assert name in status.stdout

        deadline = time.monotonic() + 420
        runs: dict[str, list[tuple[str, str]]] = {}
        while time.monotonic() < deadline:
            supervisor = psutil.Process(json.loads((home / "run" / "up.json").read_text())["supervisor_pid"])
            ours |= {supervisor.pid, *(p.pid for p in supervisor.children(recursive=True))}
            runs = _runs(settings)
            tick = [r for r in runs.get("up_tick", []) if r == ("scheduled", "completed")]
            after = [r for r in runs.get("up_after", []) if r == ("triggered", "completed")]
            gated = runs.get("up_gated", [])
            if len(tick) >= 2 and after and ("scheduled", "skipped") in gated:
                break
            time.sleep(2)
        assert runs.get("up_tick", [])[:2] == [("scheduled", "completed")] * 2, runs
        assert ("triggered", "completed") in runs.get("up_after", []), runs
        assert runs.get("up_gated", [])[:2] == [("scheduled", "completed"), ("scheduled", "skipped")], runs

        # up serves the HTTP API too: ready, with the workers of the deployments' pool seen online
        http_api = json.loads((home / "run" / "up.json").read_text())["http_api_url"]
        ready = httpx.get(f"{http_api}/ready", timeout=60)
        assert ready.status_code == 200, ready.text
        workers = next(c for c in ready.json()["components"] if c["component"] == "Workers")
        assert workers["status"] == "ok" and workers["detail"] == "online: headwater (2)", workers

        # a backfill through the deployment: its partitions are flow runs the workers run
        backfill = [*headwater, "backfill", "up_window", "--from", "2026-01-01", "--to", "2026-01-03"]
        backfill += ["--every", "1d", "--pipelines", str(folder)]
        done = subprocess.run(backfill, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "3 partitions every 1d, 0 already completed, 3 to run on deployment up_window" in done.stdout
        store = Store(settings.database_url)
        windows = sorted(
            (r["execution_type"], r["status"], r["parameters"]["window_start"])
            for r in store.runs("up_window", limit=10)
        )
        store.dispose()
        assert windows == [("backfill", "completed", f"2026-01-0{d}") for d in (1, 2, 3)]
        engine = sa.create_engine(settings.warehouse_url)
        with engine.connect() as conn:
            per_window = conn.execute(
                sa.text("SELECT window_start, count(*) FROM up_window GROUP BY 1 ORDER BY 1")
            ).all()
        engine.dispose()
        assert per_window == [(f"2026-01-0{d}", 12) for d in (1, 2, 3)]
        again = subprocess.run(backfill, env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0 and "all 3 partitions already completed" in again.stdout

        # a worker's flow run killed with SIGKILL mid-run: its target untouched, the run marked
        # crashed (by up's sweep, within seconds), and the next run completes
        run_killed = [*headwater, "run", "up_killed", "--pipelines", str(folder)]
        first = subprocess.run(run_killed, env=env, capture_output=True, text=True)
        assert first.returncode == 0, first.stdout + first.stderr
        _Api.open.clear()
        _Api.rows = [{"id": 3, "amount": 30}]
        api_env = {**env, "PREFECT_API_URL": json.loads((home / "run" / "up.json").read_text())["api_url"]}
        prefect = str(Path(sys.executable).parent / "prefect")
        created = subprocess.run(
            [prefect, "deployment", "run", "up_killed/up_killed"], env=api_env, capture_output=True, text=True
        )
        assert created.returncode == 0, created.stdout + created.stderr
        victim = None
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline:
            store = Store(settings.database_url)
            running = [r for r in store.runs("up_killed", limit=5) if r["status"] == "running"]
            steps = store.steps(running[0]["id"]) if running else []
            store.dispose()
            if running and any(st["step_name"] == "extract" and st["status"] == "running" for st in steps):
                victim = running[0]
            time.sleep(0.3)
        assert victim is not None, "the second run never reached its extract"
        os.kill(victim["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            store = Store(settings.database_url)
            record = store.run(victim["id"])
            store.dispose()
            if record and record["status"] != "running":
                break
            time.sleep(1)
        assert record is not None and record["status"] == "crashed", record
        engine = sa.create_engine(settings.warehouse_url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT id, amount FROM up_killed ORDER BY id")).all() == [
                (1, 10),
                (2, 20),
            ]
        _Api.open.set()
        again = subprocess.run(run_killed, env=env, capture_output=True, text=True)
        assert again.returncode == 0, again.stdout + again.stderr
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT id, amount FROM up_killed ORDER BY id")).all() == [(3, 30)]
        engine.dispose()
    finally:
        down = subprocess.run([*headwater, "down"], env=env, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert len(ours) >= 4  # supervisor, server, two workers (and their flow runs while they ran)
    alive = [p for p in ours if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"still alive after down: {alive}"
    assert not (home / "run" / "up.json").exists()
    after_down = subprocess.run([*headwater, "status"], env=env, capture_output=True, text=True, timeout=60)
    assert after_down.returncode == 3 and "down" in after_down.stdout
