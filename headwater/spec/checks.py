"""Cross-field checks of a parsed spec: the step graph, ops, schedules, files, incremental sources."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from graphlib import CycleError, TopologicalSorter
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from headwater.errors import SpecProblem
from headwater.spec.loader import LoadedSpec
from headwater.spec.models import (
    ExtractStep,
    FileSource,
    Ga4Source,
    LoadStep,
    SqlSource,
    TransformStep,
    ValidateStep,
    WebhookSource,
)


def step_order(loaded: LoadedSpec) -> list[str]:
    graph = {s.name: set(s.depends_on) for s in loaded.spec.steps}
    return list(TopologicalSorter(graph).static_order())


def downstream_loads(loaded: LoadedSpec, step_name: str) -> list[str]:
    """Load steps that (transitively) consume `step_name`."""
    spec = loaded.spec
    children: dict[str, list[str]] = {s.name: [] for s in spec.steps}
    for s in spec.steps:
        for dep in s.depends_on:
            children.setdefault(dep, []).append(s.name)
    seen, stack, loads = set(), [step_name], []
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in seen:
                seen.add(child)
                stack.append(child)
                if isinstance(spec.step(child), LoadStep):
                    loads.append(child)
    return loads


def check_spec(loaded: LoadedSpec, *, validating: bool = False) -> list[SpecProblem]:
    from headwater.extract.files import resolve_paths
    from headwater.transform import OpParseError, parse_ops

    spec, file = loaded.spec, str(loaded.path)
    problems: list[SpecProblem] = []

    def add(loc: tuple[str | int, ...], message: str, hint: str) -> None:
        from headwater.spec.loader import field_path

        problems.append(SpecProblem(file, field_path(loc), message, hint, loaded.line(*loc)))

    names = [s.name for s in spec.steps]
    for i, step in enumerate(spec.steps):
        if names.count(step.name) > 1 and names.index(step.name) != i:
            add(
                ("steps", i, "name"), f"step name {step.name!r} is used twice", "give each step a unique name"
            )
        for j, dep in enumerate(step.depends_on):
            if dep not in names:
                add(("steps", i, "depends_on", j), f"unknown step {dep!r}", f"use one of: {', '.join(names)}")
            if dep == step.name:
                add(("steps", i, "depends_on", j), "a step cannot depend on itself", "remove it")
        if isinstance(step, ExtractStep):
            if step.source not in spec.sources:
                add(
                    ("steps", i, "source"),
                    f"unknown source {step.source!r}",
                    f"use one of: {', '.join(spec.sources)} or add it under sources",
                )
        elif not step.depends_on:
            add(
                ("steps", i, "depends_on"),
                f"a {step.type} step needs an input",
                "list the step whose output it takes in depends_on (the first one is its input)",
            )
        if isinstance(step, TransformStep):
            try:
                ops = parse_ops(step.ops)
            except OpParseError as exc:
                add(("steps", i, "ops", exc.position, exc.op), str(exc), exc.hint or "see docs")
                continue
            for k, op in enumerate(ops):
                for ref in op.references():
                    if ref not in step.depends_on:
                        add(
                            ("steps", i, "ops", k),
                            f"op {op.name} reads step {ref!r}, which is not in depends_on",
                            f"add {ref} to this step's depends_on",
                        )
    for i, step in enumerate(spec.steps):
        if isinstance(step, ValidateStep) and step.suite:
            from headwater.errors import SpecError
            from headwater.quality.suite import load_suite

            try:
                suite = load_suite(loaded.base_dir / step.suite)
            except SpecError as exc:
                add(
                    ("steps", i, "suite"), f"suite {step.suite} has problems:", "fix the suite (listed below)"
                )
                problems.extend(exc.problems)
                continue
            for rule in suite.rules:
                for ref in rule.expectation.references():
                    if ref not in step.depends_on[1:]:
                        add(
                            ("steps", i, "suite"),
                            f"rule {rule.name} of {step.suite} reads table {ref!r}, "
                            "which is not an input of this step",
                            f"add {ref} to depends_on (after the data)",
                        )
    try:
        step_order(loaded)
    except CycleError as exc:
        add(
            ("steps",),
            f"steps depend on each other in a cycle: {' -> '.join(exc.args[1])}",
            "remove one of the depends_on links",
        )

    for name, source in spec.sources.items():
        if isinstance(source, FileSource):
            try:
                resolve_paths(source.path, loaded.base_dir)
            except FileNotFoundError as exc:
                add(
                    ("sources", name, "path"),
                    str(exc),
                    "check the path; relative paths start at the "
                    "spec's folder; pkg:<package>/<file> reads from an installed package",
                )
        if isinstance(source, SqlSource | Ga4Source) and source.incremental:
            extracts = [
                i for i, s in enumerate(spec.steps) if isinstance(s, ExtractStep) and s.source == name
            ]
            loads = {ld for i in extracts for ld in downstream_loads(loaded, spec.steps[i].name)}
            if len(extracts) > 1 or len(loads) > 1:
                add(
                    ("sources", name, "incremental"),
                    "an incremental source must feed exactly one load step "
                    "(its watermark is committed with that load)",
                    "split it into one pipeline per target",
                )
        if isinstance(source, WebhookSource):
            extracts = [
                i for i, s in enumerate(spec.steps) if isinstance(s, ExtractStep) and s.source == name
            ]
            loads = {ld for i in extracts for ld in downstream_loads(loaded, spec.steps[i].name)}
            if len(extracts) != 1 or len(loads) != 1:
                add(
                    ("sources", name),
                    f"a webhook source must be extracted by one step that feeds exactly one load step "
                    f"(its events are marked loaded in that load's transaction); here: "
                    f"{len(extracts)} extract step(s), {len(loads)} load step(s)",
                    "extract it once, load it with one load step; fan out to several tables in another "
                    "pipeline that reads the loaded table",
                )

    for i, step in enumerate(spec.steps):
        if isinstance(step, ExtractStep) and step.on_unavailable == "use_last":
            _use_last_problems(loaded, i, step, add)

    if spec.schedule and spec.schedule.cron is not None:
        from cronsim import CronSim, CronSimError

        try:
            CronSim(spec.schedule.cron, datetime(2026, 1, 1))
        except CronSimError as exc:
            add(
                ("schedule", "cron"),
                f"invalid cron expression {spec.schedule.cron!r}: {exc}",
                "use five fields: minute hour day-of-month month day-of-week, e.g. '0 6 * * *'",
            )
    if spec.schedule:
        try:
            ZoneInfo(spec.schedule.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            add(
                ("schedule", "timezone"),
                f"unknown time zone {spec.schedule.timezone!r}",
                "use an IANA name such as Europe/London or America/New_York",
            )
    if spec.triggers and spec.name in spec.triggers.after:
        i = spec.triggers.after.index(spec.name)
        add(("triggers", "after", i), "a pipeline cannot trigger itself", "remove it")
    if spec.when and spec.when.new_rows is not None:
        found = spec.sources.get(spec.when.new_rows)
        if not isinstance(found, SqlSource) or found.incremental is None:
            incremental = [n for n, s in spec.sources.items() if isinstance(s, SqlSource) and s.incremental]
            add(
                ("when", "new_rows"),
                f"{spec.when.new_rows!r} is not an incremental SQL source of this pipeline",
                f"use one of: {', '.join(incremental)}"
                if incremental
                else "give a sql source an incremental cursor, or drop new_rows",
            )
    from headwater.streams.plan import streaming_problems

    streaming_problems(loaded, add)
    if not problems:  # the structure is sound: follow the columns through it
        from headwater.spec.schemas import schema_problems

        problems += schema_problems(loaded, step_order(loaded), validating=validating)
    return problems


def _use_last_problems(loaded: LoadedSpec, i: int, step: ExtractStep, add: Callable[..., None]) -> None:
    """`on_unavailable: use_last` reloads the last good extract while the source's breaker is open:
    it needs a breaker, and a whole extract whose reload changes nothing the second time."""
    spec = loaded.spec
    source = spec.sources.get(step.source)
    if source is None:
        return
    where = ("steps", i, "on_unavailable")
    breaker = getattr(source, "breaker", None)
    if breaker is None:
        add(
            where,
            f"source {step.source} is a {source.kind} source: it has no circuit breaker, so there is "
            "nothing to fall back from",
            "remove on_unavailable (a file is read, not called: a missing file is an error to fix)",
        )
    elif not breaker.enabled:
        add(
            where,
            f"use_last applies while the breaker of source {step.source} is open, but it is disabled",
            f"remove breaker: {{enabled: false}} from source {step.source}, or on_unavailable",
        )
    if getattr(source, "incremental", None):
        add(
            where,
            f"source {step.source} is incremental: its last extract holds only the rows of one run, "
            "not the last good data",
            "remove on_unavailable: use_last, or the incremental cursor",
        )
    for name in downstream_loads(loaded, step.name):
        load = spec.step(name)
        if isinstance(load, LoadStep) and load.destination.mode == "append":
            add(
                where,
                f"load step {name} appends: reloading the last good extract would add its rows again",
                f"use mode upsert (with primary_key) or overwrite in step {name}",
            )
