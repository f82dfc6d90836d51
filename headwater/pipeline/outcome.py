"""A finished run as one typed value: what the run decided (status, totals, the failing rules and
the first hint, how long it took), handed as is to whoever comes after it (alerting, the flow's
return value, the CLI), instead of a dict inside an exception or a read-back of what was just
written to the store."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from headwater.alerting.facts import RunFacts
from headwater.spec.models import AlertSettings, Sla
from headwater.store.store import RunSummary


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    pipeline: str
    execution_type: str
    summary: RunSummary
    duration_seconds: float | None = None
    flow_run_id: str | None = None
    failed_rules: dict[str, int] = field(default_factory=dict)
    """Quality rule name -> failing row count."""
    top_hint: str | None = None
    owner: str | None = None
    alerts: AlertSettings | None = None
    """The spec's `alerts:` (who owns this pipeline's alerts, on which channels)."""
    sla: Sla | None = None
    """The spec's `sla:`, its time zone resolved (headwater.sla.resolved): checked after the run."""

    @property
    def status(self) -> str:
        return self.summary.status

    @property
    def failed(self) -> bool:
        return self.summary.status == "failed"

    def as_dict(self) -> dict[str, Any]:
        """The flow's return value (JSON-ready)."""
        return {"run_id": self.run_id, "pipeline": self.pipeline, **asdict(self.summary)}

    def facts(self, links: dict[str, str], last_loaded: dict[str, datetime]) -> RunFacts:
        """What the alert engine decides on."""
        s = self.summary
        return RunFacts(
            pipeline=self.pipeline,
            run_id=self.run_id,
            status=s.status,
            error_type=s.error_type,
            error_message=s.error_message,
            failed_step=s.failed_step,
            duration_seconds=self.duration_seconds,
            quality_score=s.quality_score,
            failed_rules=dict(self.failed_rules),
            records_loaded=s.records_loaded,
            records_quarantined=s.records_quarantined,
            links=dict(links),
            top_hint=self.top_hint,
            last_loaded=dict(last_loaded),
            warnings=list(s.warnings),
            breakers=list(s.breakers),
            stale=list(s.stale_data),
            owner=(self.alerts.owner if self.alerts and self.alerts.owner else None) or self.owner,
        )
