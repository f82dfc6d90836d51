"""The quality_monitor flow retrains and saves a versioned model per pipeline with enough history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from headwater.anomaly.persist import load_model, versions
from headwater.settings import Settings
from headwater.store import Store
from headwater.store.tables import data_pipelines
from tests.anomaly.test_run_anomalies import add_run

pytestmark = pytest.mark.prefect


def test_monitor_retrains_and_versions_models(hw_env: Settings, prefect_api: str) -> None:
    from flows.quality_monitor import quality_monitor

    store = Store(hw_env.database_url).migrate()
    now = datetime(2026, 1, 1, 6, tzinfo=UTC)
    with store.writer.begin() as conn:
        conn.execute(
            sa.insert(data_pipelines).values(
                id=1,
                name="daily_sync",
                pipeline_type="sync",
                description="",
                tags=[],
                spec_path="x",
                spec_hash="x",
                created_at=now,
                updated_at=now,
            )
        )
    for i in range(25):
        add_run(store, i, 10_000 + (i * 37) % 400, now + timedelta(days=i))
    assert quality_monitor() == {"models": {"daily_sync": 1}, "alerts_sent": 0}
    assert quality_monitor()["models"] == {"daily_sync": 2}
    models = hw_env.home / "models"
    assert versions(models, "daily_sync") == [1, 2]
    model = load_model(models, "daily_sync")
    assert model.version == 2
