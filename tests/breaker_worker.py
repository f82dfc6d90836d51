"""An orchestration adapter for `headwater run` worker processes in tests that need no Prefect: the
run goes through the domain's driver (SequentialExecutor), exactly as the flow drives it, in the
process the command started. Select it with HEADWATER_ORCHESTRATION=tests.breaker_worker:Sequential."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class Sequential:
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
        from headwater.connections import Connections
        from headwater.pipeline import PipelineRun
        from headwater.pipeline.driver import SequentialExecutor, execute
        from headwater.settings import Settings
        from headwater.spec.loader import find_pipeline
        from headwater.store import Store

        settings = Settings.from_env()
        store = Store(settings.database_url).migrate()
        connections = Connections(settings.warehouse_url)
        try:
            run = PipelineRun(
                find_pipeline(pipelines_dir, pipeline, params=params),
                store,
                connections,
                execution_type=execution_type or "manual",
                run_id=run_id,
            )
            run.start()
            return run.outcome(execute(run, SequentialExecutor())).as_dict()
        finally:
            connections.dispose()
            store.dispose()
