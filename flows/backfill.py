"""Backfill partitions as flow runs of the pipeline's deployment: the server's workers run them, as
many at once as the deployment's concurrency limit lets (and the caller keeps in flight)."""

from __future__ import annotations

from typing import Any

from flows.control import deployment_name

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def deployment_id(pipeline: str) -> Any | None:
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            return client.read_deployment_by_name(deployment_name(pipeline)).id
        except ObjectNotFound:
            return None


def submit(deployment: Any, pipeline: str, params: dict[str, str], run_id: str, backfill: str) -> str:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run_from_deployment(
            deployment,
            parameters={
                "pipeline": pipeline,
                "execution_type": "backfill",
                "params": params,
                "run_id": run_id,
            },
            tags=["backfill", f"backfill:{backfill}"],
        )
    return str(flow_run.id)


def finished(flow_run_ids: list[str]) -> dict[str, str]:
    """The flow runs among these that ended, with their state type."""
    from uuid import UUID

    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    if not flow_run_ids:
        return {}
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(i) for i in flow_run_ids])),
            limit=len(flow_run_ids),
        )
    return {str(r.id): r.state_type.value for r in runs if r.state_type and r.state_type.value in FINAL}
