"""The wedding vendor-pricing example: messy prices parsed, duplicate vendor rows reduced to the latest,
upserted by vendor id; the failing non-critical price check leaves the run with warnings."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from headwater.settings import Settings
from headwater.store import Store
from tests.conftest import EXAMPLES, run_flow

pytestmark = pytest.mark.prefect


def expected_vendor_prices(csv: Path = EXAMPLES / "data" / "vendor_prices.csv") -> pl.DataFrame:
    """The vendor_prices result computed directly from one feed CSV."""
    raw = pl.read_csv(csv, infer_schema=False)
    latest = raw.sort("updated_at").group_by("vendor_id").last()
    digits = pl.col("price").str.replace_all(r"[£,\s]", "")
    return (
        latest.with_columns(
            price_gbp=digits.cast(pl.Float64, strict=False),
            updated_at=pl.col("updated_at").str.to_datetime("%Y-%m-%d %H:%M:%S"),
        )
        .with_columns(price_missing=pl.col("price_gbp").is_null())
        .select(
            "vendor_id",
            "vendor_name",
            "category",
            "city",
            "price_gbp",
            "price_missing",
            "currency",
            "updated_at",
        )
        .sort("vendor_id")
    )


def test_vendor_prices_example(hw_env: Settings, prefect_api: str) -> None:
    expected = expected_vendor_prices()
    assert expected.height == 9
    assert expected.filter(pl.col("vendor_id") == "V001")["price_gbp"].item() == 1250.0
    assert expected["price_missing"].sum() == 1  # V008 "TBC"

    result = run_flow("vendor_prices", EXAMPLES)
    assert result["status"] == "completed_with_warnings"
    assert result["warnings"] == [
        "step check_prices failed: DataQualityError: quality checks of check_prices failed "
        "(price_present: 1 of 9 rows)"
    ]
    assert (result["records_processed"], result["records_inserted"]) == (12, 9)
    engine = sa.create_engine(hw_env.warehouse_url)
    loaded = pl.read_database("SELECT * FROM vendor_prices ORDER BY vendor_id", engine).with_columns(
        pl.col("price_missing").cast(pl.Boolean),
        pl.col("updated_at").str.to_datetime("%Y-%m-%d %H:%M:%S%.f"),
    )
    engine.dispose()
    assert_frame_equal(loaded, expected)
    steps = {s["step_name"]: s for s in Store(hw_env.database_url).steps(result["run_id"])}
    assert steps["check_prices"]["status"] == "failed"
    assert steps["load_vendor_prices"]["records_in"] == 9
