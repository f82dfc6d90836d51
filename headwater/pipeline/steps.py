"""What each step type does with its inputs. Pure functions of (spec, inputs, connections)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from headwater.breakers import Breakers, CircuitOpen, age_text, source_breaker, stamp
from headwater.connections import Connections
from headwater.errors import DataQualityError, PermanentError, TransientError
from headwater.extract import extract_source
from headwater.extract.kept import KeptExtracts
from headwater.frames import streamed_read_error
from headwater.load import LoadResult, WatermarkUpdate, load_frame, read_watermark
from headwater.load.base import schema_drift
from headwater.load.quarantine import COLUMNS as QUARANTINE_COLUMNS
from headwater.load.quarantine import RULES as QUARANTINE_RULES
from headwater.load.quarantine import QuarantineBatch, quarantine_rows
from headwater.pipeline.replay import QUARANTINE_ID
from headwater.redact import redact
from headwater.spec.models import (
    ExtractStep,
    FileSource,
    Ga4Source,
    LoadStep,
    NotifyStep,
    PipelineSpec,
    SqlSource,
    TransformStep,
    ValidateStep,
    WebhookSource,
)
from headwater.transform import OpContext, parse_ops
from headwater.transform.expressions import parse_expr
from headwater.transform.lineage import Lineage, compose, identity
from headwater.transform.registry import OpSchemaError, chain_lineage, plan_ops, run_ops

log = logging.getLogger(__name__)
SOURCE_PREFIX = "@"
"""Lineage origins that are sources (not steps) carry this prefix: `@flights`."""


@dataclass
class StepOutput:
    frame: pl.DataFrame | pl.LazyFrame | None
    """A lazy plan when the step streams (headwater.pipeline.streaming)."""
    records_in: int | None = None
    watermark: WatermarkUpdate | None = None
    load: LoadResult | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    lineage: Lineage | None = None
    """Where each output column comes from; None: the same as the step's primary input."""
    quality: Any = None
    """A validate step's SuiteResult."""
    quarantine: pl.DataFrame | None = None
    """Rows a validate step set aside, with the rules they broke."""
    warnings: list[str] = field(default_factory=list)
    """What the step did that someone should look at (the run ends completed_with_warnings)."""
    quick: list[QuickCheck] = field(default_factory=list)
    """A validate step's quick `expect` rules and `min_rows`, as checked."""
    stale: dict[str, Any] | None = None
    """An extract that handed on its last good data instead of the source's (which breaker, how old)."""


@dataclass
class StepEnv:
    spec: PipelineSpec
    base_dir: Path
    connections: Connections
    run_id: str
    now: datetime | None = None
    """The run's start: "now" for freshness rules."""
    stream_min_bytes: int | None = None
    """Set for an extract that may stream (its downstream steps are transforms and loads): file
    sources at least this large hand on a lazy scan."""
    breakers: Breakers | None = None
    """The store's circuit breakers (None: sources are called unguarded)."""
    kept: KeptExtracts | None = None
    """Where last good extracts are kept (for `on_unavailable: use_last`)."""
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    """"now" for breakers and data ages (tests move it)."""
    events: sa.Engine | None = None
    """The metadata store's engine: where webhook sources' events are."""


def run_extract(env: StepEnv, step: ExtractStep, load_step: LoadStep | None) -> StepOutput:
    """Read the step's source through its circuit breaker: while it is open the source is not
    called, and the step fails at once (CircuitOpen) or, with `on_unavailable: use_last`, hands on
    the last good extract flagged stale. Only the source's unavailability (TransientError: network,
    timeouts, 429/5xx after the request's retries, a database that does not answer) is counted."""
    source = env.spec.sources[step.source]
    guard = source_breaker(step.source, source, env.connections) if env.breakers is not None else None
    if guard is None or env.breakers is None:
        return _extract(env, step, load_step)
    key, policy = guard
    try:
        permit = env.breakers.acquire(key, policy, env.clock())
    except CircuitOpen as exc:
        if step.on_unavailable == "use_last":
            return _last_good(env, step, exc)
        raise
    try:
        output = _extract(env, step, load_step)
    except TransientError as exc:
        env.breakers.failed(permit, redact(str(exc), env.connections.secrets), env.clock())
        raise
    except BaseException:
        env.breakers.released(permit, env.clock())
        raise
    env.breakers.succeeded(permit, env.clock())
    if step.on_unavailable == "use_last" and env.kept is not None and isinstance(output.frame, pl.DataFrame):
        env.kept.keep(env.spec.name, step.name, step.source, output.frame, env.run_id, env.clock())
    return output


