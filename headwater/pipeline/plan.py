"""What a run would do, without doing it: the spec loaded with the run's parameters (so every check a
run makes at start has passed), then each step in order with what it reads, applies, checks and
writes — and where an incremental source would resume. Nothing is read from the sources and nothing
is written. The API's `dry_run` answers with this."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from headwater.connections import Connections
from headwater.spec.loader import LoadedSpec, find_pipeline, mask_secrets
from headwater.spec.models import ExtractStep, LoadStep, NotifyStep, SqlSource, TransformStep, ValidateStep
from headwater.store.store import source_location


def _order(loaded: LoadedSpec) -> list[str]:
    """Steps in an order that honours depends_on (the spec's order among those ready together)."""
    steps = {s.name: s for s in loaded.spec.steps}
    done: list[str] = []
    while len(done) < len(steps):
        for name, step in steps.items():
            if name not in done and all(d in done for d in step.depends_on):
                done.append(name)
                break
        else:  # a cycle is refused at load; never loop forever
            done.extend(n for n in steps if n not in done)
    return done


def _watermark(loaded: LoadedSpec, step: ExtractStep, connections: Connections) -> dict[str, Any]:
    from headwater.load import read_watermark
    from headwater.spec.checks import downstream_loads

    loads = [s for s in loaded.spec.steps if isinstance(s, LoadStep)]
    load = next((s for s in loads if s.name in downstream_loads(loaded, step.name)), None)
    if load is None:
        return {"resumes_from": None, "note": "no load follows this extract: it reads everything"}
    try:
        engine = connections.engine(loaded.spec.warehouse_of(load))
        value = read_watermark(engine, loaded.spec.name, step.source)
    except Exception as exc:  # the plan still answers; the run would fail on it
        return {"resumes_from": None, "note": f"the warehouse did not answer: {type(exc).__name__}"}
    if value is None:
        return {"resumes_from": None, "note": "no watermark yet: the first run reads everything"}
    return {"resumes_from": str(value)}


def plan(
    pipelines_dir: str | Path,
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    connections: Connections | None = None,
) -> dict[str, Any]:
    """The run's plan as JSON-ready data; SpecError (with file:line and the fix) when the spec or a
    parameter value is wrong, exactly as a run would fail."""
    loaded = find_pipeline(pipelines_dir, name, params=dict(params or {}))
    spec = loaded.spec
    steps: list[dict[str, Any]] = []
    for step_name in _order(loaded):
        step = next(s for s in spec.steps if s.name == step_name)
        out: dict[str, Any] = {
            "name": step.name,
            "type": step.type,
            "depends_on": list(step.depends_on),
            "critical": step.critical,
        }
        if isinstance(step, ExtractStep):
            source = spec.sources[step.source]
            location, cursor = source_location(source)
            out["source"] = {"name": step.source, "kind": source.kind, "location": location}
            if isinstance(source, SqlSource) and source.incremental:
                out["source"]["cursor"] = cursor
                if connections is not None:
                    out["source"].update(_watermark(loaded, step, connections))
        elif isinstance(step, TransformStep):
            out["ops"] = [next(iter(op)) for op in step.ops]
        elif isinstance(step, ValidateStep):
            out["suite"] = step.suite
            out["expect"] = [e.name for e in step.expect]
            out["min_rows"] = step.min_rows
        elif isinstance(step, LoadStep):
            ref = spec.warehouse_of(step)
            out["destination"] = {
                "table": step.destination.table,
                "mode": step.destination.mode,
                "primary_key": list(step.destination.primary_key),
                "warehouse": "default" if ref is None else (f"block:{ref.block}" if ref.block else "url"),
            }
        elif isinstance(step, NotifyStep):
            out["channels"] = list(step.channels)
        steps.append(out)
    return {
        "pipeline": spec.name,
        "spec": str(loaded.path),
        "spec_hash": loaded.digest,
        "parameters": mask_secrets(dict(loaded.params)),
        "notes": [str(n) for n in loaded.notes],
        "steps": steps,
    }
