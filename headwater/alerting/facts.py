"""What the alerting engine knows about one finished run (a run's typed outcome makes it:
headwater.pipeline.outcome)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

FAILED_STATUSES = ("failed", "crashed")


@dataclass
class RunFacts:
    """One run's outcome and figures; plain data, so rules can be evaluated without a store."""

    pipeline: str
    run_id: str
    status: str
    error_type: str | None = None
    error_message: str | None = None
    failed_step: str | None = None
    duration_seconds: float | None = None
    quality_score: float | None = None
    failed_rules: dict[str, int] = field(default_factory=dict)
    """Quality rule name -> failing row count."""
    records_loaded: int = 0
    records_quarantined: int = 0
    anomalies: list[str] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)
    """`prefect_run_url` and `console_url`, when known."""
    top_hint: str | None = None
    last_loaded: dict[str, datetime] = field(default_factory=dict)
    """Table -> when it was last loaded (any pipeline), for freshness rules."""
    warnings: list[str] = field(default_factory=list)
    owner: str | None = None
    """Who owns the pipeline (its spec's alerts.owner, else owner), named in messages."""
    sla: dict[str, str] = field(default_factory=dict)
    """What the pipeline's SLA check found (headwater.sla.SlaFindings.as_facts): success_rate,
    max_duration, freshness, projected_miss, missed_run -> in words; empty when all hold."""
    breakers: list[dict[str, Any]] = field(default_factory=list)
    """Circuit breakers in front of its sources that were not closed when the run ended (key, state,
    opened_at, open_until, last_error)."""
    stale: list[dict[str, Any]] = field(default_factory=list)
    """Extracts that loaded their last good data instead of the source (step, breaker, age_seconds)."""

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES

    @property
    def quarantine_rate(self) -> float:
        total = self.records_loaded + self.records_quarantined
        return self.records_quarantined / total if total else 0.0
