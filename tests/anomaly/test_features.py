"""Run-history features, against a hand computation; and the same features read from a real SQLite store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from headwater.anomaly.features import features_from_store, metric_columns, run_features
from headwater.store import Store
from headwater.store.tables import data_pipelines, data_quality_checks, pipeline_executions, step_executions

T0 = datetime(2026, 3, 6, 23, 30, tzinfo=UTC)  # a Friday
T1 = datetime(2026, 3, 7, 23, 45, tzinfo=UTC)  # Saturday, fails
T2 = datetime(2026, 3, 8, 1, 15, tzinfo=UTC)  # Sunday


def _run(run_id: str, started: datetime, status: str, processed: int, loaded: int, quarantined: int) -> dict:
    return {
        "id": run_id,
        "pipeline_name": "p",
        "status": status,
        "started_at": started,
        "duration_seconds": 10.0 + processed / 100,
        "records_processed": processed,
        "records_loaded": loaded,
        "records_quarantined": quarantined,
        "quality_score": None if status == "failed" else 0.9,
        "hostname": "ignored",
    }


RUNS = [  # given newest first, as Store.runs returns them
    _run("c", T2, "completed", 400, 380, 20),
    _run("b", T1, "failed", 0, 0, 0),
    _run("a", T0, "completed_with_warnings", 200, 190, 10),
]


def _check(run_id: str, rule: str, table: str, checked: int, failed: int, kind: str = "not_null") -> dict:
    return {
        "execution_id": run_id,
        "rule_name": rule,
        "table_name": table,
        "expectation_type": f"expect_column_values_to_{'not_be_null' if kind == 'not_null' else 'be_unique'}",
        "records_checked": checked,
        "records_failed": failed,
    }


CHECKS = [
    _check("a", "id_nn", "orders", 200, 2),
    _check("c", "id_nn", "orders", 400, 10),
    _check("c", "id_unique", "orders", 400, 50, kind="unique"),  # not a null rule: ignored
    _check("a", "id_nn", "customers", 100, 100),  # another table: ignored when table="orders"
]
STEPS = [
    {"execution_id": "a", "metrics": {"schema_width": 7}},
    {"execution_id": "a", "metrics": {"schema_width": 9}},
    {"execution_id": "c", "metrics": {"inserted": 3}},
]


def _expected() -> pl.DataFrame:
    day = 86_400.0
    return pl.DataFrame(
        {
            "run_id": ["a", "b", "c"],
            "pipeline_name": ["p", "p", "p"],
            "status": ["completed_with_warnings", "failed", "completed"],
            "started_at": [T0, T1, T2],
            "rows_in": [200.0, 0.0, 400.0],
            "rows_out": [190.0, 0.0, 380.0],
            "quarantine_rate": [10 / 200, 0.0, 20 / 400],
            "duration_seconds": [12.0, 10.0, 14.0],
            "quality_score": [0.9, None, 0.9],
            # b: since a; c: since a too (b failed) = 1 day + 1h45m
            "freshness_lag_seconds": [None, day + 15 * 60, day + 105 * 60],
            "hour": pl.Series([23, 23, 1], dtype=pl.Int8),
            "weekday": pl.Series([5, 6, 7], dtype=pl.Int8),
            "day_of_month": pl.Series([6, 7, 8], dtype=pl.Int8),
            "null_rate:id_nn": [2 / 200, None, 10 / 400],
            "schema_width": [9.0, None, None],
        },
        schema_overrides={"started_at": pl.Datetime("us", "UTC")},
    )


def test_features_match_hand_computation() -> None:
    got = run_features(RUNS, CHECKS, STEPS, table="orders")
    assert_frame_equal(got, _expected())
    assert metric_columns(got) == [
        "rows_in",
        "rows_out",
        "quarantine_rate",
        "duration_seconds",
        "quality_score",
        "freshness_lag_seconds",
        "null_rate:id_nn",
        "schema_width",
    ]


def test_features_without_checks_or_step_metrics_skip_those_columns() -> None:
    got = run_features(RUNS)
    assert_frame_equal(got, _expected().drop("null_rate:id_nn", "schema_width"))


def test_features_of_all_tables_pool_the_null_checks_of_a_rule() -> None:
    got = run_features(RUNS, CHECKS)
    assert got["null_rate:id_nn"].to_list() == [102 / 300, None, 10 / 400]


def _insert(store: Store, rows: list[dict[str, Any]], checks: list[dict], steps: list[dict]) -> None:
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(data_pipelines).values(
                id=1,
                name="p",
                pipeline_type="etl",
                tags=[],
                spec_path="p.yaml",
                spec_hash="x",
                created_at=now,
                updated_at=now,
            )
        )
        for r in rows:
            conn.execute(
                sa.insert(pipeline_executions).values(
                    **r,
                    pipeline_id=1,
                    execution_type="scheduled",
                    warnings=[],
                    pid=1,
                    process_started_at=0.0,
                )
            )
        for c in checks:
            conn.execute(
                sa.insert(data_quality_checks).values(
                    **c,
                    pipeline_name="p",
                    step_name="check",
                    suite="s",
                    dimension="completeness",
                    severity="error",
                    action="warn",
                    records_passed=c["records_checked"] - c["records_failed"],
                    pass_rate=1.0,
                    score=1.0,
                    success=True,
                    sample_failures=[],
                    checked_at=now,
                )
            )
        for i, s in enumerate(steps):
            conn.execute(
                sa.insert(step_executions).values(
                    **s, step_name=f"s{i}", step_type="load", status="completed"
                )
            )


def test_features_from_a_sqlite_store_equal_those_from_dicts(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}").migrate()
    try:
        _insert(store, RUNS, CHECKS, STEPS)
        got = features_from_store(store, "p", table="orders")
    finally:
        store.dispose()
    assert_frame_equal(got, _expected())
