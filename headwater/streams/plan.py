"""A streaming spec as the processor runs it (parsed once), and the checks that refuse what a
micro-batch cannot do: ops that need the whole data set, row-count rules, sources of the wrong kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from headwater.spec.loader import LoadedSpec
from headwater.spec.models import (
    Expectation,
    ExtractStep,
    LoadStep,
    NotifyStep,
    RedisStreamSource,
    TransformStep,
    ValidateStep,
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

    @classmethod
    def of(cls, loaded: LoadedSpec) -> StreamPlan:
        spec = loaded.spec
        ((source_name, source),) = spec.sources.items()
        if not isinstance(source, RedisStreamSource):
            raise TypeError(f"{spec.name} is not a streaming spec")
        ops: list[Op] = []
        rules: list[Expectation] = []
        loads = []
        from headwater.spec.checks import step_order

        for name in step_order(loaded):
            step = spec.step(name)
            if isinstance(step, TransformStep):
                ops += parse_ops(step.ops)
            elif isinstance(step, ValidateStep):
                rules += step.expect
            elif isinstance(step, LoadStep):
                loads.append(step)
        return cls(spec.name, source_name, source, ops, rules, loads[0], list(spec.pii))


def streaming_problems(loaded: LoadedSpec, add: Callable[..., None]) -> None:
    """Add (loc, message, fix) for each part of `loaded` that a stream processor cannot run, and for
    stream sources in a batch spec."""
    spec = loaded.spec
    streams = [n for n, s in spec.sources.items() if isinstance(s, RedisStreamSource)]
    if spec.type != "streaming":
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
