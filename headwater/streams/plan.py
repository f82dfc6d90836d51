"""A streaming spec as the processor runs it (parsed once), and the checks that refuse what a
micro-batch cannot do: ops that need the whole data set, row-count rules, sources of the wrong kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from headwater.spec.loader import LoadedSpec
from headwater.spec.models import (
    STREAM_ONLY_STEPS,
    AlertStep,
    AnomalyStep,
    Expectation,
    ExtractStep,
    LoadStep,
    NotifyStep,
    PublishStep,
    RedisStreamSource,
    TransformStep,
    ValidateStep,
    WindowStep,
)
from headwater.transform import Op, parse_ops

WHOLE_DATA_OPS = {
    "sort": "a batch's order says nothing about the stream's",
    "dedupe": "duplicates in other batches are not seen; upsert on a key instead",
    "aggregate": "a batch's groups are not the stream's; event-time windows will do this",
    "rank": "ranks within one batch mean nothing",
    "running_total": "a total within one batch means nothing",
    "top_n": "the top rows of one batch are not the stream's",
    "window": "partitions of one batch are not the stream's",
    "limit": "it would drop events of every batch past the first n",
    "sample": "it would drop events",
    "scale_minmax": "the min and max of one batch are not the stream's",
    "scale_zscore": "the mean and spread of one batch are not the stream's",
    "pivot": "its columns come from the values in the whole data set",
    "join": "a streaming spec has one input",
    "lookup": "a streaming spec has one input",
    "union": "a streaming spec has one input",
    "explode": "one event would become several rows sharing an entry id",
}
"""Ops refused in a streaming spec, with why: they need the whole data set (or other inputs)."""
WHOLE_DATA_FILL = {"forward", "backward", "mean", "min", "max"}
"""fill_null strategies that read other rows (a batch's, not the stream's)."""


Reads = Literal["events", "good", "scored", "windows"]
"""What a step after the rules reads: every event after the ops (rule-breaking ones too), the events
that passed the rules, those events with the anomaly step's z-scores, or the closed windows."""


@dataclass(frozen=True)
class Output:
    """An alert or publish step and the rows it reads."""

    step: AlertStep | PublishStep
    reads: Reads


def reads_of(loaded: LoadedSpec, step_name: str | None) -> Reads:
    before = next((s for s in loaded.spec.steps if s.name == step_name), None)
    if isinstance(before, WindowStep):
        return "windows"
    if isinstance(before, AnomalyStep):
        return "scored"
    if isinstance(before, ValidateStep):
        return "good"
    return "events"


@dataclass(frozen=True)
class StreamPlan:
    """What the processor does with each batch: parse the source's entries, apply `ops` in order,
    route rows breaking `rules` to the dead-letter stream, load the others with `load`."""

    name: str
    source_name: str
    source: RedisStreamSource
    ops: list[Op]
    rules: list[Expectation]
    load: LoadStep
    pii: list[str]
    window: WindowStep | None = None
    """The event-time windows over the rows `load` loads (after the ops and rules), if any."""
    window_load: LoadStep | None = None
    """The load step of the closed windows (it depends on `window`); committed with `load`."""
    anomaly: AnomalyStep | None = None
    """Per-key z-scores on the events that passed the rules (before the load and the windows)."""
    outputs: tuple[Output, ...] = ()
    """Alert and publish steps, in spec order."""

    def output_reads(self, kind: type) -> list[Output]:
        return [o for o in self.outputs if isinstance(o.step, kind)]

    @classmethod
    def of(cls, loaded: LoadedSpec) -> StreamPlan:
        spec = loaded.spec
        ((source_name, source),) = spec.sources.items()
        if not isinstance(source, RedisStreamSource):
            raise TypeError(f"{spec.name} is not a streaming spec")
        ops: list[Op] = []
        rules: list[Expectation] = []
        loads: list[LoadStep] = []
        window: WindowStep | None = None
        window_load: LoadStep | None = None
        anomaly: AnomalyStep | None = None
        outputs: list[Output] = []
        from headwater.spec.checks import step_order

        for name in step_order(loaded):
            step = spec.step(name)
            if isinstance(step, TransformStep):
                ops += parse_ops(step.ops)
            elif isinstance(step, ValidateStep):
                rules += step.expect
            elif isinstance(step, WindowStep):
                window = step
            elif isinstance(step, AnomalyStep):
                anomaly = step
            elif isinstance(step, AlertStep | PublishStep):
                outputs.append(Output(step, reads_of(loaded, step.primary_input)))
            elif isinstance(step, LoadStep):
                if window is not None and step.primary_input == window.name:
                    window_load = step
                else:
                    loads.append(step)
        return cls(
            spec.name,
            source_name,
            source,
            ops,
            rules,
            loads[0],
            list(spec.pii),
            window,
            window_load,
            anomaly,
            tuple(outputs),
        )


