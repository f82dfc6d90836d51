"""The monitor: on a schedule, retrain every pipeline's anomaly model on its recent history (saved
with version and training window under HEADWATER_HOME/models) and advance alerts (escalations,
expired silences, messages held by quiet hours)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger

from headwater.settings import Settings


@flow(name="quality_monitor", persist_result=False)
def quality_monitor(history_runs: int = 500) -> dict[str, Any]:
    """Retrain the anomaly models; tick the alert engine when alerts are configured."""
    from headwater.anomaly.detector import NotEnoughHistory
    from headwater.anomaly.models import retrain
    from headwater.store import Store
    from headwater.store.tables import data_pipelines

    logger = get_run_logger()
    settings = Settings.from_env()
    store = Store(settings.database_url).migrate()
    models = settings.home / "models"
    trained: dict[str, int] = {}
    try:
        with store.engine.connect() as conn:
            pipelines = [r.name for r in conn.execute(data_pipelines.select())]
        for pipeline in pipelines:
            try:
                model = retrain(store, pipeline, models, history_runs=history_runs)
            except NotEnoughHistory:
                continue
            trained[pipeline] = model.version or 0
        sent = 0
        if settings.alerts_dir is not None:
            from headwater.alerting import engine_for

            engine = engine_for(store.engine, settings.alerts_dir)
            sent = len([d for d in engine.tick(datetime.now(UTC)) if d.status == "sent"])
    finally:
        store.dispose()
    logger.info("retrained %d model(s) %s; %d alert message(s) sent", len(trained), trained, sent)
    return {"models": trained, "alerts_sent": sent}
