"""Every pipeline runs as this flow, named after the pipeline: steps become tasks, independent
steps run concurrently, and the run is recorded in the metadata store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture, as_completed
from prefect.runtime import deployment, flow_run
from prefect.states import Completed

from headwater.connections import Connections
from headwater.deploy import EVENT_PREFIX, pipeline_resource
from headwater.errors import HeadwaterError, PermanentError, SpecError
from headwater.pipeline import PipelineRun
from headwater.pipeline.driver import execute
from headwater.pipeline.launch import record_refusal
from headwater.pipeline.outcome import RunOutcome
from headwater.pipeline.preconditions import APPLIES_TO, unmet
from headwater.settings import Settings
from headwater.spec.loader import PipelineNotFound, find_pipeline
from headwater.store import Store
from tasks.alerts import notify_alerts
from tasks.steps import step_task


class PipelineRunFailed(HeadwaterError):
    """The run ended `failed`: the Prefect flow run fails too. Carries the run's typed outcome."""

    def __init__(self, outcome: RunOutcome) -> None:
        self.outcome = outcome
        s = outcome.summary
        super().__init__(
            f"pipeline {outcome.pipeline} failed at step {s.failed_step}: {s.error_type}: {s.error_message}"
        )


def emit_outcome(pipeline: str, status: str, payload: dict[str, Any]) -> None:
    """`headwater.pipeline.<status>` on resource `headwater.pipeline.<name>`: what deployment triggers
    of downstream pipelines match (headwater.deploy), and anyone's automations may."""
    from prefect.events import emit_event

    related = []
    if flow_run.id:
        related.append(
            {"prefect.resource.id": f"prefect.flow-run.{flow_run.id}", "prefect.resource.role": "flow-run"}
        )
    emit_event(
        event=f"{EVENT_PREFIX}{status}",
        resource={"prefect.resource.id": pipeline_resource(pipeline), "prefect.resource.name": pipeline},
        related=related,
        payload=payload,
    )


def load_database_url(name: str) -> str:
    from blocks import HeadwaterDatabase

    return HeadwaterDatabase.load(name).sqlalchemy_url()


def load_rest_token(name: str) -> str:
    from blocks import RestCredentials

    block: RestCredentials = RestCredentials.load(name)  # type: ignore[assignment]
    return block.token.get_secret_value()


def load_service_account_key(name: str) -> str:
    from blocks import Ga4ServiceAccount

    try:
        block: Ga4ServiceAccount = Ga4ServiceAccount.load(name)  # type: ignore[assignment]
    except ValueError as exc:  # Prefect: "Unable to find block document named ..."
        raise PermanentError(
            f"GA4 service-account block {name!r} cannot be loaded: {exc}",
            hint='save the key as that block: python -c "from blocks import Ga4ServiceAccount as B; '
            f"B(key_json=open('key.json').read()).save('{name}')\" (after prefect block register -m blocks)",
        ) from None
    return block.key_json.get_secret_value()


def detect_execution_type() -> str:
    """scheduled | triggered | retry | manual, from what Prefect knows of this flow run."""
    if (flow_run.run_count or 1) > 1:
        return "retry"
    if not deployment.id:
        return "manual"
    try:
        from prefect import get_client

        with get_client(sync_client=True) as client:
            info = client.read_flow_run(flow_run.id)
    except Exception:  # the record is nice to have; never fail a run over it
        return "manual"
    if info.auto_scheduled:
        return "scheduled"
    created_by = getattr(info.created_by, "type", None) if info.created_by else None
    return "triggered" if created_by and created_by.upper() == "AUTOMATION" else "manual"


class PrefectExecutor:
    """The domain's driver (headwater.pipeline.driver) submits steps here: each is a Prefect task run
    with the step's retry policy, so independent steps run at once and the UI shows every attempt."""

    def submit(self, run: PipelineRun, name: str, inputs: dict[str, Any]) -> PrefectFuture[Any]:
        return step_task(run, name).submit(run, name, inputs)

    def next_done(self, handles: Sequence[PrefectFuture[Any]]) -> PrefectFuture[Any]:
        return next(iter(as_completed(list(handles))))

    def outcome(self, handle: PrefectFuture[Any]) -> Any:
        return handle.result()