def streaming_problems(loaded: LoadedSpec, add: Callable[..., None]) -> None:
    """Add (loc, message, fix) for each part of `loaded` that a stream processor cannot run, and for
    stream sources in a batch spec."""
    spec = loaded.spec
    streams = [n for n, s in spec.sources.items() if isinstance(s, RedisStreamSource)]
    if spec.type != "streaming":
        for i, step in enumerate(spec.steps):
            if isinstance(step, WindowStep):
                add(
                    ("steps", i, "type"),
                    f"a window step groups a stream's events; a {spec.type} pipeline reads a data set",
                    "use the aggregate op (group_by on a truncated time column) in a transform step, or "
                    "move the window to a type: streaming pipeline",
                )
            elif step.type in STREAM_ONLY_STEPS:
                add(
                    ("steps", i, "type"),
                    f"step {step.name} ({step.type}) runs inside a stream processor; a {spec.type} "
                    "pipeline has none",
                    "move the step to a type: streaming pipeline (batch runs alert through alerts: and "
                    "rules.yaml)",
                )
        for name in streams:
            add(
                ("sources", name, "kind"),
                f"a redis_stream source is read by a stream processor, not by a {spec.type} run",
                "set `type: streaming` on the pipeline (and run it with headwater stream run), or read "
                "the table a streaming pipeline loads",
            )
        return
    for name, source in spec.sources.items():
        if not isinstance(source, RedisStreamSource):
            add(
                ("sources", name, "kind"),
                f"a streaming pipeline reads one redis_stream source, not a {source.kind} source",
                "move this source to a batch pipeline (type: etl)",
            )
    if len(streams) != 1:
        add(("sources",), f"a streaming pipeline has one stream source; here {len(streams)}", "keep one")
    for key in ("schedule", "triggers", "when"):
        if getattr(spec, key) is not None:
            add((key,), f"a streaming pipeline runs until stopped: {key} does not apply", f"remove {key}")
    extracts = loads = 0
    windows = {s.name: i for i, s in enumerate(spec.steps) if isinstance(s, WindowStep)}
    window_steps = {s.name: s for s in spec.steps if isinstance(s, WindowStep)}
    window_loads = 0
    for i, step in enumerate(spec.steps):
        if isinstance(step, ExtractStep):
            extracts += 1
        elif len(step.depends_on) != 1:
            add(
                ("steps", i, "depends_on"),
                f"step {step.name}: a streaming pipeline's steps form one line, each taking one input",
                "list exactly one step in depends_on",
            )
        if isinstance(step, TransformStep):
            _op_problems(step, i, add)
        elif isinstance(step, ValidateStep):
            if step.min_rows is not None:
                add(
                    ("steps", i, "min_rows"),
                    "min_rows counts a batch's rows, which say nothing about a stream",
                    "remove min_rows; rules in expect are checked on every event",
                )
            if step.suite is not None:
                add(
                    ("steps", i, "suite"),
                    "a quality suite is not checked on streams yet",
                    "write the row rules as expect: [{name, rule}] (failing events are dead-lettered)",
                )
        elif isinstance(step, WindowStep):
            _window_problems(loaded, i, step, add)
        elif isinstance(step, AnomalyStep):
            _anomaly_problems(loaded, i, step, add)
        elif isinstance(step, AlertStep | PublishStep):
            _output_problems(loaded, i, step, add)
        ends = {s.name for s in spec.steps if isinstance(s, AlertStep | PublishStep)}
        if step.primary_input in ends:
            add(
                ("steps", i, "depends_on"),
                f"step {step.name} depends on {step.primary_input}, whose rows go out of the processor",
                f"make {step.name} depend on the step {step.primary_input} depends on",
            )
        elif not isinstance(step, LoadStep | WindowStep | AlertStep | PublishStep) and (
            step.primary_input in windows
        ):
            add(
                ("steps", i, "depends_on"),
                f"step {step.name} takes window results; only load, alert and publish steps may "
                "follow a window step",
                f"make {step.name} depend on the step before the window, or load the windows first",
            )
        if isinstance(step, LoadStep) and step.primary_input in windows:
            window_loads += 1
            _window_load_problems(window_steps[step.primary_input], i, step, add)
        elif isinstance(step, LoadStep):
            loads += 1
            if step.destination.mode == "overwrite":
                add(
                    ("steps", i, "destination", "mode"),
                    "mode overwrite would replace the table with each batch",
                    "use mode append, or upsert with a primary_key",
                )
        elif isinstance(step, NotifyStep):
            add(("steps", i), "a streaming pipeline has no notify steps yet", "remove it")
    if extracts != 1 or loads != 1:
        add(
            ("steps",),
            f"a streaming pipeline extracts its stream once and loads once (its last entry id is "
            f"committed with that load); here {extracts} extract step(s), {loads} load step(s)",
            "keep one extract and one load step",
        )
    if len(windows) > 1:
        add(
            ("steps", list(windows.values())[1]),
            f"a streaming pipeline has at most one window step; here {len(windows)}",
            "keep one window step (one window state is committed with each batch)",
        )
    elif windows and window_loads != 1:
        ((name, i),) = windows.items()
        add(
            ("steps", i),
            f"window step {name} needs exactly one load step for its closed windows; here {window_loads}",
            f"add a load step with depends_on: [{name}] and destination {{table: ..., mode: upsert, "
            f"primary_key: [<keys>, window_start]}}",
        )