def _last_good(env: StepEnv, step: ExtractStep, exc: CircuitOpen) -> StepOutput:
    """The last good extract of this step instead of the source, with its age (flagged stale)."""
    kept = env.kept.latest(env.spec.name, step.name) if env.kept is not None else None
    if kept is None:
        raise PermanentError(
            f"{exc.reason}; and step {step.name} has no last good extract to use instead",
            hint="a run that reads the source once it is back keeps one; until then there is no data to load",
        ) from exc
    now = env.clock()
    state = exc.state
    age = kept.age_seconds(now)
    stale = {
        "step": step.name,
        "source": step.source,
        "breaker": state.key,
        "breaker_state": state.state,
        "opened_at": state.opened_at.isoformat() if state.opened_at else None,
        "open_until": state.open_until.isoformat() if state.open_until else None,
        "extracted_at": kept.extracted_at.isoformat(),
        "age_seconds": round(age, 3),
        "rows": kept.rows,
        "run_id": kept.run_id,
    }
    warning = (
        f"step {step.name}: circuit breaker {state.key} is {state.state.replace('_', '-')} "
        f"(opened {stamp(state.opened_at)}, open until {stamp(state.open_until)}): source {step.source} "
        f"was not called; loaded its last good extract of {stamp(kept.extracted_at)} instead "
        f"({kept.rows} rows, stale by {age_text(age)})"
    )
    log.warning(warning)
    lineage = identity(kept.frame.columns, frame=SOURCE_PREFIX + step.source)
    return StepOutput(
        kept.frame, None, metrics={"stale": stale}, lineage=lineage, warnings=[warning], stale=stale
    )


def _extract(env: StepEnv, step: ExtractStep, load_step: LoadStep | None) -> StepOutput:
    source = env.spec.sources[step.source]
    if isinstance(source, FileSource) and env.stream_min_bytes is not None:
        from headwater.extract.files import scan_files

        scan = scan_files(step.source, source, env.base_dir, env.stream_min_bytes)
        if scan is not None:
            lineage = identity(scan.collect_schema().names(), frame=SOURCE_PREFIX + step.source)
            return StepOutput(scan, None, metrics={"streamed": True}, lineage=lineage)
    watermark = None
    if isinstance(source, SqlSource | Ga4Source) and source.incremental and load_step is not None:
        engine = env.connections.engine(env.spec.warehouse_of(load_step))
        watermark = read_watermark(engine, env.spec.name, step.source)
    if isinstance(source, WebhookSource) and load_step is not None:  # the last event loaded
        engine = env.connections.engine(env.spec.warehouse_of(load_step))
        watermark = read_watermark(engine, env.spec.name, step.source)
    result = extract_source(
        step.source,
        source,
        base_dir=env.base_dir,
        connections=env.connections,
        watermark=watermark,
        warehouse=env.spec.warehouse,
        now=env.now,
        events=env.events,
    )
    mark = WatermarkUpdate(step.source, result.watermark) if result.watermark is not None else None
    lineage = identity(result.frame.columns, frame=SOURCE_PREFIX + step.source)
    return StepOutput(result.frame, result.frame.height, mark, metrics=result.metrics, lineage=lineage)


def run_transform(
    env: StepEnv,
    step: TransformStep,
    inputs: Mapping[str, pl.DataFrame | pl.LazyFrame],
    lineage_in: dict[str, Lineage],
) -> StepOutput:
    primary = inputs[step.depends_on[0]]
    ops = parse_ops(step.ops)
    ctx = OpContext({name: frame.lazy() for name, frame in inputs.items()})
    try:
        chain, _ = chain_lineage(primary.collect_schema(), ops, ctx, prefix=step.name)
    except OpSchemaError as exc:
        raise PermanentError(f"step {step.name}: {exc}", hint=exc.hint) from exc
    lineage = compose(lineage_in.get(step.depends_on[0], {}), chain, others=lineage_in)
    if isinstance(primary, pl.LazyFrame):  # streaming: the ops join the plan the load will run
        return StepOutput(plan_ops(primary, ops, ctx), None, lineage=lineage, metrics={"streamed": True})
    try:
        out, counters = run_ops(primary.lazy(), ops, ctx)
    except pl.exceptions.PolarsError as exc:
        first = redact(str(exc).strip().splitlines()[0])  # Polars quotes the failing values: row data
        raise PermanentError(
            f"step {step.name}: {type(exc).__name__}: {first}",
            hint="check the column names and types the ops use against the step's input "
            f"columns: {', '.join(primary.columns)}",
        ) from exc
    return StepOutput(out, primary.height, lineage=lineage, metrics=counters)


