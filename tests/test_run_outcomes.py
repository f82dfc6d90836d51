"""Acceptance: a failing critical step fails the run (step, error type and message recorded); a
failing non-critical step leaves the run completed with warnings and the rest loads."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from headwater.settings import Settings
from headwater.store import Store
from tests.conftest import run_flow
from tests.http_json import reply_json

pytestmark = pytest.mark.prefect

SPEC = """\
name: {name}
sources:
  feed: {{kind: file, path: data/vendor_prices.csv, columns: {{price: string}}}}
steps:
  - {{name: extract_feed, type: extract, source: feed}}
  - name: tag
    type: transform
    depends_on: [extract_feed]
    critical: {critical}
    ops:
      - derive: {{price_band: "CASE WHEN {column} > 1000 THEN 'high' ELSE 'low' END"}}
  - name: load_vendors
    type: load
    depends_on: [tag]
    destination: {{table: vendors_raw, mode: append}}
"""


def write_spec(spec_dir: Path, name: str, critical: bool, column: str) -> None:
    text = SPEC.format(name=name, critical=str(critical).lower(), column=column)
    (spec_dir / f"{name}.yaml").write_text(text)


def warehouse_table(settings: Settings, table: str) -> pl.DataFrame | None:
    engine = sa.create_engine(settings.warehouse_url)
    try:
        if not sa.inspect(engine).has_table(table):
            return None
        return pl.read_database(f"SELECT * FROM {table}", engine)
    finally:
        engine.dispose()


def raw_feed(spec_dir: Path) -> pl.DataFrame:
    return pl.read_csv(spec_dir / "data" / "vendor_prices.csv", schema_overrides={"price": pl.String})


def test_failing_critical_step_fails_the_run(hw_env: Settings, spec_dir: Path, prefect_api: str) -> None:
    write_spec(spec_dir, "critical_fail", critical=True, column="CAST(price AS DOUBLE)")
    result = run_flow("critical_fail", spec_dir)
    assert result["status"] == "failed"
    assert result["failed_step"] == "tag"
    assert result["error_type"] == "PermanentError"
    assert "conversion from `str` to `f64` failed" in result["error_message"]
    store = Store(hw_env.database_url)
    run = store.run(result["run_id"])
    assert run is not None
    assert (run["status"], run["failed_step"], run["error_type"]) == ("failed", "tag", "PermanentError")
    assert "conversion from `str` to `f64` failed" in run["error_message"]
    assert run["retry_count"] == 0 and run["records_inserted"] == 0
    steps = {s["step_name"]: s for s in store.steps(result["run_id"])}
    assert steps["extract_feed"]["status"] == "completed"
    assert steps["extract_feed"]["records_out"] == 12
    assert (steps["tag"]["status"], steps["tag"]["attempts"], steps["tag"]["error_type"]) == (
        "failed",
        1,
        "PermanentError",
    )
    assert steps["load_vendors"]["status"] == "skipped"
    assert warehouse_table(hw_env, "vendors_raw") is None  # nothing loaded


def test_failing_non_critical_step_completes_with_warnings(
    hw_env: Settings, spec_dir: Path, prefect_api: str
) -> None:
    write_spec(spec_dir, "soft_fail", critical=False, column="CAST(price AS DOUBLE)")
    result = run_flow("soft_fail", spec_dir)
    assert result["status"] == "completed_with_warnings"
    assert result["failed_step"] is None
    assert len(result["warnings"]) == 1 and "step tag failed" in result["warnings"][0]
    assert result["records_inserted"] == 12
    store = Store(hw_env.database_url)
    steps = {s["step_name"]: s for s in store.steps(result["run_id"])}
    assert steps["tag"]["status"] == "failed"
    assert steps["load_vendors"]["status"] == "completed"
    # the load went on with the best data available: the step's input, untouched
    loaded = warehouse_table(hw_env, "vendors_raw")
    assert loaded is not None
    expected = raw_feed(spec_dir)
    assert_frame_equal(loaded.sort("vendor_id", "updated_at"), expected.sort("vendor_id", "updated_at"))


def test_same_pipeline_without_the_fault_loads_the_derived_column(
    hw_env: Settings, spec_dir: Path, prefect_api: str
) -> None:
    """The control for the two tests above: the same spec with a real column derives price_band."""
    write_spec(spec_dir, "no_fail", critical=True, column="LENGTH(vendor_name)")
    result = run_flow("no_fail", spec_dir)
    assert result["status"] == "completed"
    loaded = warehouse_table(hw_env, "vendors_raw")
    assert loaded is not None
    expected = raw_feed(spec_dir).with_columns(
        price_band=pl.when(pl.col("vendor_name").str.len_chars() > 1000)
        .then(pl.lit("high"))
        .otherwise(pl.lit("low"))
    )
    assert_frame_equal(loaded.sort("vendor_id", "updated_at"), expected.sort("vendor_id", "updated_at"))


SLOW_SPEC = """\
name: slow_api
sources:
  slow: {{kind: rest, url: "http://127.0.0.1:{port}/slow", max_retries: 0, timeout: 30}}
steps:
  - {{name: extract_slow, type: extract, source: slow, timeout: 1}}
  - name: load_slow
    type: load
    depends_on: [extract_slow]
    destination: {{table: slow_rows, mode: append}}
"""


def test_step_timeout_fails_the_step(hw_env: Settings, spec_dir: Path, prefect_api: str) -> None:
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(2.5)
            reply_json(self, b'[{"id": 1}]')

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        (spec_dir / "slow_api.yaml").write_text(SLOW_SPEC.format(port=server.server_address[1]))
        result = run_flow("slow_api", spec_dir)
    finally:
        server.shutdown()
        thread.join()
    assert result["status"] == "failed"
    assert result["failed_step"] == "extract_slow"
    assert result["error_type"] == "TaskRunTimeoutError"
    assert "did not finish within its timeout of 1s" in result["error_message"]
    steps = {s["step_name"]: s for s in Store(hw_env.database_url).steps(result["run_id"])}
    assert (steps["extract_slow"]["status"], steps["extract_slow"]["error_type"]) == (
        "failed",
        "TaskRunTimeoutError",
    )
    assert steps["load_slow"]["status"] == "skipped"
    assert warehouse_table(hw_env, "slow_rows") is None
