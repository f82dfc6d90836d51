"""Prefect's side of the domain's orchestration port (headwater.orchestration): what the `headwater`
command asks of the orchestrator, done by the flows modules. Each method imports what it uses when
called, so making the adapter loads no Prefect."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from headwater.control import LocalOrchestrator
    from headwater.deploy import DeploymentPlan, DeployReport
    from headwater.orchestration import Orchestration, TemporaryApi
    from headwater.streams.keeper import StreamDeployment


class PrefectOrchestration:
    def run_pipeline(
        self,
        pipeline: str,
        pipelines_dir: Path,
        execution_type: str | None,
        *,
        replay: bool = False,
        params: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        from flows.pipeline import PipelineRunFailed, flow_for

        try:
            return flow_for(pipeline)(  # type: ignore[no-any-return]
                pipeline=pipeline,
                execution_type=execution_type,
                pipelines_dir=str(pipelines_dir),
                replay=replay,
                params=params,
                run_id=run_id,
            )
        except PipelineRunFailed as exc:
            return exc.outcome.as_dict()

    def start_temporary_api(self, log: Path | None = None) -> TemporaryApi:
        from flows.api_server import start_temporary_api

        return start_temporary_api(log)

    def configured_api_url(self) -> str | None:
        from prefect.settings import PREFECT_API_URL

        url = PREFECT_API_URL.value()
        return str(url) if url else None

    def apply_plans(
        self, plans: Sequence[DeploymentPlan], pipelines_dir: str | Path, *, prune: bool = True
    ) -> DeployReport:
        from flows.deploy import apply_plans

        return apply_plans(plans, pipelines_dir, prune=prune)

    def set_paused(self, api_url: str, local: LocalOrchestrator, pipeline: str, paused: bool) -> None:
        from flows.control import PrefectOrchestrator

        PrefectOrchestrator(api_url, local).set_paused(pipeline, paused)

    def deployment_id(self, pipeline: str) -> Any | None:
        from flows.backfill import deployment_id

        return deployment_id(pipeline)

    def submit(
        self, deployment: Any, pipeline: str, params: dict[str, str], run_id: str, backfill: str
    ) -> str:
        from flows.backfill import submit

        return submit(deployment, pipeline, params, run_id, backfill)

    def finished(self, flow_run_ids: list[str]) -> dict[str, str]:
        from flows.backfill import finished

        return finished(flow_run_ids)

    def stream_deployments(self, pipelines: list[str], recent: int) -> dict[str, StreamDeployment]:
        from flows.stream import stream_deployments

        return stream_deployments(pipelines, recent)

    def start_stream_run(self, deployment_id: str) -> str:
        from flows.stream import start_run

        return start_run(deployment_id)

    def mark_crashed(self, flow_run_id: str, message: str) -> None:
        from flows.stream import mark_crashed

        mark_crashed(flow_run_id, message)


if TYPE_CHECKING:
    _implements: type[Orchestration] = PrefectOrchestration