def run_validate(
    env: StepEnv, step: ValidateStep, frame: pl.DataFrame, others: dict[str, pl.DataFrame]
) -> StepOutput:
    """Quick `expect` rules first (any failure fails the step), then the suite: rules whose action is
    fail raise; quarantine rules set their failing rows aside; the rest pass on."""
    quick = quick_checks(step, frame)
    failures = {q.name: q.failed for q in quick if q.failed and q.expectation_type == "expect_row_condition"}
    if step.min_rows is not None and frame.height < step.min_rows:
        failures["min_rows"] = step.min_rows - frame.height  # rows short
    metrics: dict[str, Any] = {"checked": frame.height, "failed_rules": failures}
    if failures:
        raise DataQualityError(step.name, failures, frame.height, quick=quick)
    if not step.suite:
        return StepOutput(frame, frame.height, metrics=metrics, quick=quick)
    from headwater.quality.evaluate import ROW, evaluate
    from headwater.quality.expectations import QualityContext
    from headwater.quality.suite import load_suite

    suite = load_suite(env.base_dir / step.suite)
    replay = QUARANTINE_ID in frame.columns  # quarantined rows again: table-level rules do not apply
    result = evaluate(suite, frame, QualityContext(tables=others, now=env.now), rows_only=replay)
    metrics.update(
        suite=suite.name,
        quality_score=result.score(),
        dimension_scores=result.dimension_scores(),
        failed_rules={r.rule.name: r.unexpected_count for r in result.results if not r.passed},
    )
    fatal = result.failed("fail")
    if fatal:
        raise DataQualityError(
            suite.name, {r.rule.name: r.unexpected_count for r in fatal}, frame.height, result=result
        )
    good, quarantine = frame, None
    if result.reasons is not None and result.reasons.height:
        indexed = frame.with_row_index(ROW)
        reasons = result.reasons.rename({"rules": QUARANTINE_RULES, "columns": QUARANTINE_COLUMNS})
        quarantine = indexed.join(reasons, on=ROW, how="inner", maintain_order="left").drop(ROW)
        good = frame.filter(~result.quarantine)
        metrics["quarantined"] = quarantine.height
    return StepOutput(good, frame.height, metrics=metrics, quality=result, quarantine=quarantine, quick=quick)


@dataclass(frozen=True)
class QuickCheck:
    """A quick `expect` rule (or `min_rows`) of a validate step, as checked: recorded and scored like
    a suite rule (severity error, weight 1, action fail)."""

    name: str
    expectation_type: str
    rule: str
    checked: int
    failed: int
    failing_rows: list[int] = field(default_factory=list)
    """Positions of the first failing rows (for a masked sample)."""

    @property
    def pass_rate(self) -> float:
        return 100.0 if not self.checked else 100.0 * (self.checked - self.failed) / self.checked


def quick_checks(step: ValidateStep, frame: pl.DataFrame) -> list[QuickCheck]:
    """Evaluate the step's `expect` rules (a row where a rule is NULL passes, as SQL CHECK does) in
    one pass, and `min_rows`."""
    out = []
    if step.expect:
        exprs = {e.name: ~parse_expr(e.rule).fill_null(True) for e in step.expect}
        counts = frame.select(expr.sum().alias(name) for name, expr in exprs.items()).row(0, named=True)
        for e in step.expect:
            failed = int(counts[e.name] or 0)
            rows = frame.select(exprs[e.name].arg_true().head(5)).to_series().to_list() if failed else []
            out.append(QuickCheck(e.name, "expect_row_condition", e.rule, frame.height, failed, rows))
    if step.min_rows is not None:
        short = frame.height < step.min_rows
        out.append(
            QuickCheck(
                "min_rows",
                "expect_table_row_count_to_be_between",
                f"at least {step.min_rows} row(s)",
                1,
                int(short),
            )
        )
    return out