def _anomaly_problems(loaded: LoadedSpec, i: int, step: AnomalyStep, add: Callable[..., None]) -> None:
    spec = loaded.spec
    if sum(isinstance(s, AnomalyStep) for s in spec.steps) > 1 and spec.steps.index(step) != next(
        k for k, s in enumerate(spec.steps) if isinstance(s, AnomalyStep)
    ):
        add(("steps", i), "a streaming pipeline has at most one anomaly step", "keep one")
    before = next((s for s in spec.steps if s.name == step.primary_input), None)
    if not isinstance(before, ValidateStep | TransformStep | ExtractStep):
        add(
            ("steps", i, "depends_on"),
            f"anomaly step {step.name} scores the events that passed the rules; it follows "
            f"{getattr(before, 'type', 'nothing')} step {step.primary_input}",
            "make it depend on the validate step (or the last transform step)",
        )
    _time_column_problem(loaded, ("steps", i, "anomaly", "time_column"), step.anomaly.time_column, add)


def _output_problems(
    loaded: LoadedSpec, i: int, step: AlertStep | PublishStep, add: Callable[..., None]
) -> None:
    spec = loaded.spec
    reads = reads_of(loaded, step.primary_input)
    if reads == "events":
        transforms = [s.name for s in spec.steps if isinstance(s, TransformStep)]
        last = transforms[-1] if transforms else None
        before = next((s for s in spec.steps if s.name == step.primary_input), None)
        if not isinstance(before, TransformStep | ExtractStep) or (
            last is not None and step.primary_input != last
        ):
            add(
                ("steps", i, "depends_on"),
                f"{step.type} step {step.name} reads the events after every op: it depends on the last "
                f"transform step{f' ({last})' if last else ''}, not on {step.primary_input}",
                f"set depends_on: [{last or 'the extract step'}], or a validate, anomaly or window step",
            )
    if isinstance(step, AlertStep):
        time_column = step.time_column or ("window_end" if reads == "windows" else None)
        for k, rule in enumerate(step.rules):
            if rule.hold is not None and time_column is None:
                add(
                    ("steps", i, "rules", k, "for"),
                    f"rule {rule.name} fires after its condition held {rule.hold:g} s of event time, "
                    "but the step has no time column",
                    "set time_column: <the event-time column> on the alert step",
                )
        names = [r.name for r in step.rules]
        if len(set(names)) != len(names):
            add(("steps", i, "rules"), "alert rule names repeat in the step", "give each rule its own name")


