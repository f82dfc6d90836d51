"""`headwater up` keeps each streaming spec's processor running as one long-lived flow run of its
deployment (flows/stream.py), never a flow run per event or batch. Every few seconds it looks at each
stream deployment's newest flow runs and decides (`decide`, the whole rule):

- a run is scheduled, pending, running or cancelling: leave it (one run at a time; the keeper never
  starts a second one, nor cancels one a person started);
- the deployment is paused (`headwater pause NAME`, or in Prefect): start nothing; the run going on
  goes on (cancel it to stop it now);
- the newest run was cancelled (by a person, in Prefect's UI, CLI or API: Headwater never cancels one
  itself): start nothing. Starting a run of the deployment by hand brings the processor back, kept
  running again from then on;
- no run yet: start one;
- the newest run ended any other way (crashed: its process killed; failed; completed: its process was
  stopped without a cancellation): start a new one after a back-off, 5 s, doubled for each further
  run in a row, newest first, that lived less than 2 minutes (10, 20, ... at most 300 s), so a
  processor that fails at once does not restart in a hot loop. Each restart is logged with the run
  that ended.

A run left Running by an earlier `headwater up` (the machine restarted, the supervisor was killed)
whose process is gone from this host is marked Crashed, and so restarted as above. The new run reads
from the committed id on (headwater/streams/commits.py): nothing lost, nothing loaded twice.

The domain's side: what it needs of the orchestrator goes through headwater.orchestration."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import psutil

from headwater.settings import Settings

if TYPE_CHECKING:
    from headwater.orchestration import Orchestration

log = logging.getLogger(__name__)

ACTIVE = frozenset({"SCHEDULED", "PENDING", "RUNNING", "CANCELLING", "PAUSED"})
"""Flow run state types of a run that is (or will be) the processor."""
RESTART_FIRST = 5.0
"""Seconds between a run ending and the next start, after a run that lived long, or the first short one."""
RESTART_MAX = 300.0
HEALTHY_AFTER = 120.0
"""A run that lived this long (seconds) does not count towards the back-off."""
RECENT_RUNS = 10
"""How many of a deployment's newest flow runs the rule reads (the back-off stops doubling there)."""


@dataclass(frozen=True)
class FlowRunView:
    """What the rule needs of one flow run."""

    id: str
    name: str
    state_type: str
    """Prefect's state type: SCHEDULED, PENDING, RUNNING, COMPLETED, FAILED, CRASHED, CANCELLING,
    CANCELLED or PAUSED."""
    state_name: str
    created: datetime | None
    start_time: datetime | None
    end_time: datetime | None
    pid: int | None
    """The flow run's process (Prefect's infrastructure pid), when its worker reported it."""

    def lived(self) -> float:
        if self.start_time is None or self.end_time is None:
            return 0.0
        return max((self.end_time - self.start_time).total_seconds(), 0.0)


@dataclass(frozen=True)
class StreamDeployment:
    pipeline: str
    deployment_id: str
    paused: bool
    runs: list[FlowRunView] = field(default_factory=list)
    """Newest first."""


@dataclass(frozen=True)
class Decision:
    action: Literal["keep", "start", "wait", "hold", "crashed"]
    """keep: a run is on; start: start one now; wait: start one at `at`; hold: start none (paused,
    cancelled); crashed: mark `flow_run` Crashed (its process is gone), then start one."""
    reason: str
    at: datetime | None = None
    flow_run: FlowRunView | None = None


def restart_delay(runs: list[FlowRunView]) -> float:
    """The back-off before the next start: RESTART_FIRST doubled for every ended run in a row (newest
    first) after the first that lived less than HEALTHY_AFTER, at most RESTART_MAX."""
    short = 0
    for run in runs:
        if run.state_type in ACTIVE or run.lived() >= HEALTHY_AFTER:
            break
        short += 1
    return float(min(RESTART_MAX, RESTART_FIRST * 2 ** max(short - 1, 0)))


