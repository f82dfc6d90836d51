"""A synthetic, seeded run history shaped like the store's rows: a daily pipeline at ~02:00 UTC with
weekly seasonality (weekends carry 60% of a weekday's volume), log-normal volume noise, binomial
quarantines and nulls, duration proportional to volume, jittered start times. Faults can be injected
into chosen runs: a volume drop, a null spike or a slowdown."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

PIPELINE = "orders_daily"
TABLE = "orders"
RULE = "customer_id_not_null"
START = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # a Monday


@dataclass
class History:
    runs: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Fault:
    volume: float = 1.0  # multiplies rows in/out
    null_rate: float | None = None  # replaces the not_null rule's failure rate
    slowdown: float = 1.0  # multiplies the duration


def make_history(
    n: int,
    *,
    seed: int = 7,
    faults: dict[int, Fault] | None = None,
    base_rows: float = 10_000,
    null_rate: float = 0.01,
    noise: float = 0.05,
    pipeline: str = PIPELINE,
) -> History:
    rng = np.random.default_rng(seed)
    faults = faults or {}
    out = History()
    for i in range(n):
        fault = faults.get(i, Fault())
        started = START + timedelta(days=i, minutes=float(rng.normal(0, 3)))
        weekend = started.weekday() >= 5
        rows = round(base_rows * (0.6 if weekend else 1.0) * rng.lognormal(0, noise) * fault.volume)
        quarantined = int(rng.binomial(rows, 0.002))
        rate = fault.null_rate if fault.null_rate is not None else null_rate
        nulls = int(rng.binomial(rows, rate))
        duration = (20 + rows * 0.004) * rng.lognormal(0, 0.08) * fault.slowdown
        run_id = str(uuid.UUID(int=int(rng.integers(0, 2**63)) + i))
        out.runs.append(
            {
                "id": run_id,
                "pipeline_name": pipeline,
                "status": "completed",
                "started_at": started,
                "ended_at": started + timedelta(seconds=duration),
                "duration_seconds": duration,
                "records_processed": rows,
                "records_loaded": rows - quarantined,
                "records_inserted": rows - quarantined,
                "records_updated": 0,
                "records_quarantined": quarantined,
                "quality_score": round(1 - (quarantined + nulls) / max(rows, 1) / 2, 4),
            }
        )
        out.checks.append(
            {
                "execution_id": run_id,
                "pipeline_name": pipeline,
                "table_name": TABLE,
                "rule_name": RULE,
                "expectation_type": "expect_column_values_to_not_be_null",
                "records_checked": rows,
                "records_failed": nulls,
                "records_passed": rows - nulls,
            }
        )
        out.steps.append({"execution_id": run_id, "step_name": "load", "metrics": {"schema_width": 12}})
    return out
