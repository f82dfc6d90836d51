"""The seven cases a new user found ending wrong (silently bad data or a crash), each reproduced with
the file or spec that showed it, run through the real flow (Prefect test harness), the target checked
before and after, on SQLite and where it matters on PostgreSQL. Never `completed` over wrong data.

Real services: the Prefect test harness, SQLite files, the real PostgreSQL (its own database)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
import psutil
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from headwater.settings import Settings
from headwater.store import Store
from tests.conftest import REPO, run_flow

pytestmark = pytest.mark.prefect


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def file_pipeline(folder: Path, name: str, data: str, table: str, *, ops: str = "", dest: str = "") -> None:
    transform = f"  - {{name: shape, type: transform, depends_on: [extract], ops: [{ops}]}}\n" if ops else ""
    load_from = "shape" if ops else "extract"
    write(
        folder,
        f"{name}.yaml",
        f"""\
name: {name}
sources:
  feed: {{kind: file, path: {data}}}
steps:
  - {{name: extract, type: extract, source: feed}}
{transform}  - name: load
    type: load
    depends_on: [{load_from}]
    destination: {{table: {table}, mode: {dest or "append"}}}
""",
    )


def table_rows(url: str, table: str) -> pl.DataFrame | None:
    engine = sa.create_engine(url)
    try:
        if not sa.inspect(engine).has_table(table):
            return None
        return pl.read_database(f'SELECT * FROM "{table}" ORDER BY 1', engine)
    finally:
        engine.dispose()


# 1 ------------------------------------------------------------------ CR-only line endings


def test_1_a_cr_only_csv_loads_its_rows_not_an_empty_table(hw_env: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "specs"
    write(folder, "mac.csv", b'id,name,amount\r1,Ann,10.5\r2,"Bo, Jr",20\r3,Cy,30\r')
    file_pipeline(folder, "mac_export", "mac.csv", "mac_export")
    result = run_flow("mac_export", folder)
    assert result["status"] == "completed" and result["records_loaded"] == 3
    loaded = table_rows(hw_env.warehouse_url, "mac_export")
    assert loaded is not None and loaded.columns == ["id", "name", "amount"]
    expected = pl.DataFrame({"id": [1, 2, 3], "name": ["Ann", "Bo, Jr", "Cy"], "amount": [10.5, 20.0, 30.0]})
    assert_frame_equal(loaded, expected)


def test_1_a_header_with_control_characters_is_refused_naming_the_file(
    hw_env: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "specs"
    write(folder, "odd.csv", b"id,na\x01me\n1,a\n")
    file_pipeline(folder, "odd_header", "odd.csv", "odd_header")
    result = run_flow("odd_header", folder)
    assert result["status"] == "failed" and result["failed_step"] == "extract"
    assert "odd.csv" in result["error_message"] and "control character" in result["error_message"]
    assert table_rows(hw_env.warehouse_url, "odd_header") is None


# 2 ------------------------------------------------------------------ a huge expression


def test_2_a_huge_expression_is_refused_before_the_run_and_nothing_is_left_running(
    hw_env: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "specs"
    write(folder, "feed.csv", "id,amount\n1,10\n2,20\n")
    huge = " OR ".join(f"amount = {i}" for i in range(50_000))
    file_pipeline(folder, "huge_filter", "feed.csv", "huge", ops=f'{{filter: "{huge}"}}')
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    done = subprocess.run(
        [sys.executable, "-m", "headwater.cli", "run", "huge_filter", "--pipelines", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"},  # never reached: refused first
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert "huge_filter: refused, nothing ran" in done.stdout
    assert "huge_filter.yaml:6: steps[1].ops[0].filter" in done.stderr
    assert "is too long: 888,886 characters (the limit is 100,000)" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert {p.pid for p in psutil.Process().children(recursive=True)} == before
    (run,) = Store(hw_env.database_url).runs("huge_filter")
    assert (run["status"], run["error_type"]) == ("failed", "SpecError")
    assert "is too long" in run["error_message"]
    assert table_rows(hw_env.warehouse_url, "huge") is None


# 3 ------------------------------------------------------------------ schema drift


@pytest.mark.parametrize("warehouse", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_3_schema_drift_warns_naming_the_columns_and_the_run_is_not_plain_completed(
    hw_env: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    warehouse: str,
) -> None:
    url = hw_env.warehouse_url if warehouse == "sqlite" else request.getfixturevalue("pg_url")
    monkeypatch.setenv("HEADWATER_WAREHOUSE_URL", url)
    folder = tmp_path / "specs"
    write(folder, "v1.csv", "id,name,amount\n1,Ann,10\n2,Bo,20\n")
    write(folder, "v2.csv", "id,full_name,amount\n3,Cy,30\n")
    file_pipeline(folder, "people_v1", "v1.csv", "people")
    file_pipeline(folder, "people_v2", "v2.csv", "people")
    first = run_flow("people_v1", folder)
    assert (first["status"], first["warnings"]) == ("completed", [])
    second = run_flow("people_v2", folder)
    assert second["status"] == "completed_with_warnings"
    (warning,) = second["warnings"]
    assert "schema drift in people" in warning
    assert "the data brought column(s) the table lacked: full_name (added)" in warning
    assert "the data lacks column(s) the table has: name (NULL in the rows loaded now)" in warning
    run = Store(hw_env.database_url).run(second["run_id"])
    assert run is not None and run["status"] == "completed_with_warnings" and run["warnings"] == [warning]
    steps = {s["step_name"]: s for s in Store(hw_env.database_url).steps(second["run_id"])}
    assert steps["load"]["metrics"]["missing_columns"] == ["name"]
    assert steps["load"]["metrics"]["added_columns"] == ["full_name"]
    loaded = table_rows(url, "people")
    assert loaded is not None
    assert loaded.select("id", "name", "full_name").rows() == [
        (1, "Ann", None),
        (2, "Bo", None),
        (3, None, "Cy"),
    ]


# 4 ------------------------------------------------------------------ overwrite with nothing


@pytest.mark.parametrize("warehouse", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_4_overwrite_with_zero_rows_is_refused_unless_allowed(
    hw_env: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    warehouse: str,
) -> None:
    url = hw_env.warehouse_url if warehouse == "sqlite" else request.getfixturevalue("pg_url")
    monkeypatch.setenv("HEADWATER_WAREHOUSE_URL", url)
    folder = tmp_path / "specs"
    write(folder, "feed.csv", "id,amount\n1,10\n2,20\n")
    file_pipeline(folder, "fill", "feed.csv", "prices", dest="overwrite")
    file_pipeline(folder, "nothing", "feed.csv", "prices", ops='{filter: "amount > 1000"}', dest="overwrite")
    assert run_flow("fill", folder)["status"] == "completed"
    before = table_rows(url, "prices")
    assert before is not None and before.height == 2

    refused = run_flow("nothing", folder)
    assert (refused["status"], refused["failed_step"]) == ("failed", "load")
    assert "overwrite of prices with 0 rows refused" in refused["error_message"]
    assert "set allow_empty: true on the destination" in refused["error_message"]
    assert_frame_equal(table_rows(url, "prices"), before)  # type: ignore[arg-type]

    spec = folder / "nothing.yaml"
    spec.write_text(spec.read_text().replace("mode: overwrite}", "mode: overwrite, allow_empty: true}"))
    allowed = run_flow("nothing", folder)
    assert allowed["status"] == "completed"
    emptied = table_rows(url, "prices")
    assert emptied is not None and emptied.height == 0


# 5 is tests/transform/test_expressions.py (one parser, one message, in validate); here through run


def test_5_an_unparseable_rule_is_refused_before_the_run_with_the_filters_message(
    hw_env: Settings, tmp_path: Path
) -> None:
    from headwater.cli import main

    folder = tmp_path / "specs"
    write(folder, "feed.csv", "id,amount\n1,10\n")
    write(
        folder,
        "rule.yaml",
        """\
