"""After a run: its outcome through the alert engine. The rules are rules.yaml's plus the ones the
pipeline's spec asks for (`alerts: {on: [failure, warning, success], channels, owner}`); the facts are
the run's typed outcome (nothing read back from the store but the other tables' last loads, for
freshness rules); anomalies come from the pipeline's saved model (headwater.anomaly.models)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

from headwater.alerting.config import AlertRule, AlertRules, Channels, load_folder
from headwater.alerting.sla import sla_facts, sla_rules
from headwater.pipeline.outcome import RunOutcome
from headwater.settings import Settings
from headwater.store.store import Store, aware

log = logging.getLogger(__name__)
_ON = {
    "failure": ("critical", {"run_failed": True}),
    "warning": ("warning", {"run_warned": True}),
    "success": ("info", {"run_succeeded": True}),
}


def spec_rules(outcome: RunOutcome, channels: Channels) -> list[AlertRule]:
    """The pipeline's own rules from its spec's `alerts:`; a channel name channels.yaml lacks is
    logged and left out (the rule then goes to the severity's channels if none is left)."""
    if outcome.alerts is None:
        return []
    wanted = list(outcome.alerts.channels)
    unknown = [c for c in wanted if c not in channels.channels]
    if unknown:
        log.error(
            "%s: alerts.channels names %s, not in channels.yaml (known: %s): left out",
            outcome.pipeline,
            ", ".join(unknown),
            ", ".join(sorted(channels.channels)),
        )
    known = [c for c in wanted if c in channels.channels]
    rules = []
    for on in outcome.alerts.on:
        severity, when = _ON[on]
        rules.append(
            AlertRule.model_validate(
                {
                    "name": f"{outcome.pipeline}.on-{on}",
                    "pipeline": outcome.pipeline,
                    "severity": severity,
                    "when": when,
                    "channels": known or None,
                }
            )
        )
    return rules


def breaker_rules(outcome: RunOutcome, channels: Channels, base: AlertRules) -> list[AlertRule]:
    """Every pipeline's built-in `<pipeline>.circuit-open` rule (warning): raised while a circuit
    breaker in front of one of its sources is open, resolved by the first run that finds them all
    closed. To the spec's `alerts.channels` when it names some, else the warning channels; a rule of
    rules.yaml on `circuit_open` for this pipeline replaces it."""
    for rule in base.rules:
        if "circuit_open" in rule.when.key() and fnmatchcase(outcome.pipeline, rule.pipeline or "*"):
            return []
    wanted = list(outcome.alerts.channels) if outcome.alerts else []
    known = [c for c in wanted if c in channels.channels]
    return [
        AlertRule.model_validate(
            {
                "name": f"{outcome.pipeline}.circuit-open",
                "pipeline": outcome.pipeline,
                "severity": "warning",
                "when": {"circuit_open": True},
                "channels": known or None,
            }
        )
    ]


def alert_on(
    outcome: RunOutcome,
    settings: Settings,
    store: Store,
    *,
    secrets: set[str],
    links: Mapping[str, str],
    deliverer: Any = None,
) -> list[Any]:
    """The deliveries made for this run (none when HEADWATER_ALERTS is not set)."""
    from headwater.alerting.engine import AlertEngine

    if settings.alerts_dir is None:
        if outcome.alerts is not None:
            log.warning(
                "%s: the spec declares alerts, but HEADWATER_ALERTS is not set: no channel to send them to",
                outcome.pipeline,
            )
        return []
    channels, base = load_folder(settings.alerts_dir)
    rules = AlertRules(
        severity_channels=base.severity_channels,
        rules=[
            *base.rules,
            *spec_rules(outcome, channels),
            *breaker_rules(outcome, channels, base),
            *sla_rules(outcome.pipeline, outcome.sla, outcome.alerts, channels),
        ],
    )
    last = {
        d["table_name"]: aware(d["last_loaded"]) for d in store.last_loads() if d["last_loaded"] is not None
    }
    facts = outcome.facts(dict(links), last)
    now = datetime.now(UTC)
    facts.sla = sla_facts(store.engine, outcome.pipeline, outcome.sla, now)
    from headwater.anomaly.models import anomalies_of

    facts.anomalies = anomalies_of(store, outcome.pipeline, outcome.run_id, settings.home / "models")
    engine = AlertEngine(store.engine, channels, rules, deliver=deliverer, secrets=secrets)
    return list(engine.process_run(facts, now))
