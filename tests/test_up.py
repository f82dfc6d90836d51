"""`headwater up` on a fresh home, end to end (slow: it waits for two ticks of a one-minute schedule):
a spec on `interval: 1m` runs twice by itself (recorded `scheduled`), the pipeline triggered after it
runs `triggered`, a gated pipeline whose precondition sees nothing new records `skipped`; `headwater
status` reports everything alive; `headwater down` leaves none of the processes up started alive
(checked by pid, the workers' flow-run processes included)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from headwater.settings import Settings
from headwater.store import Store
from tests.conftest import EXAMPLES

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

SPECS = {
    "tick.yaml": "name: up_tick\nschedule: {interval: 1m}\n" + BODY.format(table="up_tick"),
    "after.yaml": "name: up_after\ntriggers: {after: [up_tick]}\n" + BODY.format(table="up_after"),
    "gated.yaml": "name: up_gated\nschedule: {interval: 1m}\nwhen: {new_files: data/vendor_prices.csv}\n"
    + BODY.format(table="up_gated"),
}


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
    finally:
        down = subprocess.run([*headwater, "down"], env=env, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert len(ours) >= 4  # supervisor, server, two workers (and their flow runs while they ran)
    alive = [p for p in ours if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"still alive after down: {alive}"
    assert not (home / "run" / "up.json").exists()
    after_down = subprocess.run([*headwater, "status"], env=env, capture_output=True, text=True, timeout=60)
    assert after_down.returncode == 3 and "down" in after_down.stdout
