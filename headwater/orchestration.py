"""The port through which the domain asks the orchestrator (Prefect) for what the `headwater` command
needs of it. The domain knows only this Protocol; the adapter that implements it lives with the
flows (flows/adapter.py: `PrefectOrchestration`), and is found by name at run time
($HEADWATER_ORCHESTRATION, default `flows.adapter:PrefectOrchestration`), so nothing here imports
flows, tasks, blocks or Prefect (the import-linter contracts in pyproject.toml hold us to it)."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from headwater.errors import PermanentError

if TYPE_CHECKING:
    from headwater.control import LocalOrchestrator
    from headwater.deploy import DeploymentPlan, DeployReport
    from headwater.streams.keeper import StreamDeployment

ORCHESTRATION_ENV = "HEADWATER_ORCHESTRATION"
DEFAULT_ORCHESTRATION = "flows.adapter:PrefectOrchestration"
"""`module:Class` of the adapter; the class is made with no arguments, once per process."""


class TemporaryApi(Protocol):
    """An orchestrator API started for one command, ended with it."""

    @property
    def url(self) -> str: ...

    def stop(self) -> None: ...


class Orchestration(Protocol):
    """What the `headwater` command needs of the orchestrator."""

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
        """Run the pipeline's flow in this process: the run's summary (a failed run's too, not raised)."""
        ...

    def start_temporary_api(self, log: Path | None = None) -> TemporaryApi:
        """Start an orchestrator API for this command (its output to `log`), answering when returned."""
        ...

    def configured_api_url(self) -> str | None:
        """The API URL this process's orchestrator settings hold (a test harness sets it there, not in
        the environment). Ask only once the orchestrator is loaded: see `settings_api_url`."""
        ...

    def apply_plans(
        self, plans: Sequence[DeploymentPlan], pipelines_dir: str | Path, *, prune: bool = True
    ) -> DeployReport:
        """Make the orchestrator hold exactly these deployments (of the pipelines in `pipelines_dir`)."""
        ...

    def set_paused(self, api_url: str, local: LocalOrchestrator, pipeline: str, paused: bool) -> None:
        """Pause or resume the schedule of the pipeline's deployment on the server at `api_url`."""
        ...

    def deployment_id(self, pipeline: str) -> Any | None:
        """The id of the pipeline's deployment on the server, None when it has none."""
        ...

    def submit(
        self, deployment: Any, pipeline: str, params: dict[str, str], run_id: str, backfill: str
    ) -> str:
        """A flow run of the deployment for one backfill partition: its flow run id."""
        ...

    def finished(self, flow_run_ids: list[str]) -> dict[str, str]:
        """The flow runs among these that ended, with their state type."""
        ...

    def stream_deployments(self, pipelines: list[str], recent: int) -> dict[str, StreamDeployment]:
        """The deployments of these stream processors on the server, each with its `recent` newest
        flow runs (headwater/streams/keeper.py)."""
        ...

    def start_stream_run(self, deployment_id: str) -> str:
        """A new flow run of a stream processor's deployment: its id."""
        ...

    def mark_crashed(self, flow_run_id: str, message: str) -> None:
        """Mark a flow run whose process is gone Crashed."""
        ...


_instances: dict[str, Orchestration] = {}


def orchestration() -> Orchestration:
    """The adapter $HEADWATER_ORCHESTRATION names (default Prefect's), made once per process."""
    target = os.environ.get(ORCHESTRATION_ENV) or DEFAULT_ORCHESTRATION
    found = _instances.get(target)
    if found is None:
        module, sep, name = target.partition(":")
        if not sep or not module or not name:
            raise PermanentError(
                f"{ORCHESTRATION_ENV}={target!r} is not module:Class",
                hint=f"unset it, or give e.g. {DEFAULT_ORCHESTRATION}",
            )
        found = _instances[target] = getattr(importlib.import_module(module), name)()
    return found


def settings_api_url() -> str | None:
    """The API URL the orchestrator's settings hold in this process, when it has loaded them (its
    settings module imported): else None, without loading anything."""
    if "prefect.settings" not in sys.modules:
        return None
    return orchestration().configured_api_url()