def decide(
    deployment: StreamDeployment, now: datetime, gone: Callable[[FlowRunView], bool] = lambda run: False
) -> Decision:
    """What to do about one stream deployment (the rule in this module's docstring). `gone(run)`:
    True when that running run's process is known to have ended."""
    active = [r for r in deployment.runs if r.state_type in ACTIVE]
    if active:
        stale = next((r for r in active if r.state_type == "RUNNING" and gone(r)), None)
        if stale is not None:
            return Decision(
                "crashed", f"flow run {stale.name!r} says Running but its process is gone", None, stale
            )
        return Decision(
            "keep", f"flow run {active[0].name!r} is {active[0].state_name or active[0].state_type}"
        )
    if deployment.paused:
        return Decision("hold", "its deployment is paused: not restarted (resume it to)")
    if not deployment.runs:
        return Decision("start", "no flow run yet")
    newest = deployment.runs[0]
    if newest.state_type == "CANCELLED":
        return Decision(
            "hold",
            f"flow run {newest.name!r} was cancelled: not restarted (start a run of the deployment to)",
        )
    delay = restart_delay(deployment.runs)
    ended = newest.end_time or newest.created or now
    at = ended + timedelta(seconds=delay)
    reason = (
        f"flow run {newest.name!r} ended {newest.state_name or newest.state_type} after "
        f"{newest.lived():.1f} s"
    )
    if now >= at:
        return Decision("start", reason, at)
    return Decision("wait", f"{reason}; starting a new one in {delay:g} s", at)


def gone_from_host(since: datetime) -> Callable[[FlowRunView], bool]:
    """For `decide`: a run that started before `since` (an earlier `headwater up`) whose process is not
    alive on this host (or is a newer process that reuses its pid)."""

    def gone(run: FlowRunView) -> bool:
        if run.start_time is None or run.start_time >= since or run.pid is None:
            return False
        try:
            return psutil.Process(run.pid).create_time() > run.start_time.timestamp()
        except psutil.Error:
            return True

    return gone


@dataclass(frozen=True)
class KeptStreams:
    kept: list[str]
    """The streaming specs `headwater up` keeps running."""
    skipped: list[str]
    """Streaming specs left alone: no Redis to read (no source url and HEADWATER_REDIS_URL unset)."""

    def note(self) -> str | None:
        """One line for `headwater up` / `status`, when there are streaming specs."""
        parts = []
        if self.kept:
            parts.append(f"{', '.join(self.kept)} kept running")
        if self.skipped:
            parts.append(f"{', '.join(self.skipped)} not run: HEADWATER_REDIS_URL is not set")
        return "; ".join(parts) or None


def kept_streams(pipelines_dir: Path, settings: Settings) -> KeptStreams:
    """The streaming specs in the folder that load, split by whether they have a Redis to read."""
    from headwater.deploy import plan_all
    from headwater.spec.loader import load_pipeline
    from headwater.streams.run import needs_redis_url

    plans, _ = plan_all(pipelines_dir)
    kept: list[str] = []
    skipped: list[str] = []
    for plan in plans:
        if not plan.streaming or plan.spec_path is None:
            continue
        loaded = load_pipeline(plan.spec_path, {}, secrets_may_be_unset=True, params_may_be_unset=True)
        (skipped if needs_redis_url(loaded, settings) else kept).append(plan.pipeline)
    return KeptStreams(kept, skipped)


class StreamKeeper:
    """Applies `decide` to every kept stream deployment, each `tick`."""

    def __init__(self, orchestration: Orchestration, pipelines: list[str], since: datetime) -> None:
        self.orchestration, self.pipelines, self.since = orchestration, pipelines, since
        self.said: dict[str, str] = {}
        self.status: dict[str, str] = {}
        """The last decision per pipeline, as a line (for up.json)."""

    def tick(self, now: datetime) -> dict[str, Decision]:
        found = self.orchestration.stream_deployments(self.pipelines, RECENT_RUNS)
        decisions: dict[str, Decision] = {}
        for pipeline in self.pipelines:
            deployment = found.get(pipeline)
            if deployment is None:
                self._say(pipeline, logging.WARNING, "no deployment on the server: not run (see deploy.log)")
                continue
            decision = decide(deployment, now, gone_from_host(self.since))
            if decision.action == "crashed" and decision.flow_run is not None:
                self.orchestration.mark_crashed(
                    decision.flow_run.id, "its process is gone (found by headwater up)"
                )
                log.warning("%s: %s: marked Crashed", pipeline, decision.reason)
                decision = Decision("start", decision.reason)
            if decision.action == "start":
                run_id = self.orchestration.start_stream_run(deployment.deployment_id)
                log.warning("%s: %s: started flow run %s", pipeline, decision.reason, run_id)
                self.said[pipeline] = self.status[pipeline] = f"started flow run {run_id}"
            else:
                level = logging.WARNING if decision.action == "wait" else logging.INFO
                self._say(pipeline, level, decision.reason)
            decisions[pipeline] = decision
        return decisions

    def _say(self, pipeline: str, level: int, line: str) -> None:
        """Log a decision once (until it changes)."""
        self.status[pipeline] = line
        if self.said.get(pipeline) != line:
            self.said[pipeline] = line
            log.log(level, "%s: %s", pipeline, line)