name: rule
sources:
  feed: {kind: file, path: feed.csv}
steps:
  - {name: extract, type: extract, source: feed}
  - name: check
    type: validate
    depends_on: [extract]
    expect:
      - {name: positive, rule: "amount > 0) OR (1=1"}
""",
    )
    assert main(["run", "rule", "--pipelines", str(folder)]) == 2
    (run,) = Store(hw_env.database_url).runs("rule")
    assert run["status"] == "failed" and run["error_type"] == "SpecError"
    assert (
        "rule.yaml:10: steps[1].expect[0].rule: cannot parse expression 'amount > 0) OR (1=1'"
        in (run["error_message"])
    )


# 6 ------------------------------------------------------------------ SQL types


@pytest.mark.parametrize("source_db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_6_an_all_null_real_column_keeps_its_type_and_its_mean_is_null(
    hw_env: Settings, tmp_path: Path, request: pytest.FixtureRequest, source_db: str
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'source.db'}" if source_db == "sqlite" else request.getfixturevalue("pg_url")
    )
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE readings (id INTEGER PRIMARY KEY, site TEXT, reading REAL)")
        conn.exec_driver_sql("INSERT INTO readings (id, site, reading) VALUES (1, 'a', NULL), (2, 'a', NULL)")
        conn.exec_driver_sql("CREATE TABLE no_readings (id INTEGER PRIMARY KEY, site TEXT, reading REAL)")
    engine.dispose()
    folder = tmp_path / "specs"
    for name, table in (("readings_mean", "readings"), ("nothing_mean", "no_readings")):
        write(
            folder,
            f"{name}.yaml",
            f"""\
