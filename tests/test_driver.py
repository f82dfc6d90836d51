"""The run's driver in the domain, with no Prefect at all (SequentialExecutor): a critical failure
fails the run and skips what follows, a non-critical one passes its input on, transient errors are
retried by the step's policy (the same predicate Prefect's task retries ask), and an orchestration
error aborts the run, recorded.

Real services: SQLite store and warehouse of `hw_env`, a local HTTP server for the retried source."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa

from headwater.connections import Connections
from headwater.pipeline import PipelineRun
from headwater.pipeline.driver import SequentialExecutor, execute
from headwater.settings import Settings
from headwater.spec.loader import find_pipeline
from headwater.store import Store

SPEC = """\
name: {name}
sources:
  feed: {{kind: file, path: feed.csv}}
steps:
  - {{name: extract, type: extract, source: feed}}
  - name: tag
    type: transform
    depends_on: [extract]
    critical: {critical}
    ops:
      - derive: {{amount_int: "CAST(name AS INTEGER)"}}
  - {{name: load, type: load, depends_on: [tag], destination: {{table: {name}, mode: append}}}}
"""


def start(settings: Settings, folder: Path, name: str) -> tuple[PipelineRun, Store]:
    settings.ensure_home()
    store = Store(settings.database_url).migrate()
    run = PipelineRun(find_pipeline(folder, name), store, Connections(settings.warehouse_url))
    run.start()
    return run, store


def table(settings: Settings, name: str) -> pl.DataFrame | None:
    engine = sa.create_engine(settings.warehouse_url)
    try:
        return (
            pl.read_database(f"SELECT * FROM {name}", engine) if sa.inspect(engine).has_table(name) else None
        )
    finally:
        engine.dispose()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "feed.csv").write_text("id,name,amount\n1,Ann,10\n2,Bo,20\n")
    for name, critical in (("hard", "true"), ("soft", "false")):
        (tmp_path / f"{name}.yaml").write_text(SPEC.format(name=name, critical=critical))
    return tmp_path


def test_a_critical_failure_fails_the_run_and_skips_the_rest(hw_env: Settings, folder: Path) -> None:
    run, store = start(hw_env, folder, "hard")
    summary = execute(run, SequentialExecutor())
    assert (summary.status, summary.failed_step, summary.error_type) == ("failed", "tag", "PermanentError")
    steps = {s["step_name"]: s["status"] for s in store.steps(run.run_id)}
    assert steps == {"extract": "completed", "tag": "failed", "load": "skipped"}
    assert table(hw_env, "hard") is None
    assert store.run(run.run_id)["status"] == "failed"  # type: ignore[index]


def test_a_non_critical_failure_passes_its_input_on(hw_env: Settings, folder: Path) -> None:
    run, _ = start(hw_env, folder, "soft")
    summary = execute(run, SequentialExecutor())
    assert summary.status == "completed_with_warnings" and summary.records_loaded == 2
    assert summary.warnings[0].startswith("step tag failed: PermanentError")
    loaded = table(hw_env, "soft")
    assert loaded is not None and loaded.sort("id").rows() == [(1, "Ann", 10), (2, "Bo", 20)]


@pytest.fixture
def flaky_api() -> Iterator[tuple[str, list[int]]]:
    """503 twice, then a JSON list; the statuses it sent are listed."""
    sent: list[int] = []

    class Flaky(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = 503 if len(sent) < 2 else 200
            sent.append(status)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'[{"id": 1}, {"id": 2}]' if status == 200 else b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/orders", sent
    server.shutdown()
    server.server_close()


def test_transient_errors_are_retried_by_the_policy(
    hw_env: Settings, tmp_path: Path, flaky_api: tuple[str, list[int]]
) -> None:
    url, sent = flaky_api
    (tmp_path / "api.yaml").write_text(
        f"""\
name: api
sources:
  orders: {{kind: rest, url: "{url}", max_retries: 0}}
retry: {{attempts: 3, delay: 0.5, backoff: 3}}
steps:
  - {{name: extract, type: extract, source: orders}}
  - {{name: load, type: load, depends_on: [extract], destination: {{table: orders, mode: append}}}}
"""
    )
    slept: list[float] = []
    run, store = start(hw_env, tmp_path, "api")
    summary = execute(run, SequentialExecutor(sleep=slept.append))
    assert summary.status == "completed" and summary.retry_count == 2
    assert sent == [503, 503, 200] and slept == [0.5, 1.5]
    extract = {s["step_name"]: s for s in store.steps(run.run_id)}["extract"]
    assert (extract["attempts"], extract["retry_count"]) == (3, 2)
    loaded = table(hw_env, "orders")
    assert loaded is not None and loaded["id"].to_list() == [1, 2]


class Interrupted(SequentialExecutor):
    def next_done(self, handles: Sequence[Any]) -> Any:
        raise KeyboardInterrupt


def test_an_orchestration_error_aborts_the_run_recorded(hw_env: Settings, folder: Path) -> None:
    run, store = start(hw_env, folder, "soft")
    with pytest.raises(KeyboardInterrupt):
        execute(run, Interrupted())
    recorded = store.run(run.run_id)
    assert recorded is not None and (recorded["status"], recorded["error_type"]) == (
        "failed",
        "KeyboardInterrupt",
    )
    assert {s["status"] for s in store.steps(run.run_id) if s["step_name"] != "extract"} == {"skipped"}
    assert table(hw_env, "soft") is None
