"""The SLA check at one moment: what the alert conditions sla_breach, sla_projected_miss and
sla_missed_run read (docs/sla.md says how a miss is projected)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from headwater.sla.history import (
    FINISHED,
    OK,
    day_start,
    deadline_time,
    expected_duration,
    local_time,
    span,
    tz_of,
)
from headwater.spec.models import SLA_DAYS, Sla
from headwater.views.frames import rate


@dataclass(frozen=True)
class SlaFindings:
    """What an SLA check finds at one moment, in words, per kind (None: it holds). The alert
    conditions sla_breach (success_rate, max_duration, freshness), sla_projected_miss and
    sla_missed_run read these."""

    success_rate: str | None = None
    max_duration: str | None = None
    freshness: str | None = None
    projected_miss: str | None = None
    missed_run: str | None = None
    expected_seconds: float | None = None
    deadline_at: datetime | None = None
    """The deadline the projection or the miss is about."""

    def as_facts(self) -> dict[str, str]:
        kinds = ("success_rate", "max_duration", "freshness", "projected_miss", "missed_run")
        return {k: v for k in kinds if (v := getattr(self, k)) is not None}


def _deadlines(sla: Sla, now: datetime) -> tuple[datetime | None, datetime | None]:
    """The latest deadline at or before `now`, and the first one after it (within 8 days)."""
    clock = deadline_time(sla)
    if clock is None:
        return None, None
    zone = tz_of(sla)
    today = now.astimezone(zone).date()
    dues = [
        datetime.combine(today + timedelta(days=d), clock, zone).astimezone(UTC)
        for d in range(-8, 9)
        if SLA_DAYS[(today + timedelta(days=d)).weekday()] in sla.days
    ]
    past = [d for d in dues if d <= now]
    future = [d for d in dues if d > now]
    return (past[-1] if past else None), (future[0] if future else None)


def findings(sla: Sla, runs: pl.DataFrame, now: datetime, first_run: datetime | None) -> SlaFindings:
    """The SLA check at `now` over one pipeline's history (read_history), every objective as it
    stands now; the deadline's projection and miss as documented in docs/sla.md. Deadlines count
    from the pipeline's `first_run` on (None: it never ran, nothing is missed yet)."""
    out: dict[str, Any] = {}
    finished = runs.filter(pl.col("status").is_in(FINISHED), pl.col("started_at") <= now)
    running = runs.filter(pl.col("status") == "running", pl.col("started_at") <= now).sort("started_at")
    ok_ends = runs.filter(pl.col("status").is_in(OK), pl.col("ended_at") <= now)["ended_at"]
    last_ok: datetime | None = ok_ends.max()  # type: ignore[assignment]
    if sla.success_rate is not None:
        window = finished.filter(pl.col("started_at") > now - timedelta(seconds=sla.window))
        good = window.filter(pl.col("status").is_in(OK)).height
        value = rate(good, window.height)
        if value is not None and value < sla.success_rate:
            out["success_rate"] = (
                f"success rate {value:g}% over the last {sla.window_days} d is below {sla.success_rate:g}% "
                f"({good} of {window.height} finished runs succeeded)"
            )
    if sla.max_duration is not None:
        limit = span(sla.max_duration)
        over = [
            f"run {r['id']} has been running for {span((now - r['started_at']).total_seconds())} "
            f"(limit {limit})"
            for r in running.iter_rows(named=True)
            if (now - r["started_at"]).total_seconds() > sla.max_duration
        ]
        timed = finished.filter(pl.col("duration_seconds").is_not_null()).sort("started_at")
        if timed.height:
            last = timed.row(-1, named=True)
            if last["duration_seconds"] > sla.max_duration:
                over.insert(0, f"run {last['id']} took {span(last['duration_seconds'])} (limit {limit})")
        if over:
            out["max_duration"] = "; ".join(over)
    if sla.freshness is not None and last_ok is not None:
        age = (now - last_ok).total_seconds()
        if age > sla.freshness:
            out["freshness"] = (
                f"the last successful run finished {span(age)} ago, at {local_time(sla, last_ok)} "
                f"(limit {span(sla.freshness)})"
            )
    expected = expected_duration(sla, runs)
    previous, upcoming = _deadlines(sla, now)
    if first_run is None or (previous is not None and previous <= first_run):
        previous = None
    missed = previous is not None and (last_ok is None or last_ok < day_start(sla, previous))
    target = previous if missed else upcoming
    if missed and previous is not None:
        out["missed_run"] = f"no successful run by the deadline, {local_time(sla, previous)}" + (
            f", nor since: the last one finished {local_time(sla, last_ok)}" if last_ok else ", nor since"
        )
    if expected is not None and target is not None and first_run is not None:
        if missed:
            out["projected_miss"] = (
                f"the deadline of {local_time(sla, target)} passed without a successful run"
            )
        elif upcoming is not None and (last_ok is None or last_ok < day_start(sla, upcoming)):
            if running.height:
                start: datetime = running["started_at"][-1]
                finish = start + timedelta(seconds=expected)
                basis = f"run {running['id'][-1]} started {local_time(sla, start)}"
                if finish < now:  # past its expected duration: assumed to need a fresh run
                    finish = now + timedelta(seconds=expected)
                    basis += f" and has outrun its expected {span(expected)}"
            else:
                finish = now + timedelta(seconds=expected)
                basis = "no run has started"
            if finish > target:
                out["projected_miss"] = (
                    f"projected to finish at {local_time(sla, finish)}, after the {sla.deadline} deadline "
                    f"({basis}; expected duration {span(expected)})"
                )
    return SlaFindings(**out, expected_seconds=expected, deadline_at=target)
