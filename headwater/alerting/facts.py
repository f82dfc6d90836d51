"""What the alerting engine knows about one finished run (built from the store by the caller)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from headwater.store.store import aware

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

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES

    @property
    def quarantine_rate(self) -> float:
        total = self.records_loaded + self.records_quarantined
        return self.records_quarantined / total if total else 0.0


def facts_from_store(store: Any, run_id: str, links: dict[str, str] | None = None) -> RunFacts:
    """RunFacts of a finished run, from the metadata store (run record, quality checks, loads)."""
    run = store.run(run_id)
    if run is None:
        raise KeyError(f"no run {run_id}")
    checks = store.quality_checks(run_id)
    failing = {c["rule_name"]: int(c["records_failed"]) for c in checks if not c["success"]}
    hint = next((c["remediation"] for c in checks if not c["success"] and c["remediation"]), None)
    last = {
        d["table_name"]: aware(d["last_loaded"]) for d in store.last_loads() if d["last_loaded"] is not None
    }
    return RunFacts(
        pipeline=run["pipeline_name"],
        run_id=run_id,
        status=run["status"],
        error_type=run["error_type"],
        error_message=run["error_message"],
        failed_step=run["failed_step"],
        duration_seconds=run["duration_seconds"],
        quality_score=run["quality_score"],
        failed_rules=failing,
        records_loaded=run["records_loaded"],
        records_quarantined=run["records_quarantined"],
        links=dict(links or {}),
        top_hint=hint,
        last_loaded=last,
        warnings=list(run.get("warnings") or []),
    )
