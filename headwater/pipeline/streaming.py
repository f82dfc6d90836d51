"""Large inputs stream. A file source at least HEADWATER_STREAM_MIN_MB large (default 256 MB) whose
every downstream step is a transform or a load is not read whole: its extract hands on a lazy scan,
transforms add their ops to the plan (no per-op counters: they would need a pass of their own), and the
load runs the plan with Polars' streaming engine in batches, each COPYed into PostgreSQL as it comes,
all in the load's one transaction. Memory stays flat as the input grows. Steps that need the whole
frame (validate, notify) keep the data materialised, as does a load into SQLite (it collects the plan
with the streaming engine first)."""

from __future__ import annotations

from headwater.spec.loader import LoadedSpec
from headwater.spec.models import ExtractStep, FileSource, LoadStep, TransformStep


def streamable_extracts(loaded: LoadedSpec) -> set[str]:
    """Extract steps of file sources whose downstream steps are all transforms or loads."""
    spec = loaded.spec
    children: dict[str, list[str]] = {s.name: [] for s in spec.steps}
    for step in spec.steps:
        for dep in step.depends_on:
            children.setdefault(dep, []).append(step.name)
    out = set()
    for step in spec.steps:
        if not isinstance(step, ExtractStep) or not isinstance(spec.sources.get(step.source), FileSource):
            continue
        seen, todo, ok = set(), list(children.get(step.name, [])), True
        while todo and ok:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            ok = isinstance(spec.step(name), TransformStep | LoadStep)
            todo += children.get(name, [])
        if ok and seen:
            out.add(step.name)
    return out
