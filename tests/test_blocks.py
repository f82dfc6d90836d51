"""Connections as Prefect blocks: register the block types with `prefect block register`, save a
warehouse block, and run a pipeline whose spec names it instead of a URL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from headwater.settings import Settings
from tests.conftest import REPO, run_flow

pytestmark = [pytest.mark.prefect, pytest.mark.postgres]

SPEC = """\
name: vendors_to_block
warehouse: {block: hw-test-warehouse}
sources:
  feed: {kind: file, path: data/vendor_prices.csv, columns: {price: string}}
steps:
  - {name: extract_feed, type: extract, source: feed}
  - name: load_vendors
    type: load
    depends_on: [extract_feed]
    destination: {table: vendor_feed, mode: overwrite}
"""


def test_block_register_and_warehouse_block(
    hw_env: Settings, pg_url: str, spec_dir: Path, prefect_api: str
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "prefect", "block", "register", "-m", "blocks"],
        cwd=REPO,
        env={**os.environ, "PREFECT_API_URL": prefect_api},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Headwater Database" in proc.stdout and "Headwater REST Credentials" in proc.stdout

    from blocks import HeadwaterDatabase

    HeadwaterDatabase(connection_info=pg_url).save("hw-test-warehouse", overwrite=True)
    (spec_dir / "vendors_to_block.yaml").write_text(SPEC)
    result = run_flow("vendors_to_block", spec_dir)
    assert result["status"] == "completed", result
    engine = sa.create_engine(pg_url)
    loaded = pl.read_database("SELECT vendor_id, price FROM vendor_feed ORDER BY vendor_id, price", engine)
    engine.dispose()
    raw = pl.read_csv(spec_dir / "data" / "vendor_prices.csv", schema_overrides={"price": pl.String})
    assert (
        loaded.rows() == raw.select("vendor_id", "price").sort("vendor_id", "price", nulls_last=True).rows()
    )
    # the SQLite default warehouse was not touched
    assert not sa.inspect(sa.create_engine(hw_env.warehouse_url)).has_table("vendor_feed")
