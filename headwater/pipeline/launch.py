"""Before a run starts: find its spec and load it with the run's parameters. A run that cannot start
(its spec does not load, a parameter or a secret is wrong) is still a run that was asked for: it is
recorded `failed` with the reason, so the history and the console show it. A run that can start is
recorded at once (`running`, steps pending), before any orchestration starts, under an id the
caller knows, so whoever asked can link to it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from headwater.errors import SpecError
from headwater.redact import mask_known
from headwater.spec.checks import step_order
from headwater.spec.loader import LoadedSpec, PipelineNotFound, find_pipeline, spec_path_for
from headwater.store.store import Store


class RunRefused(SpecError):
    """The run could not start; it is recorded as failed under `run_id`."""

    def __init__(self, run_id: str, cause: SpecError) -> None:
        self.run_id = run_id
        super().__init__(cause.problems)


def record_refusal(
    store: Store,
    pipelines_dir: str | Path,
    name: str,
    exc: SpecError,
    *,
    execution_type: str,
    run_id: str | None = None,
    params: Mapping[str, Any] | None = None,
    flow_run_id: str | None = None,
    secrets: set[str] | None = None,
) -> str:
    """Record the refused run (its id returned). A pipeline no spec declares is not recorded: there
    is no such pipeline to have a run."""
    try:
        path = str(spec_path_for(pipelines_dir, name))
    except SpecError:
        path = str(pipelines_dir)
    return store.record_refused_run(
        name,
        spec_path=path,
        error_type="SpecError",
        error_message=mask_known(str(exc), secrets or set()),  # not redact(): a spec problem
        # never repeats a secret (the loader sees to it), and the PII patterns would mask the fix's words
        execution_type=execution_type,
        run_id=run_id,
        parameters=params,
        flow_run_id=flow_run_id,
    )


def prepare_run(
    store: Store,
    pipelines_dir: str | Path,
    name: str,
    *,
    params: Mapping[str, Any] | None,
    execution_type: str,
    warehouse_url: str,
    run_id: str | None = None,
) -> tuple[str, LoadedSpec]:
    """Load the spec with `params` and record the run as started (its id and the spec returned).
    Raises PipelineNotFound (nothing recorded), or RunRefused (recorded failed)."""
    run_id = run_id or str(uuid.uuid4())
    try:
        loaded = find_pipeline(pipelines_dir, name, params=params)
    except PipelineNotFound:
        raise
    except SpecError as exc:
        record_refusal(
            store, pipelines_dir, name, exc, execution_type=execution_type, run_id=run_id, params=params
        )
        raise RunRefused(run_id, exc) from exc
    pipeline_id = store.register_pipeline(loaded, warehouse_url)
    store.start_run(
        pipeline_id,
        name,
        [(step, loaded.spec.step(step).type) for step in step_order(loaded)],
        execution_type=execution_type,
        flow_run_id=None,
        parameters=loaded.params if loaded.spec.params else None,
        run_id=run_id,
    )
    return run_id, loaded
