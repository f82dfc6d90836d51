"""The Orchestrator that works through a Prefect server (PREFECT_API_URL): "run now" and replay
create flow runs of the pipeline's deployment (a worker of its pool starts them), pause and resume
act on the deployment, and the next run is the earliest scheduled flow run (or the next time its
active schedule fires). A pipeline without a deployment runs in a local process, reporting to the
same server."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from headwater.control import (
    DeclaredSchedule,
    LocalOrchestrator,
    RunTicket,
    ScheduleState,
    next_fire,
    spec_schedules,
)
from headwater.errors import PermanentError, TransientError


def deployment_name(pipeline: str) -> str:
    """Flows and deployments share the pipeline's name (prefect.yaml)."""
    return f"{pipeline}/{pipeline}"


def _describe(schedule: Any) -> tuple[DeclaredSchedule | None, str]:
    cron = getattr(schedule, "cron", None)
    if cron:
        tz = getattr(schedule, "timezone", None) or "UTC"
        return DeclaredSchedule("", cron, tz, None), f"{cron} ({tz})"
    interval = getattr(schedule, "interval", None)
    if interval is not None:
        return DeclaredSchedule("", None, None, interval.total_seconds()), f"every {interval}"
    rrule = getattr(schedule, "rrule", None)
    return None, f"rrule {rrule}" if rrule else ""


class PrefectOrchestrator:
    kind = "prefect"

    def __init__(self, api_url: str, local: LocalOrchestrator) -> None:
        self.api_url = api_url
        self.local = local

    def _client(self) -> Any:
        from prefect import get_client

        return get_client(sync_client=True)

    def _deployment(self, client: Any, pipeline: str) -> Any:
        from prefect.exceptions import ObjectNotFound

        try:
            return client.read_deployment_by_name(deployment_name(pipeline))
        except ObjectNotFound:
            return None

    def _unreachable(self, exc: Exception) -> TransientError:
        return TransientError(
            f"the Prefect API at {self.api_url} did not answer: {type(exc).__name__}: {exc}"
        )

    def run(
        self,
        pipeline: str,
        params: Mapping[str, Any],
        *,
        replay: bool,
        requested_by: str,
        execution_type: str = "manual",
    ) -> RunTicket:
        import httpx

        self.local.check(pipeline, params)
        try:
            with self._client() as client:
                deployment = self._deployment(client, pipeline)
                if deployment is None:
                    return self.local.run(
                        pipeline,
                        params,
                        replay=replay,
                        requested_by=requested_by,
                        execution_type=execution_type,
                    )
                run_id = str(uuid.uuid4())  # the flow records its run under it: the console links to it
                parameters: dict[str, Any] = {
                    "pipeline": pipeline,
                    "execution_type": execution_type,
                    "run_id": run_id,
                }
                if replay:
                    parameters["replay"] = True
                if params:
                    parameters["params"] = dict(params)
                flow_run = client.create_flow_run_from_deployment(
                    deployment.id,
                    parameters=parameters,
                    tags=[
                        "console" if execution_type == "manual" else execution_type,
                        f"requested-by:{requested_by}",
                    ],
                )
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        what = "replay" if replay else "run"
        return RunTicket(
            pipeline,
            "prefect",
            str(flow_run.id),
            f"{what} {flow_run.name} ({flow_run.id}) scheduled on deployment {deployment_name(pipeline)}; "
            f"a worker of pool {deployment.work_pool_name} starts it",
            run_id,
        )

    def set_paused(self, pipeline: str, paused: bool) -> None:
        import httpx

        try:
            with self._client() as client:
                deployment = self._deployment(client, pipeline)
                if deployment is None:
                    verb = "pause" if paused else "resume"
                    raise PermanentError(
                        f"{pipeline} has no deployment on {self.api_url} to {verb}",
                        hint="deploy it: HEADWATER_REPO=$PWD prefect deploy --all",
                    )
                if paused:
                    client.pause_deployment(deployment.id)
                else:
                    client.resume_deployment(deployment.id)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc

    def schedules(self, declared: Sequence[DeclaredSchedule], now: datetime) -> dict[str, ScheduleState]:
        """Deployed pipelines from Prefect (2 + one call per pipeline); the rest from their specs."""
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterDeploymentId,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.objects import StateType
        from prefect.client.schemas.sorting import FlowRunSort

        out = spec_schedules(declared, now)
        with self._client() as client:
            deployments = {d.pipeline: self._deployment(client, d.pipeline) for d in declared}
            found = {p: d for p, d in deployments.items() if d is not None}
            upcoming: dict[str, datetime] = {}
            if found:
                by_id = {str(d.id): p for p, d in found.items()}
                runs = client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        deployment_id=FlowRunFilterDeploymentId(any_=[d.id for d in found.values()]),
                        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
                    ),
                    sort=FlowRunSort.EXPECTED_START_TIME_ASC,
                    limit=200,
                )
                for run in runs:
                    pipeline = by_id.get(str(run.deployment_id))
                    if pipeline and run.expected_start_time and pipeline not in upcoming:
                        upcoming[pipeline] = run.expected_start_time
        for pipeline, deployment in found.items():
            active = [s for s in deployment.schedules if s.active]
            described = [_describe(s.schedule) for s in active]
            text = "; ".join(d for _, d in described) or "no active schedule"
            fires = [next_fire(d, now) for d, _ in described if d is not None]
            candidates = [t for t in [upcoming.get(pipeline), *fires] if t is not None]
            nxt = None if deployment.paused or not candidates else min(candidates)
            out[pipeline] = ScheduleState(
                pipeline, text, nxt, bool(deployment.paused), "prefect", str(deployment.id)
            )
        return out
