"""The one place that decides what a run does next. `drive` submits every step whose inputs are ready
to an executor, settles each as it finishes (completed, failed for good), and submits what that made
ready, until nothing is left; the run's own rules (PipelineRun.ready / completed / failed) decide. An
executor only runs one attempt after another of a step: Prefect's task submission in flows (its
retries asked through the same `will_retry`), or `SequentialExecutor` here, with no Prefect at all."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from headwater.frames import Frame
from headwater.pipeline.run import PipelineRun, StepResult
from headwater.store.store import RunSummary


class StepExecutor(Protocol):
    """Runs a run's steps; `submit` returns a handle, `next_done` one that has finished, `outcome`
    its result (or raises the step's error, after whatever retries the executor made)."""

    def submit(self, run: PipelineRun, name: str, inputs: dict[str, Frame | None]) -> Any: ...

    def next_done(self, handles: Sequence[Any]) -> Any: ...

    def outcome(self, handle: Any) -> StepResult: ...


def drive(run: PipelineRun, executor: StepExecutor) -> None:
    """Run every step that can run, in dependency order, as far as the run's rules allow."""
    pending: dict[Any, str] = {}

    def submit_ready() -> None:
        for name in run.ready(set(pending.values())):
            pending[executor.submit(run, name, run.inputs_of(name))] = name

    submit_ready()
    while pending:
        done = executor.next_done(list(pending))
        name = pending.pop(done)
        try:
            run.completed(name, executor.outcome(done))
        except Exception as exc:  # the step failed for good: the run's rules say what follows
            run.failed(name, exc)
        submit_ready()


def execute(run: PipelineRun, executor: StepExecutor) -> RunSummary:
    """A started run, driven to its end and recorded; an error of the orchestration itself (not of
    a step) records the run failed with it and is raised."""
    try:
        drive(run, executor)
        return run.finish()
    except BaseException as exc:
        run.abort(exc)
        raise


@dataclass(eq=False)  # a handle: hashed by identity
class _Done:
    result: StepResult | None = None
    error: BaseException | None = None


@dataclass
class SequentialExecutor:
    """Each step at once, in this thread, attempt after attempt as the step's retry policy allows
    (transient errors only, waiting the policy's delays): the executor of tests and of runs that
    need no orchestrator."""

    sleep: Callable[[float], None] = time.sleep
    attempts: dict[str, int] = field(default_factory=dict)

    def submit(self, run: PipelineRun, name: str, inputs: dict[str, Frame | None]) -> _Done:
        delays = run.spec.retry_for(run.spec.step(name)).delays()
        attempt = 1
        while True:
            self.attempts[name] = attempt
            try:
                return _Done(result=run.execute_step(name, inputs, attempt=attempt))
            except Exception as exc:
                if not run.will_retry(name, exc, attempt):
                    return _Done(error=exc)
                self.sleep(delays[attempt - 1])
                attempt += 1

    def next_done(self, handles: Sequence[Any]) -> Any:
        return handles[0]

    def outcome(self, handle: Any) -> StepResult:
        if handle.error is not None:
            raise handle.error
        assert handle.result is not None
        return handle.result  # type: ignore[no-any-return]
