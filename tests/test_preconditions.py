"""A spec's `when:` through the real flow: a scheduled (or triggered) run with nothing new is recorded
`skipped` with the reason, loads nothing, and ends in a Prefect state that triggers nothing
downstream; once there is something new, the next scheduled run loads it. A manual run ignores
preconditions (a person asked for it)."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from headwater.settings import Settings
from headwater.store import Store
from tests.conftest import run_flow

pytestmark = pytest.mark.prefect

FILES = """
name: hw_when_files
sources:
  feed: {kind: file, path: "data/in/*.csv"}
steps:
  - {name: extract, type: extract, source: feed}
  - {name: load, type: load, depends_on: [extract], destination: {table: when_files, mode: overwrite}}
when: {new_files: "data/in/*.csv"}
"""

ROWS = """
name: hw_when_rows
sources:
  orders:
    kind: sql
    connection: {url: "sqlite:///SOURCE"}
    table: orders
    incremental: {cursor: id}
steps:
  - {name: extract, type: extract, source: orders}
  - name: load
    type: load
    depends_on: [extract]
    destination: {table: when_rows, mode: upsert, primary_key: [id]}
when: {new_rows: orders}
"""


def _statuses(settings: Settings, pipeline: str) -> list[tuple[str, str, list[str]]]:
    store = Store(settings.database_url)
    try:
        runs = store.runs(pipeline, limit=50)
    finally:
        store.dispose()
    return [(r["execution_type"], r["status"], r["warnings"] or []) for r in reversed(runs)]


def _count(settings: Settings, table: str) -> int:
    engine = sa.create_engine(settings.warehouse_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def test_new_files(hw_env: Settings, spec_dir: Path, prefect_api: str) -> None:
    (spec_dir / "data" / "in").mkdir()
    first = spec_dir / "data" / "in" / "a.csv"
    first.write_text("id,amount\n1,10\n2,20\n")
    (spec_dir / "when_files.yaml").write_text(FILES)

    assert (
        run_flow("hw_when_files", spec_dir, execution_type="scheduled")["status"] == "completed"
    )  # first run
    skipped = run_flow("hw_when_files", spec_dir, execution_type="scheduled")
    assert skipped["status"] == "skipped"
    assert "none of the 1 file(s) matching data/in/*.csv changed" in skipped["reason"]
    assert run_flow("hw_when_files", spec_dir)["status"] == "completed"  # manual: runs all the same

    time.sleep(0.05)
    (spec_dir / "data" / "in" / "b.csv").write_text("id,amount\n3,30\n")
    later = time.time() + 5
    os.utime(spec_dir / "data" / "in" / "b.csv", (later, later))
    assert run_flow("hw_when_files", spec_dir, execution_type="triggered")["status"] == "completed"
    assert _count(hw_env, "when_files") == 3

    runs = _statuses(hw_env, "hw_when_files")
    assert [(kind, status) for kind, status, _ in runs] == [
        ("scheduled", "completed"),
        ("scheduled", "skipped"),
        ("manual", "completed"),
        ("triggered", "completed"),
    ]
    assert runs[1][2] == [skipped["reason"]]


def test_new_rows_past_the_watermark(
    hw_env: Settings, spec_dir: Path, tmp_path: Path, prefect_api: str
) -> None:
    source = tmp_path / "source.db"
    with sqlite3.connect(source) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount INTEGER)")
        conn.executemany("INSERT INTO orders VALUES (?, ?)", [(1, 5), (2, 7)])
    (spec_dir / "when_rows.yaml").write_text(ROWS.replace("SOURCE", str(source)))

    assert run_flow("hw_when_rows", spec_dir, execution_type="scheduled")["status"] == "completed"
    skipped = run_flow("hw_when_rows", spec_dir, execution_type="scheduled")
    assert skipped["status"] == "skipped"
    assert skipped["reason"] == "when.new_rows: source orders has no rows past its watermark (id > 2)"

    with sqlite3.connect(source) as conn:
        conn.execute("INSERT INTO orders VALUES (3, 11)")
    done = run_flow("hw_when_rows", spec_dir, execution_type="scheduled")
    assert done["status"] == "completed" and done["records_inserted"] == 1
    engine = sa.create_engine(hw_env.warehouse_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT sum(amount), count(*) FROM when_rows")).one() == (23, 3)
    engine.dispose()
    assert [s for _, s, _ in _statuses(hw_env, "hw_when_rows")] == ["completed", "skipped", "completed"]


def test_a_skipped_run_ends_in_a_state_that_triggers_nothing(
    hw_env: Settings, spec_dir: Path, prefect_api: str
) -> None:
    from flows.pipeline import flow_for

    (spec_dir / "data" / "in").mkdir()
    (spec_dir / "data" / "in" / "a.csv").write_text("id,amount\n1,10\n")
    (spec_dir / "when_files.yaml").write_text(FILES)
    run_flow("hw_when_files", spec_dir, execution_type="scheduled")
    state = flow_for("hw_when_files")(
        pipeline="hw_when_files", pipelines_dir=str(spec_dir), execution_type="scheduled", return_state=True
    )
    # the deployment triggers expect prefect.flow-run.Completed: this run's event is ...Skipped
    assert (state.type.value, state.name) == ("COMPLETED", "Skipped")
    assert state.result()["status"] == "skipped"


FRESHER = """
name: hw_when_fresher
sources:
  upstream: {kind: sql, table: when_files}
steps:
  - {name: extract, type: extract, source: upstream}
  - {name: load, type: load, depends_on: [extract], destination: {table: when_fresher, mode: overwrite}}
when: {fresher: {table: when_files}}
"""


def test_fresher_upstream_table(hw_env: Settings, spec_dir: Path, prefect_api: str) -> None:
    """A downstream pipeline runs only when its upstream table was loaded since its own last run."""
    (spec_dir / "data" / "in").mkdir()
    (spec_dir / "data" / "in" / "a.csv").write_text("id,amount\n1,10\n2,20\n")
    (spec_dir / "when_files.yaml").write_text(FILES)
    (spec_dir / "when_fresher.yaml").write_text(FRESHER)
    assert run_flow("hw_when_files", spec_dir)["status"] == "completed"

    assert run_flow("hw_when_fresher", spec_dir, execution_type="triggered")["status"] == "completed"
    skipped = run_flow("hw_when_fresher", spec_dir, execution_type="scheduled")
    assert skipped["status"] == "skipped"
    assert skipped["reason"].startswith("when.fresher: when_files last changed ")
    assert run_flow("hw_when_files", spec_dir)["status"] == "completed"  # the upstream loads again
    assert run_flow("hw_when_fresher", spec_dir, execution_type="scheduled")["status"] == "completed"
    assert [s for _, s, _ in _statuses(hw_env, "hw_when_fresher")] == ["completed", "skipped", "completed"]
    assert _count(hw_env, "when_fresher") == 2
