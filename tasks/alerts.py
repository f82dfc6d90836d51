"""Alerting after a run: build the run's facts from the store and let the alert engine decide."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from headwater.settings import Settings

HISTORY_RUNS = 120


def anomalies(store: Any, pipeline: str, run_id: str) -> list[str]:
    """Explanations of what is anomalous about this run, by a model trained on the pipeline's earlier
    runs (IsolationForest with enough history, robust z-scores with less; none below 5 runs)."""
    import polars as pl

    from headwater.anomaly.detector import NotEnoughHistory, train
    from headwater.anomaly.features import features_from_store

    frame = features_from_store(store, pipeline, limit=HISTORY_RUNS)
    current = frame.filter(pl.col("run_id") == run_id)
    try:
        model = train(frame.filter(pl.col("run_id") != run_id), pipeline=pipeline)
    except NotEnoughHistory:
        return []
    return [score.explain() for score in model.score(current) if score.is_anomaly]


@task(cache_policy=NONE, persist_result=False)
def notify_alerts(run_id: str, flow_run_id: str | None, settings: Settings, secrets: set[str]) -> int:
    """Deliveries made for this run (0 when HEADWATER_ALERTS is not set). A channel that refuses
    is recorded by the engine and logged here; it does not fail the pipeline's run."""
    if settings.alerts_dir is None:
        return 0
    from prefect.settings import PREFECT_UI_URL

    from headwater.alerting import AlertEngine, DeliveryFailed, facts_from_store, load_channels, load_rules
    from headwater.store import Store

    logger = get_run_logger()
    channels = load_channels(settings.alerts_dir / "channels.yaml")
    rules = load_rules(settings.alerts_dir / "rules.yaml", channels)
    store = Store(settings.database_url)
    links = {}
    ui = PREFECT_UI_URL.value()
    if ui and flow_run_id:
        links["prefect_run_url"] = f"{str(ui).rstrip('/')}/runs/flow-run/{flow_run_id}"
    if settings.console_url:
        links["console_url"] = f"{settings.console_url.rstrip('/')}/run?id={run_id}"
    try:
        facts = facts_from_store(store, run_id, links)
        facts.anomalies = anomalies(store, facts.pipeline, run_id)
        engine = AlertEngine(store.engine, channels, rules, secrets=secrets)
        deliveries = engine.process_run(facts, datetime.now(UTC))
    except DeliveryFailed as exc:
        logger.error("alert channel %s refused after %d attempt(s); recorded", exc.channel, exc.attempts)
        return 0
    finally:
        store.dispose()
    sent = [d for d in deliveries if d.status == "sent"]
    if deliveries:
        logger.info(
            "alerts: %d message(s) sent, %d held or suppressed", len(sent), len(deliveries) - len(sent)
        )
    return len(sent)
