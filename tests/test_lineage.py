"""Acceptance: after the demo, data_lineage holds column-level lineage for every example pipeline,
and lineage follows data across pipelines (carrier_monthly reads what flights_daily loaded)."""

from __future__ import annotations

import pytest

from headwater.cli import main
from headwater.cli.demo import DEMO_PIPELINES
from headwater.connections import display_url
from headwater.settings import Settings
from headwater.spec.loader import load_pipelines
from headwater.store import Store
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.prefect


def edges(rows: list[dict]) -> set[tuple[str, str, str, str, str]]:  # type: ignore[type-arg]
    return {
        (
            r["source_table"],
            r["source_column"],
            r["target_table"],
            r["target_column"],
            r["transformation_type"],
        )
        for r in rows
    }


def test_demo_writes_lineage_for_every_example(hw_env: Settings, prefect_api: str) -> None:
    assert main(["demo"]) == 0
    store = Store(hw_env.database_url)
    rows = store.lineage()
    pipelines = set(DEMO_PIPELINES)
    assert pipelines <= set(load_pipelines(EXAMPLES))
    assert {r["pipeline_name"] for r in rows} == pipelines
    got = edges(rows)
    assert ("flights", "dep_delay", "carrier_daily", "avg_dep_delay", "aggregation") in got
    assert ("weather", "wind_speed", "carrier_daily", "avg_wind_speed", "aggregation") in got
    assert ("airlines", "name", "carrier_daily", "carrier_name", "join") in got
    assert ("flights", "carrier", "carrier_daily", "carrier", "direct") in got
    assert {
        ("flights", c, "carrier_daily", "flight_date", "calculation") for c in ("year", "month", "day")
    } <= got
    assert ("flights", "*", "carrier_daily", "flights", "aggregation") in got
    # nothing else feeds avg_dep_delay
    assert {e for e in got if e[2:4] == ("carrier_daily", "avg_dep_delay")} == {
        ("flights", "dep_delay", "carrier_daily", "avg_dep_delay", "aggregation")
    }
    # across pipelines: the report's source is the table flights_daily loaded, in the same warehouse
    warehouse = display_url(hw_env.warehouse_url)
    monthly = [
        r for r in rows if r["pipeline_name"] == "carrier_monthly" and r["target_column"] == "cancelled"
    ]
    assert [(r["source_dataset"], r["source_table"], r["source_column"]) for r in monthly] == [
        (warehouse, "carrier_daily", "cancelled")
    ]
    daily_targets = {
        (r["target_dataset"], r["target_table"]) for r in rows if r["pipeline_name"] == "flights_daily"
    }
    assert daily_targets == {(warehouse, "carrier_daily")}
    vendor = {e for e in got if e[2] == "vendor_prices"}
    assert ("feed", "price", "vendor_prices", "price_gbp", "calculation") in vendor
    assert ("feed", "vendor_id", "vendor_prices", "vendor_id", "direct") in vendor
    # every loaded column of every target has lineage
    for table, columns in {
        "carrier_daily": {
            "flight_date",
            "carrier",
            "carrier_name",
            "flights",
            "cancelled",
            "avg_dep_delay",
            "avg_arr_delay",
            "avg_wind_speed",
        },
        "carrier_monthly": {
            "month",
            "carrier",
            "carrier_name",
            "flights",
            "cancelled",
            "days",
            "cancel_rate",
        },
    }.items():
        assert {r["target_column"] for r in rows if r["target_table"] == table} == columns

    claims = {e for e in got if e[2] == "claims_deid"}
    assert ("claims", "patient_id", "claims_deid", "patient_key", "derived") in claims
    assert ("claims", "zip", "claims_deid", "zip3", "calculation") in claims
    assert not {e for e in claims if e[1] in ("patient_name", "ssn", "email", "phone", "address")}

    # a second run replaces, not duplicates
    assert main(["demo"]) == 0
    again = store.lineage()
    assert len(again) == len(rows) and edges(again) == got