name: {name}
sources:
  db: {{kind: sql, connection: {{url: "{url}"}}, table: {table}}}
steps:
  - {{name: extract, type: extract, source: db}}
  - name: mean
    type: transform
    depends_on: [extract]
    ops:
      - aggregate: {{by: [site], aggs: {{avg_reading: {{fn: mean, column: reading, round: 2}}}}}}
  - {{name: load, type: load, depends_on: [mean], destination: {{table: {name}, mode: overwrite}}}}
""",
        )
    result = run_flow("readings_mean", folder)
    assert result["status"] == "completed", result.get("error_message")
    loaded = table_rows(hw_env.warehouse_url, "readings_mean")
    assert loaded is not None and loaded.rows() == [("a", None)]
    empty = run_flow("nothing_mean", folder)
    assert empty["status"] == "completed", empty.get("error_message")
    made = table_rows(hw_env.warehouse_url, "nothing_mean")
    assert made is not None and made.height == 0
    with sa.create_engine(hw_env.warehouse_url).connect() as conn:
        types = {c["name"]: str(c["type"]) for c in sa.inspect(conn).get_columns("nothing_mean")}
    assert types == {"site": "TEXT", "avg_reading": "DOUBLE"}  # typed, not the text of a null column


# 7 ------------------------------------------------------------------ no serial key


@pytest.mark.postgres
def test_7_a_single_integer_key_is_not_made_a_serial_column(
    hw_env: Settings, tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEADWATER_WAREHOUSE_URL", pg_url)
    folder = tmp_path / "specs"
    write(folder, "feed.csv", "id,amount\n5,10\n9,20\n")
    write(
        folder,
        "keyed.yaml",
        """\
name: keyed
sources:
  feed: {kind: file, path: feed.csv}
steps:
  - {name: extract, type: extract, source: feed}
  - name: load
    type: load
    depends_on: [extract]
    destination: {table: keyed, mode: upsert, primary_key: [id]}
""",
    )
    assert run_flow("keyed", folder)["status"] == "completed"
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        columns = conn.exec_driver_sql(
            "SELECT column_name, column_default, is_identity FROM information_schema.columns "
            "WHERE table_name = 'keyed' ORDER BY ordinal_position"
        ).all()
        serial = conn.exec_driver_sql("SELECT pg_get_serial_sequence('keyed', 'id')").scalar()
    engine.dispose()
    assert [tuple(c) for c in columns] == [("id", None, "NO"), ("amount", None, "NO")]
    assert serial is None


# the run process: crash and cleanup ---------------------------------------------------------------


def _worker_of(supervisor: psutil.Process, timeout: float = 60) -> psutil.Process:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in supervisor.children():
            try:
                if child.environ().get("HEADWATER_WORKER") == "1":
                    return child
            except psutil.Error:
                continue
        time.sleep(0.1)
    raise AssertionError("the worker did not start")


@pytest.mark.slow
def test_a_crashed_run_process_leaves_no_server_behind_and_the_run_says_why(
    hw_env: Settings, tmp_path: Path
) -> None:
    """The worker dies by SIGSEGV mid-run (as Polars' parser did on a huge expression): the
    temporary Prefect API it used is ended, and the run is recorded crashed with the signal."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    release = threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            release.wait(120)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"[]")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    folder = tmp_path / "specs"
    write(
        folder,
        "slow_api.yaml",
        f"""\
name: slow_api
sources:
  api: {{kind: rest, url: "http://127.0.0.1:{server.server_address[1]}/x", timeout: 120, max_retries: 0}}
steps:
  - {{name: extract, type: extract, source: api}}
""",
    )
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "headwater.cli", "run", "slow_api", "--pipelines", str(folder)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        supervisor = psutil.Process(proc.pid)
        worker = _worker_of(supervisor, timeout=180)
        store = Store(hw_env.database_url)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # the flow is in its extract step
            steps = store.steps(store.runs("slow_api")[0]["id"]) if store.runs("slow_api") else []
            if any(s["status"] == "running" for s in steps):
                break
            time.sleep(0.2)
        servers = [p for p in supervisor.children(recursive=True) if "uvicorn" in " ".join(p.cmdline())]
        assert servers, "a temporary Prefect API serves the run"
        worker.send_signal(signal.SIGSEGV)
        out, err = proc.communicate(timeout=60)
    finally:
        release.set()
        server.shutdown()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err[-3000:]
    assert "slow_api: crashed" in out and "was killed by SIGSEGV before finishing the run" in out
    for p in servers:
        assert not p.is_running() or p.status() == psutil.STATUS_ZOMBIE
    (run,) = store.runs("slow_api")
    assert (run["status"], run["error_type"]) == ("crashed", "Crashed")
    assert "was killed by SIGSEGV" in run["error_message"]
    assert {s["step_name"]: s["status"] for s in store.steps(run["id"])} == {"extract": "crashed"}
