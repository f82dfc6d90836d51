"""Starting and pausing pipelines on behalf of a person. An `Orchestrator` does it: through a
Prefect server (flows/control.py) or, with no server, by starting `headwater run` in a process of
its own here. Both say when each pipeline runs next."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from headwater.errors import PermanentError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunTicket:
    """What starting a run gave back: a Prefect flow run, or a local process."""

    pipeline: str
    via: str
    """prefect | process"""
    ref: str
    """the flow run id, or the process id"""
    detail: str
    run_id: str | None = None
    """The id the run is recorded under in the store (known before it starts, to link to it);
    None where the starter cannot choose it (a replay in a local process)."""


@dataclass(frozen=True)
class DeclaredSchedule:
    """A pipeline's schedule as its spec declares it (the store's data_pipelines row)."""

    pipeline: str
    cron: str | None
    timezone: str | None
    interval_seconds: float | None

    def describe(self) -> str:
        if self.cron:
            return f"{self.cron} ({self.timezone or 'UTC'})"
        if self.interval_seconds:
            return f"every {timedelta(seconds=self.interval_seconds)}"
        return ""


@dataclass(frozen=True)
class ScheduleState:
    pipeline: str
    schedule: str
    """what the schedule says, e.g. "0 6 * * * (America/New_York)"; "" for none"""
    next_run: datetime | None
    paused: bool | None
    """None where nothing can pause it (no deployment)"""
    source: str
    """prefect (a deployment) | spec (computed from the spec: nothing runs it without a server)"""
    deployment_id: str | None = None


class Orchestrator(Protocol):
    kind: str

    def run(
        self,
        pipeline: str,
        params: Mapping[str, Any],
        *,
        replay: bool,
        requested_by: str,
        execution_type: str = "manual",
    ) -> RunTicket: ...

    def set_paused(self, pipeline: str, paused: bool) -> None: ...

    def schedules(self, declared: Sequence[DeclaredSchedule], now: datetime) -> dict[str, ScheduleState]: ...


def next_fire(
    declared: DeclaredSchedule, now: datetime, last_start: datetime | None = None
) -> datetime | None:
    """The next time the declared schedule fires after `now` (an interval counts from the last run)."""
    if declared.cron:
        from cronsim import CronSim

        tz = ZoneInfo(declared.timezone or "UTC")
        return next(CronSim(declared.cron, now.astimezone(tz)))
    if declared.interval_seconds:
        step = timedelta(seconds=declared.interval_seconds)
        if last_start is None:
            return now
        nxt = last_start + step
        return nxt if nxt > now else now
    return None


def spec_schedules(declared: Sequence[DeclaredSchedule], now: datetime) -> dict[str, ScheduleState]:
    return {
        d.pipeline: ScheduleState(d.pipeline, d.describe(), next_fire(d, now), None, "spec") for d in declared
    }


class LocalOrchestrator:
    """No Prefect server: a run is `headwater run` started in its own process (its own temporary
    Prefect API), logging to $HEADWATER_HOME/logs. Nothing schedules runs, so nothing can pause."""

    kind = "process"

    def __init__(self, home: Path, pipelines_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.home = home
        self.pipelines_dir = pipelines_dir
        self.env = dict(env) if env is not None else None

    def command(
        self,
        pipeline: str,
        params: Mapping[str, Any],
        *,
        replay: bool,
        run_id: str | None = None,
        execution_type: str = "manual",
    ) -> list[str]:
        base = [sys.executable, "-m", "headwater.cli"]
        if replay:
            return [
                *base,
                "quarantine",
                "replay",
                "--pipeline",
                pipeline,
                "--pipelines",
                str(self.pipelines_dir),
            ]
        args = [
            *base,
            "run",
            pipeline,
            "--pipelines",
            str(self.pipelines_dir),
            "--execution-type",
            execution_type,
        ]
        if run_id:
            args += ["--run-id", run_id]
        for key, value in params.items():
            args += ["--param", f"{key}={value}"]
        return args

    def check(self, pipeline: str, params: Mapping[str, Any]) -> None:
        """Load the spec with these parameter values: a bad value fails now, with the file, line and
        fix, instead of in a process nobody watches."""
        from headwater.spec.loader import find_pipeline

        find_pipeline(self.pipelines_dir, pipeline, params=dict(params))

    def run(
        self,
        pipeline: str,
        params: Mapping[str, Any],
        *,
        replay: bool,
        requested_by: str,
        execution_type: str = "manual",
    ) -> RunTicket:
        self.check(pipeline, params)
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S%f")
        path = logs / f"{pipeline}-{'replay-' if replay else ''}{stamp}.log"
        # `headwater run` records the run under this id before it starts anything slow; a replay
        # (`headwater quarantine replay`) chooses its own
        run_id = None if replay else str(uuid.uuid4())
        with path.open("wb") as out:
            proc = subprocess.Popen(
                self.command(pipeline, params, replay=replay, run_id=run_id, execution_type=execution_type),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # the run outlives a console restart
                env=self.env,
            )
        reap(proc, pipeline)
        what = "replay of the quarantine" if replay else "run"
        return RunTicket(
            pipeline,
            "process",
            str(proc.pid),
            f"{what} started in process {proc.pid}; log: {path}",
            run_id,
        )

    def set_paused(self, pipeline: str, paused: bool) -> None:
        raise PermanentError(
            f"{pipeline} has no schedule to {'pause' if paused else 'resume'}: "
            "no Prefect server runs schedules here",
            hint="set PREFECT_API_URL to a Prefect server and deploy the pipelines (prefect deploy --all)",
        )

    def schedules(self, declared: Sequence[DeclaredSchedule], now: datetime) -> dict[str, ScheduleState]:
        return spec_schedules(declared, now)


def reap(proc: subprocess.Popen[bytes], pipeline: str) -> threading.Thread:
    """Wait for a started process in a daemon thread, so that when it ends it is reaped at once
    instead of staying a zombie under this (long-lived) process."""

    def wait() -> None:
        code = proc.wait()
        if code:
            log.warning("the process %s of %s ended with code %s", proc.pid, pipeline, code)

    thread = threading.Thread(target=wait, name=f"reap-{proc.pid}", daemon=True)
    thread.start()
    return thread