@flow(name="pipeline", flow_run_name="{pipeline}", persist_result=False, validate_parameters=True)
def pipeline_flow(
    pipeline: str,
    execution_type: str | None = None,
    pipelines_dir: str | None = None,
    replay: bool = False,
    params: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Run the pipeline named `pipeline` from `pipelines_dir` (default HEADWATER_PIPELINES). With
    `replay`, run only its quarantined rows back through validation and load the ones that pass.
    `params`: values for the parameters the spec declares (text or JSON; the rest take defaults).
    `run_id`: the id to record the run under (chosen by whoever asked for it, to link to it)."""
    logger = get_run_logger()
    settings = Settings.from_env()
    settings.ensure_home()
    folder = pipelines_dir or settings.pipelines_dir
    store = Store(settings.database_url).migrate()
    try:
        loaded = find_pipeline(folder, pipeline, params=params)
    except PipelineNotFound:
        store.dispose()
        raise
    except SpecError as exc:  # refused before it starts: still a run that was asked for
        kind = "replay" if replay else (execution_type or detect_execution_type())
        flow_run_ref = str(flow_run.id) if flow_run.id else None
        record_refusal(
            store,
            folder,
            pipeline,
            exc,
            execution_type=kind,
            run_id=run_id,
            params=params,
            flow_run_id=flow_run_ref,
        )
        store.dispose()
        raise
    connections = Connections(
        settings.warehouse_url,
        database_block=load_database_url,
        secret_block=load_rest_token,
        service_account_block=load_service_account_key,
    )
    kind = execution_type or detect_execution_type()
    if not replay and kind in APPLIES_TO and loaded.spec.when is not None:
        reason, skipped = None, None
        try:
            reason = unmet(loaded, store, connections)
            if reason is not None:
                skipped = store.record_skipped_run(
                    store.register_pipeline(loaded, settings.warehouse_url),
                    pipeline,
                    reason,
                    execution_type=kind,
                    run_id=run_id,
                    flow_run_id=str(flow_run.id) if flow_run.id else None,
                )
        except BaseException:
            connections.dispose()
            store.dispose()
            raise
        if reason is not None:
            connections.dispose()
            store.dispose()
            logger.info("%s skipped: %s", pipeline, reason)
            emit_outcome(pipeline, "skipped", {"run_id": skipped, "reason": reason})
            # a Completed state named Skipped: its event is prefect.flow-run.Skipped, so a run that
            # changed nothing triggers nothing downstream
            return Completed(  # type: ignore[return-value]
                name="Skipped",
                message=reason,
                data={"run_id": skipped, "pipeline": pipeline, "status": "skipped", "reason": reason},
            )
    run = PipelineRun(
        loaded,
        store,
        connections,
        execution_type=kind,
        replay=replay,
        flow_run_id=str(flow_run.id) if flow_run.id else None,
        run_id=run_id,
        stream_min_bytes=settings.stream_min_bytes,
    )
    try:
        run.start()
        for crashed in run.crashed_runs:
            logger.warning("earlier run %s never finished (its process is gone): marked crashed", crashed)
        outcome = run.outcome(execute(run, PrefectExecutor()))
    finally:
        connections.dispose()
        store.dispose()
    summary = outcome.summary
    logger.info(
        "%s %s: %d rows read, %d inserted, %d updated",
        pipeline,
        summary.status,
        summary.records_processed,
        summary.records_inserted,
        summary.records_updated,
    )
    emit_outcome(
        pipeline,
        summary.status,
        {
            "run_id": run.run_id,
            "execution_type": kind,
            "records_processed": summary.records_processed,
            "records_inserted": summary.records_inserted,
            "records_updated": summary.records_updated,
        },
    )
    notify_alerts(outcome, settings, connections.secrets)
    if outcome.failed:
        raise PipelineRunFailed(outcome)
    return outcome.as_dict()


def flow_for(pipeline: str) -> Any:
    """The flow as it is named for one pipeline."""
    return pipeline_flow.with_options(name=pipeline)
