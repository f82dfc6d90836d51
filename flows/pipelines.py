"""The one entrypoint of every deployment: `flows.pipelines.<pipeline>` is the pipeline flow named
after that pipeline, made on demand for any spec in the pipelines folder. No per-pipeline code:
adding a pipeline is adding its spec (see headwater.deploy)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def spec_attribute(name: str, flow_for: Callable[[str], Any]) -> Any:
    """A module's `__getattr__` for flows named after specs: `flow_for(name)` when the pipelines
    folder has a spec of that name, else AttributeError (how Prefect's entrypoint lookup fails)."""
    if name.startswith("__"):
        raise AttributeError(name)
    from headwater.settings import Settings
    from headwater.spec.loader import PipelineNotFound, spec_path_for

    try:
        spec_path_for(Settings.from_env().pipelines_dir, name)
    except PipelineNotFound as exc:
        raise AttributeError(f"no pipeline named {name!r}: {exc}") from None
    return flow_for(name)


def __getattr__(name: str) -> Any:
    from flows.pipeline import flow_for

    return spec_attribute(name, flow_for)
