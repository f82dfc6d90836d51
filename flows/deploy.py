"""`headwater deploy`: the specs' deployment plans (headwater.deploy) applied to the Prefect server
at PREFECT_API_URL, idempotently. A new spec makes its deployment, a changed spec (a new hash)
updates it, an unchanged one is left alone (its schedule's upcoming runs too), and a deployment whose
spec is gone is paused, not deleted (its history stays). Work pools and queues the specs name are
made when missing (process pools), and a queue's priority set as a spec asks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from headwater.deploy import MANAGED_TAG, DeploymentPlan, DeployReport
from headwater.spec.loader import peek_name, spec_files

REMOVED = "(spec removed: paused by headwater deploy) "
"""The description of a deployment paused because its spec is gone; deploying the spec again resumes it."""


def _schedules(plan: DeploymentPlan) -> list[Any]:
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule

    if plan.schedule is None:
        return []
    if "cron" in plan.schedule:
        schedule: Any = CronSchedule(cron=plan.schedule["cron"], timezone=plan.schedule["timezone"])
    else:
        schedule = IntervalSchedule(interval=timedelta(seconds=plan.schedule["interval"]))
    return [DeploymentScheduleCreate(schedule=schedule, active=True)]


def _flow_of(plan: DeploymentPlan) -> Any:
    if plan.streaming:
        from flows.stream import stream_processor

        return stream_processor
    if plan.spec_path is not None:
        from flows.pipeline import pipeline_flow

        return pipeline_flow
    from prefect.utilities.importtools import import_object

    return import_object(plan.entrypoint)


def _ensure_pools(client: Any, plans: Sequence[DeploymentPlan], report: DeployReport) -> None:
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    for pool in sorted({p.work_pool for p in plans}):
        try:
            client.read_work_pool(pool)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
            report.pools.append(pool)
    wanted: dict[tuple[str, str], int | None] = {}
    for plan in plans:
        key = (plan.work_pool, plan.queue)
        if plan.priority is not None or key not in wanted:
            wanted[key] = plan.priority if plan.priority is not None else wanted.get(key)
    for (pool, queue), priority in sorted(wanted.items()):
        try:
            found = client.read_work_queue_by_name(queue, work_pool_name=pool)
        except ObjectNotFound:
            client.create_work_queue(name=queue, work_pool_name=pool, priority=priority)
            continue
        if priority is not None and found.priority != priority:
            client.update_work_queue(found.id, priority=priority)


def _apply_triggers(client: Any, deployment_id: Any, plan: DeploymentPlan) -> None:
    from prefect.events.schemas.deployment_triggers import DeploymentTriggerTypes
    from pydantic import TypeAdapter

    client.delete_resource_owned_automations(f"prefect.deployment.{deployment_id}")
    adapter: TypeAdapter[Any] = TypeAdapter(DeploymentTriggerTypes)
    for raw in plan.triggers:
        trigger = adapter.validate_python(raw)
        trigger.set_deployment_id(deployment_id)
        client.create_automation(trigger.as_automation())


def _managed(client: Any) -> list[Any]:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags

    return list(
        client.read_deployments(
            deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=[MANAGED_TAG])), limit=200
        )
    )


def apply_plans(
    plans: Sequence[DeploymentPlan], pipelines_dir: str | Path, *, prune: bool = True
) -> DeployReport:
    """Make Prefect hold exactly these deployments (of the pipelines in `pipelines_dir`)."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.utilities.callables import parameter_schema

    report = DeployReport()
    folder = str(Path(pipelines_dir).resolve())
    with get_client(sync_client=True) as client:
        _ensure_pools(client, plans, report)
        for plan in plans:
            try:
                existing = client.read_deployment_by_name(plan.full_name)
            except ObjectNotFound:
                existing = None
            if (
                existing is not None
                and existing.version == plan.version
                and existing.entrypoint == plan.entrypoint
                and existing.parameters == plan.parameters
                and existing.work_pool_name == plan.work_pool
                and not (existing.description or "").startswith(REMOVED)
            ):
                report.unchanged.append(plan.pipeline)
                continue
            flow_id = client.create_flow_from_name(plan.pipeline)
            deployment_id = client.create_deployment(
                flow_id=flow_id,
                name=plan.pipeline,
                version=plan.version,
                description=plan.description,
                tags=plan.tags,
                parameters=plan.parameters,
                schedules=_schedules(plan),
                concurrency_limit=plan.concurrency,
                entrypoint=plan.entrypoint,
                work_pool_name=plan.work_pool,
                work_queue_name=plan.queue,
                job_variables={"env": {"PREFECT_LOGGING_EXTRA_LOGGERS": "headwater"}},
                parameter_openapi_schema=parameter_schema(_flow_of(plan)).model_dump(),
                enforce_parameter_schema=True,
                pull_steps=[],
            )
            if (
                existing is not None
                and plan.concurrency is None
                and existing.global_concurrency_limit is not None
            ):
                client.update_deployment(deployment_id, _no_limit())
            if existing is not None and (existing.description or "").startswith(REMOVED):
                client.resume_deployment(deployment_id)
            _apply_triggers(client, deployment_id, plan)
            (report.updated if existing is not None else report.created).append(plan.pipeline)
        if prune:
            on_disk = {peek_name(p) for p in spec_files(folder)}
            keep = {p.pipeline for p in plans} | on_disk
            for deployment in _managed(client):
                if deployment.name in keep or (deployment.parameters or {}).get("pipelines_dir") not in (
                    None,
                    folder,
                ):
                    continue
                if deployment.entrypoint and not deployment.entrypoint.startswith(
                    ("flows.pipelines.", "flows.stream.")
                ):
                    continue
                if not deployment.paused:
                    client.pause_deployment(deployment.id)
                if not (deployment.description or "").startswith(REMOVED):
                    from prefect.client.schemas.actions import DeploymentUpdate

                    client.update_deployment(
                        deployment.id, DeploymentUpdate(description=REMOVED + (deployment.description or ""))
                    )
                report.paused.append(deployment.name)
    return report


def _no_limit() -> Any:
    from prefect.client.schemas.actions import DeploymentUpdate

    return DeploymentUpdate(concurrency_limit=None)
