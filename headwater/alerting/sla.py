"""SLA alerts through the alert engine: the rules a spec's `sla:` brings, the SLA check as facts, and
the sweep (`headwater up`'s supervisor each minute, `headwater sla --check` once) that evaluates them
between runs, which is how a deadline with no run at all is noticed.

Rules (one alert instance per rule and pipeline: raised once, re-fired silently while it lasts,
resolved by the first check that finds the objective met again):
- `<pipeline>.sla-breach-<objective>` (warning) for each of success_rate, max_duration, freshness;
- `<pipeline>.sla-projected-miss` (warning) and `<pipeline>.sla-missed-run` (critical) with a deadline.
They go to the spec's `alerts.channels` when it names some, else to the severity's channels of
rules.yaml. rules.yaml may add its own on `sla_breach`, `sla_projected_miss`, `sla_missed_run`."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from headwater.alerting.conditions import sla_only
from headwater.alerting.config import AlertRule, AlertRules, Channels, load_folder
from headwater.alerting.facts import RunFacts
from headwater.alerting.records import Delivery
from headwater.errors import NotificationError, SpecError, SpecProblem
from headwater.settings import Settings
from headwater.sla import findings, first_runs, read_history, resolved
from headwater.spec.models import AlertSettings, PipelineSpec, Sla

log = logging.getLogger(__name__)


def sla_specs(folder: str | Path) -> tuple[list[PipelineSpec], list[SpecProblem]]:
    """The specs in `folder` that declare an `sla:`, read without the checks a run needs (a secret
    not set here does not matter to an SLA), and the problems of the files that do not load."""
    from headwater.spec.loader import load_pipeline, spec_files

    specs, problems = [], []
    for path in spec_files(folder):
        try:
            loaded = load_pipeline(path, check=False, secrets_may_be_unset=True, params_may_be_unset=True)
        except SpecError as exc:
            problems += exc.problems
            continue
        if loaded.spec.sla is not None:
            specs.append(loaded.spec)
    return specs, problems


def sla_rules(
    pipeline: str, sla: Sla | None, alerts: AlertSettings | None, channels: Channels
) -> list[AlertRule]:
    """The rules the pipeline's `sla:` brings (none without one)."""
    if sla is None:
        return []
    wanted = list(alerts.channels) if alerts else []
    known = [c for c in wanted if c in channels.channels] or None
    kinds: list[tuple[str, str, dict[str, Any]]] = [
        (f"sla-breach-{k.replace('_', '-')}", "warning", {"sla_breach": k})
        for k in ("success_rate", "max_duration", "freshness")
        if getattr(sla, k) is not None
    ]
    if sla.deadline is not None:
        kinds += [
            ("sla-projected-miss", "warning", {"sla_projected_miss": True}),
            ("sla-missed-run", "critical", {"sla_missed_run": True}),
        ]
    return [
        AlertRule.model_validate(
            {
                "name": f"{pipeline}.{name}",
                "pipeline": pipeline,
                "severity": severity,
                "when": when,
                "channels": known,
            }
        )
        for name, severity, when in kinds
    ]


def sla_facts(engine: sa.Engine, pipeline: str, sla: Sla | None, now: datetime) -> dict[str, str]:
    """What the SLA check finds for the pipeline now (RunFacts.sla)."""
    if sla is None:
        return {}
    runs = read_history(engine, [pipeline], now - timedelta(seconds=sla.window) - timedelta(days=1))
    return findings(sla, runs, now, first_runs(engine, [pipeline]).get(pipeline)).as_facts()


def _latest(engine: sa.Engine, pipeline: str) -> dict[str, Any] | None:
    from headwater.store.tables import pipeline_executions as pe

    with engine.connect() as conn:
        row = conn.execute(
            sa.select(pe.c.id, pe.c.status, pe.c.duration_seconds, pe.c.records_loaded, pe.c.quality_score)
            .where(pe.c.pipeline_name == pipeline)
            .order_by(pe.c.started_at.desc())
            .limit(1)
        ).first()
    return dict(row._mapping) if row else None


def check_slas(
    settings: Settings,
    engine: sa.Engine,
    specs: Iterable[PipelineSpec],
    now: datetime,
    *,
    deliverer: Any = None,
    secrets: Sequence[str] = (),
    links: dict[str, str] | None = None,
) -> list[Delivery]:
    """The SLA sweep: every spec with an `sla:` checked at `now`, only the SLA rules evaluated (the
    pipeline's and rules.yaml's), messages sent as for a run. A channel that refuses is recorded and
    logged; the other pipelines are still checked. Nothing without HEADWATER_ALERTS."""
    from headwater.alerting.engine import AlertEngine

    slas = [(s, sla) for s in specs if (sla := resolved(s)) is not None]
    if settings.alerts_dir is None or not slas:
        return []
    channels, base = load_folder(settings.alerts_dir)
    shared = [r for r in base.rules if sla_only(r.when)]
    out: list[Delivery] = []
    for spec, sla in slas:
        latest = _latest(engine, spec.name) or {}
        owner = (spec.alerts.owner if spec.alerts and spec.alerts.owner else None) or spec.owner
        facts = RunFacts(
            pipeline=spec.name,
            run_id=latest.get("id") or "(none yet)",
            status=latest.get("status") or "never run",
            duration_seconds=latest.get("duration_seconds"),
            quality_score=latest.get("quality_score"),
            records_loaded=int(latest.get("records_loaded") or 0),
            links=dict(links or {}),
            owner=owner,
            sla=sla_facts(engine, spec.name, sla, now),
        )
        rules = AlertRules(
            severity_channels=base.severity_channels,
            rules=[*shared, *sla_rules(spec.name, sla, spec.alerts, channels)],
        )
        alert_engine = AlertEngine(engine, channels, rules, deliver=deliverer, secrets=secrets)
        try:
            out += alert_engine.process_run(facts, now)
        except NotificationError as exc:
            log.error("%s: an SLA alert could not be delivered: %s", spec.name, exc)
    return out
