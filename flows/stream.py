"""A streaming spec's processor as one long-lived flow run: `flows.stream.<pipeline>` is the entrypoint
of its deployment (headwater.deploy), the flow named after the pipeline. The run reads, processes and
loads batches until its process is told to stop (headwater.streams.run, the code path of `headwater
stream run`). Cancelling the flow run in Prefect makes its worker send SIGTERM: the batch in hand is
finished, committed and acknowledged, and the run ends Cancelled. `headwater up` starts a new run
when one ends any other way (headwater/streams/keeper.py); the helpers below are what it asks of
Prefect for that (through flows/adapter.py)."""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import Flow, flow, get_run_logger
from prefect.runtime import flow_run

from headwater.settings import Settings

if TYPE_CHECKING:
    from headwater.streams.keeper import StreamDeployment

KEPT_TAG = "headwater:kept"
"""On the flow runs `headwater up` starts (a person's own runs do not carry it)."""


@flow(name="stream_processor", persist_result=False)
def stream_processor(pipeline: str, pipelines_dir: str | None = None, consumer: str | None = None) -> Any:
    """Run the streaming spec `pipeline` until the flow run is cancelled (or its process stopped)."""
    from prefect.states import Cancelled

    from headwater.spec.loader import find_pipeline
    from headwater.streams.run import run_stream

    logger = get_run_logger()
    settings = Settings.from_env()
    loaded = find_pipeline(Path(pipelines_dir) if pipelines_dir else settings.pipelines_dir, pipeline)
    logger.info("%s: processing until this flow run is cancelled", pipeline)
    result = run_stream(loaded, settings, consumer=consumer, say=logger.warning)
    summary = {
        "pipeline": result.name,
        "consumer": result.consumer,
        "events_read": result.stats.events_read,
        "events_loaded": result.stats.events_loaded,
        "events_dead": result.stats.events_dead,
        "batches": result.stats.batches,
        "last_id": result.stats.last_id,
    }
    by = signal.Signals(result.stopped_by).name if result.stopped_by else "itself"
    logger.info("%s: stopped by %s: %s", pipeline, by, result.stats.summary())
    if result.stopped_by is not None and _cancelling():
        # Prefect lets a cancelling run end only Cancelled: say so, with what the run did
        return Cancelled(
            message=f"{pipeline}: cancelled after {result.stats.batches} batch(es); {result.stats.summary()}"
        )
    return summary


def _cancelling() -> bool:
    """Whether this flow run's cancellation was asked for (the SIGTERM came from its worker)."""
    from prefect import get_client

    if not flow_run.id:
        return False
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(flow_run.id).state
    return state is not None and (state.is_cancelling() or state.is_cancelled())


def flow_for(pipeline: str) -> Flow[..., Any]:
    """The processor's flow, named after the pipeline (flows and deployments share its name)."""
    return stream_processor.with_options(name=pipeline)


def __getattr__(name: str) -> Any:
    from flows.pipelines import spec_attribute

    return spec_attribute(name, flow_for)


# ------------------------------------------------------------------ what `headwater up` asks of Prefect


def _pid(value: str | None) -> int | None:
    """A process worker's infrastructure pid is the process id (other workers' are not)."""
    return int(value) if value and value.isdigit() else None


def _when(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def stream_deployments(names: list[str], recent: int) -> dict[str, StreamDeployment]:
    """The stream processors' deployments on the server (tagged headwater.deploy.STREAM_TAG), each
    with its `recent` newest flow runs, newest first."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterTags,
        FlowRunFilter,
        FlowRunFilterDeploymentId,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    from headwater.deploy import STREAM_TAG
    from headwater.streams.keeper import FlowRunView, StreamDeployment

    out: dict[str, StreamDeployment] = {}
    with get_client(sync_client=True) as client:
        deployments = client.read_deployments(
            deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=[STREAM_TAG])), limit=200
        )
        for deployment in deployments:
            if deployment.name not in names:
                continue
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[deployment.id])),
                sort=FlowRunSort.EXPECTED_START_TIME_DESC,
                limit=recent,
            )
            views = [
                FlowRunView(
                    id=str(r.id),
                    name=r.name,
                    state_type=r.state_type.value if r.state_type else "SCHEDULED",
                    state_name=r.state_name or "",
                    created=_when(r.created),
                    start_time=_when(r.start_time),
                    end_time=_when(r.end_time),
                    pid=_pid(r.infrastructure_pid),
                )
                for r in runs
            ]
            views.sort(key=lambda v: v.created or datetime.min.replace(tzinfo=UTC), reverse=True)
            out[deployment.name] = StreamDeployment(
                deployment.name, str(deployment.id), bool(deployment.paused), views
            )
    return out


def start_run(deployment_id: str) -> str:
    """A new flow run of the deployment (a worker of its pool starts it): its id."""
    from uuid import UUID

    from prefect import get_client

    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(UUID(deployment_id), tags=[KEPT_TAG])
    return str(run.id)


def mark_crashed(flow_run_id: str, message: str) -> None:
    """Mark a flow run whose process is gone Crashed (forced: it may still say Running)."""
    from uuid import UUID

    from prefect import get_client
    from prefect.states import Crashed

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(UUID(flow_run_id), Crashed(message=message), force=True)