def _time_column_problem(
    loaded: LoadedSpec, loc: tuple[Any, ...], column: str, add: Callable[..., None]
) -> None:
    source = next((s for s in loaded.spec.sources.values() if isinstance(s, RedisStreamSource)), None)
    declared = source.columns.get(column) if source is not None else None
    if declared is not None and declared.lower() not in _TIME_TYPES:
        add(
            loc,
            f"the time column {column} is read as {declared}, not as a time",
            f"declare it in the source: columns: {{{column}: timestamptz}}",
        )


def _op_problems(step: TransformStep, i: int, add: Callable[..., None]) -> None:
    for k, raw in enumerate(step.ops):
        ((name, params),) = raw.items()
        why = WHOLE_DATA_OPS.get(name)
        if why is None and name == "fill_null" and isinstance(params, dict):
            strategy = params.get("strategy")
            if strategy in WHOLE_DATA_FILL:
                why = f"strategy {strategy} reads other rows of the batch"
        if why is not None:
            add(
                ("steps", i, "ops", k, name),
                f"op {name} needs the whole data set, a stream gives it one batch at a time: {why}",
                f"remove {name} from this streaming pipeline, or apply it in a batch pipeline that "
                "reads the table this one loads",
            )


_TIME_TYPES = {"timestamp", "timestamptz", "datetime"}


def _window_problems(loaded: LoadedSpec, i: int, step: WindowStep, add: Callable[..., None]) -> None:
    spec = loaded.spec
    before = next((s for s in spec.steps if s.name == step.primary_input), None)
    if isinstance(before, LoadStep | WindowStep):
        add(
            ("steps", i, "depends_on"),
            f"window step {step.name} follows {before.type} step {before.name}",
            "make it depend on the last transform or validate step (it windows the rows that pass the rules)",
        )
    source = next((s for s in spec.sources.values() if isinstance(s, RedisStreamSource)), None)
    column = step.window.time_column
    declared = source.columns.get(column) if source is not None else None
    if declared is not None and declared.lower() not in _TIME_TYPES:
        add(
            ("steps", i, "window", "time_column"),
            f"the window's time column {column} is read as {declared}, not as a time",
            f"declare it in the source: columns: {{{column}: timestamptz}}",
        )


def _window_load_problems(window: WindowStep, i: int, step: LoadStep, add: Callable[..., None]) -> None:
    running = window.window.kind == "running"  # one row per key, its totals replaced batch after batch
    key = list(window.window.keys) if running else [*window.window.keys, "window_start"]
    dest = step.destination
    if dest.mode == "overwrite":
        add(
            ("steps", i, "destination", "mode"),
            "mode overwrite would replace the window table with each batch's closed windows",
            f"use mode upsert with primary_key: [{', '.join(key)}], or append",
        )
    elif dest.mode == "upsert" and running and not key:
        add(
            ("steps", i, "destination", "mode"),
            "a running total without keys is one row, which upsert cannot find without a primary key",
            "give the window keys, or load its totals with mode append (one row per batch)",
        )
    elif dest.mode == "upsert" and sorted(dest.primary_key) != sorted(key):
        what = "a window is identified by its keys and window_start"
        if running:
            what = "running totals are identified by their keys alone"
        add(
            ("steps", i, "destination", "primary_key"),
            f"{what}; primary_key {dest.primary_key} is not",
            f"set primary_key: [{', '.join(key)}]",
        )
