"""Alerting after a run: the run's typed outcome through the alert engine (headwater.alerting.after_run)."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from headwater.pipeline.outcome import RunOutcome
from headwater.settings import Settings


@task(cache_policy=NONE, persist_result=False)
def notify_alerts(outcome: RunOutcome, settings: Settings, secrets: set[str]) -> int:
    """Messages sent for this run (0 when HEADWATER_ALERTS is not set). A channel that refuses is
    recorded by the engine and logged here; it does not fail the pipeline's run."""
    from prefect.settings import PREFECT_UI_URL

    from headwater.alerting import DeliveryFailed
    from headwater.alerting.after_run import alert_on
    from headwater.store import Store

    logger = get_run_logger()
    links = {}
    ui = PREFECT_UI_URL.value()
    if ui and outcome.flow_run_id:
        links["prefect_run_url"] = f"{str(ui).rstrip('/')}/runs/flow-run/{outcome.flow_run_id}"
    if settings.console_url:
        links["console_url"] = f"{settings.console_url.rstrip('/')}/run?id={outcome.run_id}"
    store = Store(settings.database_url)
    try:
        deliveries = alert_on(outcome, settings, store, secrets=secrets, links=links)
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
