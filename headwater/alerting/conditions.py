"""Alert conditions: typed, combinable with all/any, evaluated against RunFacts at a given time."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from headwater.alerting.facts import RunFacts


class _Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def fired(self, facts: RunFacts, now: datetime) -> list[str]:
        """What fired, in words; empty when the condition does not hold."""
        raise NotImplementedError

    def key(self) -> str:
        """A canonical text of the condition (part of an alert's fingerprint)."""
        raise NotImplementedError


class RunFailed(_Condition):
    run_failed: Literal[True] = Field(description="fires when the run failed or crashed")

    def fired(self, facts: RunFacts, now: datetime) -> list[str]:
        if not facts.failed:
            return []
        where = f" in step {facts.failed_step}" if facts.failed_step else ""
        what = f"{facts.error_type}: {facts.error_message}" if facts.error_type else facts.error_message
        return [f"run {facts.status}{where}" + (f" — {what}" if what else "")]

    def key(self) -> str:
        return "run_failed"


class DurationOver(_Condition):
    duration_over_seconds: float = Field(gt=0, description="fires when the run took longer than this")

    def fired(self, facts: RunFacts, now: datetime) -> list[str]:
        d = facts.duration_seconds
        if d is None or d <= self.duration_over_seconds:
            return []
        return [f"run took {d:.0f} s (limit {self.duration_over_seconds:.0f} s)"]

    def key(self) -> str:
        return f"duration_over_seconds:{self.duration_over_seconds:g}"


class QualityBelow(_Condition):
    quality_score_below: float = Field(
        description="fires when the run's quality score (0-100, as runs and the console show it) is "
        "below this"
    )

    @field_validator("quality_score_below")
    @classmethod
    def _percent(cls, value: float) -> float:
        if not 1 < value <= 100:
            hint = f"write {value * 100:g} for {value:.0%}" if 0 < value <= 1 else "give a score, 1 to 100"
            raise ValueError(f"{value:g} is not on the 0-100 scale quality scores use: {hint}")
        return value

    def fired(self, facts: RunFacts, now: datetime) -> list[str]:
        s = facts.quality_score
        if s is None or s >= self.quality_score_below:
            return []
        return [f"quality score {s:g} is below {self.quality_score_below:g}"]

    def key(self) -> str:
        return f"quality_score_below:{self.quality_score_below:g}"


class QualityRuleFailing(_Condition):
    quality_rule_failing: str = Field(min_length=1, description="fires when this named quality rule fails")

    def fired(self, facts: RunFacts, now: datetime) -> list[str]:
        if self.quality_rule_failing not in facts.failed_rules:
            return []
        n = facts.failed_rules[self.quality_rule_failing]
        return [f"quality rule {self.quality_rule_failing} failed ({n} rows)"]

    def key(self) -> str:
        return f"quality_rule_failing:{self.quality_rule_failing}"


class QuarantineRateOver(_Condition):
    quarantine_rate_over: float = Field(ge=0, le=1, description="fires above this share of rows quarantined")

    def fired(self, facts: RunFacts, now: datetime) -> list[str]:
        rate = facts.quarantine_rate
        if rate <= self.quarantine_rate_over:
            return []
        limit = self.quarantine_rate_over
        return [f"{facts.records_quarantined} rows quarantined ({rate:.1%}, limit {limit:.1%})"]

    def key(self) -> str:
        return f"quarantine_rate_over:{self.quarantine_rate_over:g}"


class RunWarned(_Condition):
    run_warned: Literal[True] = Field(description="fires when the run completed with warnings")

    def fired(self, facts: RunFacts, now: datetime) -> list[str]:
        if facts.status != "completed_with_warnings":
            return []
        return [f"run completed with warnings: {w}" for w in facts.warnings] or [
            "run completed with warnings"
        ]

    def key(self) -> str:
        return "run_warned"


class RunSucceeded(_Condition):
    run_succeeded: Literal[True] = Field(
        description="fires when the run completed (with or without warnings)"
    )

    def fired(self, facts: RunFacts, now: datetime) -> list[str]:
        if facts.status not in ("completed", "completed_with_warnings"):
            return []
        return [f"run {facts.status}: {facts.records_loaded} rows loaded"]

    def key(self) -> str:
        return "run_succeeded"


class AnomalyDetected(_Condition):
    anomaly_detected: Literal[True] = Field(description="fires when the run reports an anomaly")

    def fired(self, facts: RunFacts, now: datetime) -> list[str]:
        return [f"anomaly: {a}" for a in facts.anomalies]

    def key(self) -> str:
        return "anomaly_detected"


class BreakerOpen(_Condition):
    circuit_open: Literal[True] = Field(
        description="fires while a circuit breaker in front of one of the pipeline's sources is open "
        "(or half-open); resolves on the first run that finds them all closed"
    )

    def fired(self, facts: RunFacts, now: datetime) -> list[str]:
        out = []
        for b in facts.breakers:
            error = f"; last error: {b['last_error']}" if b.get("last_error") else ""
            out.append(
                f"circuit breaker {b['key']} is {str(b['state']).replace('_', '-')} "
                f"(opened {b.get('opened_at')}, open until {b.get('open_until')}{error})"
            )
        for s in facts.stale if out else []:
            out.append(
                f"step {s['step']} loaded its last good extract of {s['extracted_at']} "
                f"({s['rows']} rows, {s['age_seconds']:.0f} s old): the data is stale"
            )
        return out

    def key(self) -> str:
        return "circuit_open"


class Stale(_Condition):
    table: str = Field(min_length=1, description="the table that must be loaded regularly")
    not_loaded_for_hours: float = Field(gt=0, description="fires when the table is older than this")

    def fired(self, facts: RunFacts, now: datetime) -> list[str]:
        last = facts.last_loaded.get(self.table)
        if last is None:
            return [f"table {self.table} has never been loaded"]
        hours = (now - last).total_seconds() / 3600
        if hours <= self.not_loaded_for_hours:
            return []
        return [f"table {self.table} not loaded for {hours:.1f} h (limit {self.not_loaded_for_hours:g} h)"]

    def key(self) -> str:
        return f"stale:{self.table}:{self.not_loaded_for_hours:g}"


SlaObjective = Literal["any", "success_rate", "max_duration", "freshness"]
SLA_BREACHES = ("success_rate", "max_duration", "freshness")


class SlaBreach(_Condition):
    sla_breach: SlaObjective = Field(
        description="fires while the pipeline's SLA objective (success_rate, max_duration, freshness; "
        "any: one of them) is missed"
    )

    def fired(self, facts: RunFacts, now: datetime) -> list[str]:
        kinds = SLA_BREACHES if self.sla_breach == "any" else (self.sla_breach,)
        return [f"SLA {k.replace('_', ' ')}: {facts.sla[k]}" for k in kinds if k in facts.sla]

    def key(self) -> str:
        return f"sla_breach:{self.sla_breach}"


class SlaProjectedMiss(_Condition):
    sla_projected_miss: Literal[True] = Field(
        description="fires when the pipeline's run is projected to miss its SLA deadline (and while "
        "that deadline stays missed)"
    )

    def fired(self, facts: RunFacts, now: datetime) -> list[str]:
        found = facts.sla.get("projected_miss")
        return [f"SLA deadline at risk: {found}"] if found else []

    def key(self) -> str:
        return "sla_projected_miss"


class SlaMissedRun(_Condition):
    sla_missed_run: Literal[True] = Field(
        description="fires when the SLA deadline passed without a successful run that day (until one)"
    )

    def fired(self, facts: RunFacts, now: datetime) -> list[str]:
        found = facts.sla.get("missed_run")
        return [f"SLA deadline missed: {found}"] if found else []

    def key(self) -> str:
        return "sla_missed_run"


class AllOf(_Condition):
    all: list[Condition] = Field(min_length=1, description="fires when every condition holds")

    def fired(self, facts: RunFacts, now: datetime) -> list[str]:
        parts = [c.fired(facts, now) for c in self.all]
        return [p for part in parts for p in part] if all(parts) else []

    def key(self) -> str:
        return "all(" + ",".join(c.key() for c in self.all) + ")"


class AnyOf(_Condition):
    any: list[Condition] = Field(min_length=1, description="fires when at least one condition holds")

    def fired(self, facts: RunFacts, now: datetime) -> list[str]:
        return [p for c in self.any for p in c.fired(facts, now)]

    def key(self) -> str:
        return "any(" + ",".join(c.key() for c in self.any) + ")"


_KINDS = {
    "run_failed": "run_failed",
    "run_warned": "run_warned",
    "run_succeeded": "run_succeeded",
    "duration_over_seconds": "duration_over_seconds",
    "quality_score_below": "quality_score_below",
    "quality_rule_failing": "quality_rule_failing",
    "quarantine_rate_over": "quarantine_rate_over",
    "anomaly_detected": "anomaly_detected",
    "circuit_open": "circuit_open",
    "not_loaded_for_hours": "stale",
    "table": "stale",
    "sla_breach": "sla_breach",
    "sla_projected_miss": "sla_projected_miss",
    "sla_missed_run": "sla_missed_run",
    "all": "all",
    "any": "any",
}


def _condition_kind(value: Any) -> str | None:
    """Which condition a mapping is, by its key: a problem is then reported for that kind only."""
    keys = value.keys() if isinstance(value, dict) else type(value).model_fields.keys()
    return next((_KINDS[k] for k in keys if k in _KINDS), None)


Condition = Annotated[
    Annotated[RunFailed, Tag("run_failed")]
    | Annotated[RunWarned, Tag("run_warned")]
    | Annotated[RunSucceeded, Tag("run_succeeded")]
    | Annotated[DurationOver, Tag("duration_over_seconds")]
    | Annotated[QualityBelow, Tag("quality_score_below")]
    | Annotated[QualityRuleFailing, Tag("quality_rule_failing")]
    | Annotated[QuarantineRateOver, Tag("quarantine_rate_over")]
    | Annotated[AnomalyDetected, Tag("anomaly_detected")]
    | Annotated[BreakerOpen, Tag("circuit_open")]
    | Annotated[Stale, Tag("stale")]
    | Annotated[SlaBreach, Tag("sla_breach")]
    | Annotated[SlaProjectedMiss, Tag("sla_projected_miss")]
    | Annotated[SlaMissedRun, Tag("sla_missed_run")]
    | Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")],
    Discriminator(
        _condition_kind,
        custom_error_type="unknown_condition",
        custom_error_message="not a condition: use one of run_failed, run_warned, run_succeeded, "
        "duration_over_seconds, "
        "quality_score_below, quality_rule_failing, quarantine_rate_over, anomaly_detected, circuit_open, "
        "table + not_loaded_for_hours, sla_breach, sla_projected_miss, sla_missed_run, all, any",
    ),
]
AllOf.model_rebuild()
AnyOf.model_rebuild()


def sla_only(condition: _Condition) -> bool:
    """The condition reads nothing but the SLA check (the SLA sweep evaluates only these)."""
    if isinstance(condition, AllOf | AnyOf):
        parts = condition.all if isinstance(condition, AllOf) else condition.any
        return all(sla_only(c) for c in parts)
    return isinstance(condition, SlaBreach | SlaProjectedMiss | SlaMissedRun)
