"""A pipeline step as a Prefect task: one call into the domain, plus Prefect's retry policy."""

from __future__ import annotations

from typing import Any

from prefect import Task, task
from prefect.cache_policies import NONE
from prefect.client.schemas.objects import TaskRun
from prefect.runtime import task_run
from prefect.states import State
from prefect.utilities.annotations import NotSet

from headwater.errors import retryable
from headwater.frames import Frame
from headwater.pipeline import PipelineRun, StepResult


def only_transient(task: Task[Any, Any], run: TaskRun, state: State[Any]) -> bool:
    """Retry by exception type, never by message: only TransientError is worth another attempt."""
    error = state.data
    if not isinstance(error, BaseException):
        error = state.result(raise_on_failure=False)
    return retryable(error)


@task(cache_policy=NONE, persist_result=False)
def run_step(run: PipelineRun, name: str, inputs: dict[str, Frame | None]) -> StepResult:
    return run.execute_step(name, inputs, attempt=task_run.run_count or 1)


def step_task(run: PipelineRun, name: str) -> Task[Any, StepResult]:
    """`run_step` carrying the step's name, timeout and retry policy from the spec."""
    step = run.spec.step(name)
    policy = run.spec.retry_for(step)
    return run_step.with_options(
        name=f"{step.type}:{name}",
        task_run_name=name,
        retries=policy.attempts - 1,
        retry_delay_seconds=policy.delays() or 0,
        retry_jitter_factor=policy.jitter or NotSet,
        retry_condition_fn=only_transient,
        timeout_seconds=step.timeout,
    )