def run_load(
    env: StepEnv,
    step: LoadStep,
    frame: pl.DataFrame | pl.LazyFrame,
    watermarks: list[WatermarkUpdate],
    quarantine: list[pl.DataFrame] | None = None,
) -> StepOutput:
    engine = env.connections.engine(env.spec.warehouse_of(step))
    if isinstance(frame, pl.LazyFrame) and engine.dialect.name != "postgresql":
        frame = _collected(step, frame)  # SQLite: no streamed COPY; the plan runs streaming, then loads
    replayed = None
    if isinstance(frame, pl.DataFrame) and QUARANTINE_ID in frame.columns:  # a replay: these rows leave
        replayed = frame[QUARANTINE_ID].to_list()
        frame = frame.drop(QUARANTINE_ID)
        quarantine = [q.drop(QUARANTINE_ID, strict=False) for q in quarantine or []]
    rows = [
        row
        for batch in quarantine or []
        for row in quarantine_rows(
            QuarantineBatch(batch),
            pipeline=env.spec.name,
            run_id=env.run_id,
            target=step.destination.table,
            pii=set(env.spec.pii),
            key=list(step.destination.primary_key),
        )
    ]
    result = load_frame(
        engine,
        frame,
        step.destination,
        pipeline=env.spec.name,
        run_id=env.run_id,
        watermarks=watermarks,
        quarantine=rows,
        replayed=replayed,
    )
    metrics = {
        "inserted": result.inserted,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "deleted": result.deleted,
        "created_table": result.created_table,
        "added_columns": result.added_columns,
        "missing_columns": result.missing_columns,
        "watermarks": {k: str(v) for k, v in result.watermarks.items()},
        "quarantined": result.quarantined,
        "replayed": result.replayed,
    }
    drift = schema_drift(result)
    if isinstance(frame, pl.LazyFrame):
        metrics["streamed"] = True
    return StepOutput(frame, result.rows, load=result, metrics=metrics, warnings=[drift] if drift else [])


def _collected(step: LoadStep, frame: pl.LazyFrame) -> pl.DataFrame:
    try:
        return frame.collect(engine="streaming")
    except pl.exceptions.PolarsError as exc:
        raise streamed_read_error(f"step {step.name}", exc) from exc


def run_notify(env: StepEnv, step: NotifyStep, frame: pl.DataFrame | None) -> StepOutput:
    """Send the step's message to its channels (channels.yaml under HEADWATER_ALERTS), retried by the
    delivery policy; with no channels named, the message is only logged. `{pipeline}`, `{rows}` and
    `{run_id}` in the message are filled in; secrets and PII are masked before it leaves."""
    from headwater.errors import PermanentError
    from headwater.settings import Settings

    rows = frame.height if frame is not None else 0
    message = (
        step.message.replace("{pipeline}", env.spec.name)
        .replace("{rows}", str(rows))
        .replace("{run_id}", env.run_id)
    )
    log.info("notify %s: %s", ",".join(step.channels) or "(log)", message)
    if not step.channels:
        return StepOutput(frame, rows, metrics={"message": message, "channels": []})
    alerts_dir = Settings.from_env().alerts_dir
    if alerts_dir is None:
        raise PermanentError(
            f"notify step {step.name} names channels {', '.join(step.channels)}, "
            "but HEADWATER_ALERTS is not set",
            hint="set HEADWATER_ALERTS to the folder with channels.yaml, or drop channels: to only log",
        )
    from headwater.alerting.config import load_channels
    from headwater.alerting.delivery import AppriseDeliverer

    channels = load_channels(alerts_dir / "channels.yaml")
    unknown = [c for c in step.channels if c not in channels.channels]
    if unknown:
        raise PermanentError(
            f"notify step {step.name}: no channel {', '.join(unknown)} in {alerts_dir / 'channels.yaml'}",
            hint=f"use one of: {', '.join(sorted(channels.channels))}",
        )
    secrets = set(env.connections.secrets)
    title = redact(f"[{env.spec.name}] {step.name}", secrets)
    body = redact(message, secrets)
    deliverer = AppriseDeliverer(channels.delivery.attempts, channels.delivery.backoff_seconds)
    for name in step.channels:
        deliverer.send(name, channels.channels[name].url, title, body)
    return StepOutput(frame, rows, metrics={"message": body, "channels": list(step.channels)})
