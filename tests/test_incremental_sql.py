"""Acceptance: incremental SQL extraction picks up only new rows on the second run; the watermark
does not move when the load fails. Source: a real PostgreSQL database; warehouse: SQLite."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from headwater.connections import make_engine
from headwater.load import read_watermark
from headwater.settings import Settings
from headwater.store import Store
from tests.conftest import run_flow

pytestmark = [pytest.mark.prefect, pytest.mark.postgres]

SPEC = """\
name: orders_sync
type: sync
sources:
  orders:
    kind: sql
    connection: {url: "${ORDERS_DB_URL}"}
    table: orders
    columns: [id, customer, amount, updated_at]
    incremental: {cursor: updated_at}
steps:
  - {name: extract_orders, type: extract, source: orders}
  - name: load_orders
    type: load
    depends_on: [extract_orders]
    destination: {table: orders_copy, mode: append}
"""
T0 = datetime(2026, 3, 1, 9, 0, 0)


def add_orders(engine: sa.Engine, first_id: int, count: int) -> None:
    rows = [
        {
            "id": i,
            "customer": f"c{i % 4}",
            "amount": round(i * 10.25, 2),
            "updated_at": T0 + timedelta(minutes=i),
        }
        for i in range(first_id, first_id + count)
    ]
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO orders VALUES (:id, :customer, :amount, :updated_at)"), rows)


def source_rows(engine: sa.Engine) -> pl.DataFrame:
    return pl.read_database("SELECT id, customer, amount, updated_at FROM orders ORDER BY id", engine)


def warehouse_rows(settings: Settings) -> pl.DataFrame:
    engine = sa.create_engine(settings.warehouse_url)
    try:
        frame = pl.read_database(
            "SELECT id, customer, amount, updated_at FROM orders_copy ORDER BY id", engine
        )
    finally:
        engine.dispose()
    return frame.with_columns(pl.col("updated_at").str.to_datetime("%Y-%m-%d %H:%M:%S%.f"))


def test_incremental_by_cursor(
    hw_env: Settings, pg_url: str, spec_dir: Path, prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERS_DB_URL", pg_url)
    (spec_dir / "orders_sync.yaml").write_text(SPEC)
    source = sa.create_engine(pg_url)
    with source.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE orders (id int PRIMARY KEY, customer text, amount double precision, "
            "updated_at timestamp NOT NULL)"
        )
    add_orders(source, 1, 5)
    warehouse = make_engine(hw_env.warehouse_url)
    store = Store(hw_env.database_url)

    first = run_flow("orders_sync", spec_dir)
    assert (first["status"], first["records_processed"], first["records_inserted"]) == ("completed", 5, 5)
    assert read_watermark(warehouse, "orders_sync", "orders") == T0 + timedelta(minutes=5)

    add_orders(source, 6, 3)
    second = run_flow("orders_sync", spec_dir)
    assert (second["status"], second["records_processed"], second["records_inserted"]) == ("completed", 3, 3)
    assert_frame_equal(warehouse_rows(hw_env), source_rows(source))
    extract = {s["step_name"]: s for s in store.steps(second["run_id"])}["extract_orders"]
    assert extract["metrics"]["watermark_from"] == str(T0 + timedelta(minutes=5))
    assert extract["metrics"]["watermark_to"] == str(T0 + timedelta(minutes=8))

    # a load that fails: the warehouse refuses inserts; nothing new lands and the watermark stays
    with warehouse.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON orders_copy "
            "BEGIN SELECT RAISE(ABORT, 'warehouse refuses rows'); END"
        )
    add_orders(source, 9, 2)
    failed = run_flow("orders_sync", spec_dir)
    assert (failed["status"], failed["failed_step"]) == ("failed", "load_orders")
    assert "warehouse refuses rows" in failed["error_message"]
    assert read_watermark(warehouse, "orders_sync", "orders") == T0 + timedelta(minutes=8)
    assert warehouse_rows(hw_env).height == 8

    with warehouse.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER refuse")
    fourth = run_flow("orders_sync", spec_dir)
    assert (fourth["status"], fourth["records_processed"], fourth["records_inserted"]) == ("completed", 2, 2)
    assert_frame_equal(warehouse_rows(hw_env), source_rows(source))
    assert read_watermark(warehouse, "orders_sync", "orders") == T0 + timedelta(minutes=10)

    nothing_new = run_flow("orders_sync", spec_dir)
    assert (nothing_new["records_processed"], nothing_new["records_inserted"]) == (0, 0)
    assert warehouse_rows(hw_env).height == 10
    source.dispose()
    warehouse.dispose()
