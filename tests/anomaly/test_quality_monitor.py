"""The quality_monitor flow retrains and saves a versioned model per pipeline with enough history."""

from __future__ import annotations

import pytest

from headwater.anomaly.persist import load_model, versions
from headwater.settings import Settings
from headwater.store import Store
from tests.anomaly.test_run_anomalies import seed_history

pytestmark = pytest.mark.prefect


def test_monitor_retrains_and_versions_models(hw_env: Settings, prefect_api: str) -> None:
    from flows.quality_monitor import quality_monitor

    seed_history(Store(hw_env.database_url).migrate(), 25)
    assert quality_monitor() == {"models": {"daily_sync": 1}, "alerts_sent": 0}
    assert quality_monitor()["models"] == {"daily_sync": 2}
    models = hw_env.home / "models"
    assert versions(models, "daily_sync") == [1, 2]
    model = load_model(models, "daily_sync")
    assert model.version == 2
