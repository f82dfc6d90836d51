"""A pipeline run: its record in the store, the state of every step, and the rules that decide what
runs next: independent steps may run at once; a failed critical step fails the run and nothing new
starts; a failed non-critical step passes its input through so downstream steps go on with the best
data available, and the run completes with warnings."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from headwater.breakers import Breakers, BreakerState, open_breakers, source_breaker
from headwater.connections import Connections, display_url
from headwater.errors import DataQualityError, UpstreamUnavailable, retryable
from headwater.extract.kept import KeptExtracts
from headwater.frames import Frame, columns, height, materialise
from headwater.load import WatermarkUpdate
from headwater.pipeline import steps as run_steps
from headwater.pipeline.monitor import ResourceMonitor
from headwater.pipeline.outcome import RunOutcome
from headwater.pipeline.streaming import streamable_extracts
from headwater.redact import masked_sample, redact
from headwater.spec.checks import downstream_loads, step_order
from headwater.spec.loader import LoadedSpec
from headwater.spec.models import (
    ConnectionRef,
    ExtractStep,
    Ga4Source,
    LoadStep,
    NotifyStep,
    RedisStreamSource,
    RestSource,
    SqlSource,
    Step,
    TransformStep,
    ValidateStep,
    WebhookSource,
)
from headwater.store.store import RunSummary, StepRecord, Store
from headwater.transform.lineage import Lineage

log = logging.getLogger(__name__)


@dataclass
class StepResult:
    status: str  # completed | failed | skipped
    output: Frame | None = None
    watermark: WatermarkUpdate | None = None
    records_in: int | None = None
    load: Any = None
    error: str | None = None
    error_type: str | None = None
    attempts: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    lineage: Lineage = field(default_factory=dict)
    quarantine: pl.DataFrame | None = None
    warnings: list[str] = field(default_factory=list)
    stale: dict[str, Any] | None = None
    """An extract that handed on its last good data (its breaker was open): which, and how old."""


class PipelineRun:
    def __init__(
        self,
        loaded: LoadedSpec,
        store: Store,
        connections: Connections,
        *,
        execution_type: str = "manual",
        flow_run_id: str | None = None,
        replay: bool = False,
        run_id: str | None = None,
        stream_min_bytes: int | None = None,
        kept_dir: Path | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """`stream_min_bytes`: file sources at least this large stream to their load where nothing
        between needs the whole frame (headwater.pipeline.streaming); None: every input is read whole.
        `kept_dir`: where last good extracts are kept (default $HEADWATER_HOME/last_good); `clock`:
        "now" for circuit breakers and data ages (default the wall clock)."""
        self.loaded, self.spec = loaded, loaded.spec
        self.stream_min_bytes = stream_min_bytes
        self.streamable = set() if replay or stream_min_bytes is None else streamable_extracts(loaded)
        self.store, self.connections = store, connections
        self.execution_type, self.flow_run_id = execution_type, flow_run_id
        self.replay = replay
        if replay:
            self.execution_type = "replay"
        self.order = step_order(loaded)
        self.results: dict[str, StepResult] = {}
        self.crashed_runs: list[str] = []
        self.run_id = run_id or ""
        """Chosen by whoever asked for the run (to link to it at once), or made at start()."""
        self.monitor: ResourceMonitor | None = None
        self.halted = False
        self.started_at: datetime | None = None
        self.attempts: dict[str, int] = {}
        self.checks: list[dict[str, Any]] = []
        """The quality checks this run recorded (its score is made from them)."""
        self.clock = clock or (lambda: datetime.now(UTC))
        self.breakers = Breakers(store.engine)
        if kept_dir is None:
            from headwater.settings import Settings

            kept_dir = Settings.from_env().home / "last_good"
        self.kept = KeptExtracts(store.engine, kept_dir)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> str:
        self.crashed_runs = self.store.mark_crashed(self.spec.name)
        for run_id in self.crashed_runs:
            log.warning("run %s of %s had crashed; marked crashed", run_id, self.spec.name)
        pipeline_id = self.store.register_pipeline(self.loaded, self.connections.default_warehouse_url)
        steps = [(name, self.spec.step(name).type) for name in self.order]
        self.run_id = self.store.start_run(
            pipeline_id,
            self.spec.name,
            steps,
            execution_type=self.execution_type,
            flow_run_id=self.flow_run_id,
            parameters=self.loaded.params if self.spec.params else None,
            run_id=self.run_id or None,
        )
        self.monitor = ResourceMonitor()
        self.started_at = datetime.now(UTC)
        if self.replay:
            self._prepare_replay()
        return self.run_id

    def _prepare_replay(self) -> None:
        """Quarantined rows stand in for the outputs validate steps read; what only fed those is
        not run."""
        from headwater.pipeline.replay import replay_inputs, skipped_for_replay

        engines = {
            s.name: self.connections.engine(self.spec.warehouse_of(s))
            for s in self.spec.steps
            if isinstance(s, LoadStep)
        }
        inputs = replay_inputs(self.loaded, engines)
        skipped = skipped_for_replay(self.loaded, set(inputs))
        for name in self.order:
            if name in inputs:
                self.results[name] = StepResult("completed", inputs[name], records_in=inputs[name].height)
                self.store.step_skipped(
                    self.run_id, name, f"replay: {inputs[name].height} quarantined row(s)"
                )
            elif name in skipped:
                self.results[name] = StepResult("skipped")
                self.store.step_skipped(self.run_id, name, "replay: not needed")

    def ready(self, running: set[str]) -> list[str]:
        """Steps whose dependencies have all finished; none once a critical step has failed."""
        if self.halted:
            return []
        return [
            name
            for name in self.order
            if name not in self.results
            and name not in running
            and all(dep in self.results for dep in self.spec.step(name).depends_on)
        ]

    def pending(self) -> list[str]:
        return [name for name in self.order if name not in self.results]

    # ------------------------------------------------------------ steps

    def inputs_of(self, name: str) -> dict[str, Frame | None]:
        return {dep: self.results[dep].output for dep in self.spec.step(name).depends_on}

    def _watermarks_for(self, load: LoadStep) -> list[WatermarkUpdate]:
        marks = []
        for name, result in self.results.items():
            if result.watermark is not None and load.name in downstream_loads(self.loaded, name):
                marks.append(result.watermark)
        return marks

    def _quarantine_for(self, load: LoadStep) -> list[pl.DataFrame]:
        """Rows set aside by validate steps upstream of this load: they go in its transaction."""
        return [
            result.quarantine
            for name, result in self.results.items()
            if result.quarantine is not None and load.name in downstream_loads(self.loaded, name)
        ]

    def _record_quality(
        self, step: Step, result: Any, frame: pl.DataFrame, quick: list[run_steps.QuickCheck]
    ) -> None:
        """Store the rules a validate step checked (its suite's and its quick `expect` rules) and
        this run's checks of them, with masked failing samples, a hint and the rule's weight."""
        from headwater.quality.recommend import remediation
        from headwater.quality.score import QUICK_SUITE

        loads = downstream_loads(self.loaded, step.name)
        table = self.spec.step(loads[0]).destination.table if loads else step.name  # type: ignore[union-attr]
        rules, checks = [], []
        for q in quick:
            rules.append(
                {
                    "suite": QUICK_SUITE,
                    "rule_name": q.name,
                    "expectation_type": q.expectation_type,
                    "columns": [],
                    "kwargs": {"condition": q.rule},
                    "dimension": "validity",
                    "severity": "error",
                    "threshold": 100.0,
                    "weight": 1.0,
                    "action": "fail",
                }
            )
            sample = masked_sample(frame[q.failing_rows], 5, self.spec.pii) if q.failing_rows else []
            checks.append(
                {
                    "step_name": step.name,
                    "suite": QUICK_SUITE,
                    "table_name": table,
                    "rule_name": q.name,
                    "expectation_type": q.expectation_type,
                    "dimension": "validity",
                    "severity": "error",
                    "action": "fail",
                    "records_checked": q.checked,
                    "records_passed": q.checked - q.failed,
                    "records_failed": q.failed,
                    "pass_rate": round(q.pass_rate, 4),
                    "score": round(q.pass_rate, 2),
                    "success": q.failed == 0,
                    "observed_value": None,
                    "sample_failures": sample,
                    "remediation": None if not q.failed else f"rows where `{q.rule}` is false fail the step",
                    "weight": 1.0,
                }
            )
        for r in result.results if result is not None else []:
            meta, columns = r.rule.meta, r.rule.expectation.columns()
            rules.append(
                {
                    "suite": result.suite.name,
                    "rule_name": r.rule.name,
                    "expectation_type": r.rule.type,
                    "columns": columns,
                    "kwargs": r.rule.raw.get("kwargs", {}),
                    "dimension": meta.dimension,
                    "severity": meta.severity,
                    "threshold": meta.threshold,
                    "weight": meta.weight,
                    "action": meta.action,
                }
            )
            failing = frame[r.unexpected_index[:5]] if r.unexpected_index is not None else frame.head(0)
            sample = masked_sample(failing.select(columns or failing.columns), 5, self.spec.pii)
            checked = r.considered if r.rule.expectation.kind == "map" else r.element_count
            failed = r.unexpected_count if r.rule.expectation.kind == "map" else (0 if r.success else checked)
            checks.append(
                {
                    "step_name": step.name,
                    "suite": result.suite.name,
                    "table_name": table,
                    "rule_name": r.rule.name,
                    "expectation_type": r.rule.type,
                    "dimension": meta.dimension,
                    "severity": meta.severity,
                    "action": meta.action,
                    "records_checked": checked,
                    "records_passed": checked - failed,
                    "records_failed": failed,
                    "pass_rate": round(r.pass_rate, 4),
                    "score": round(r.pass_rate, 2),
                    "success": r.passed,
                    "observed_value": _jsonable(r.observed),
                    "sample_failures": sample,
                    "remediation": remediation(r, frame),
                    "weight": meta.weight,
                }
            )
        if rules:
            self.store.record_quality(self.spec.name, self.run_id, rules, checks)
            self.checks.extend(checks)

    def _load_step_for(self, extract: str) -> LoadStep | None:
        loads = downstream_loads(self.loaded, extract)
        step = self.spec.step(loads[0]) if loads else None
        return step if isinstance(step, LoadStep) else None

    def execute_step(self, name: str, inputs: dict[str, Frame | None], attempt: int = 1) -> StepResult:
        """Run one attempt of a step and record it. Raises the step's error (so an orchestrator can
        retry it); `will_retry` tells whether the retry policy wants another attempt."""
        step = self.spec.step(name)
        assert self.monitor is not None, "start() the run first"
        self.attempts[name] = attempt
        self.store.step_started(self.run_id, name, attempt)
        started = datetime.now(UTC)
        window = self.monitor.open()
        primary = inputs.get(step.primary_input) if step.primary_input else None
        try:
            missing = [dep for dep, frame in inputs.items() if frame is None]
            if missing:
                raise UpstreamUnavailable(name, missing)
            output = self._dispatch(step, inputs)
        except BaseException as exc:
            if isinstance(exc, DataQualityError) and primary is not None:
                self._record_quality(step, exc.result, primary, exc.quick)  # type: ignore[arg-type]
            peak, delta = self.monitor.close(window)
            retrying = self.will_retry(name, exc, attempt)
            self.store.step_finished(
                self.run_id,
                name,
                StepRecord(
                    status="retrying" if retrying else "failed",
                    attempts=attempt,
                    started_at=started,
                    ended_at=datetime.now(UTC),
                    records_in=height(primary),
                    peak_memory_mb=peak,
                    memory_delta_mb=delta,
                    sample_in=self._sample(step, primary),
                    error_type=type(exc).__name__,
                    error_message=self.redact(str(exc)),
                ),
            )
            raise
        peak, delta = self.monitor.close(window)
        out = output.frame
        record = StepRecord(
            status="completed",
            attempts=attempt,
            started_at=started,
            ended_at=datetime.now(UTC),
            records_in=output.records_in,
            records_out=height(out),
            peak_memory_mb=peak,
            memory_delta_mb=delta,
            sample_in=self._sample(step, primary),
            sample_out=self._sample(step, out) if step.type != "load" else None,
            metrics=output.metrics,
        )
        self.store.step_finished(self.run_id, name, record)
        lineage = output.lineage if output.lineage is not None else self._lineage_of(step.primary_input)
        if (output.quality is not None or output.quick) and primary is not None:
            self._record_quality(step, output.quality, materialise(primary), output.quick)
        if isinstance(step, LoadStep) and out is not None and not self.replay:
            self.store.replace_lineage(
                self.spec.name, self.run_id, step.destination.table, self._lineage_rows(step, out, lineage)
            )
        return StepResult(
            "completed",
            out,
            output.watermark,
            output.records_in,
            output.load,
            attempts=attempt,
            metrics=output.metrics,
            lineage=lineage,
            quarantine=output.quarantine,
            warnings=output.warnings,
            stale=output.stale,
        )

    def _dispatch(self, step: Step, inputs: dict[str, Frame | None]) -> run_steps.StepOutput:
        env = run_steps.StepEnv(
            self.spec,
            self.loaded.base_dir,
            self.connections,
            self.run_id,
            self.started_at,
            stream_min_bytes=self.stream_min_bytes if step.name in self.streamable else None,
            breakers=self.breakers,
            kept=self.kept,
            clock=self.clock,
            events=self.store.engine,
        )
        frames = {k: v for k, v in inputs.items() if v is not None}
        primary = frames.get(step.primary_input or "")
        if isinstance(step, ExtractStep):
            return run_steps.run_extract(env, step, self._load_step_for(step.name))
        if isinstance(step, TransformStep):
            lineage_in = {dep: self._lineage_of(dep) for dep in step.depends_on}
            return run_steps.run_transform(env, step, frames, lineage_in)
        if isinstance(step, ValidateStep):
            others = {k: materialise(v) for k, v in frames.items() if k != step.primary_input}
            return run_steps.run_validate(env, step, materialise(_need(primary)), others)
        if isinstance(step, LoadStep):
            return run_steps.run_load(
                env, step, _need(primary), self._watermarks_for(step), self._quarantine_for(step)
            )
        if isinstance(step, NotifyStep):
            return run_steps.run_notify(env, step, materialise(primary))
        raise TypeError(type(step).__name__)

    def will_retry(self, name: str, exc: BaseException, attempt: int) -> bool:
        policy = self.spec.retry_for(self.spec.step(name))
        return retryable(exc) and attempt < policy.attempts

    def completed(self, name: str, result: StepResult) -> None:
        self.results[name] = result

    def failed(self, name: str, exc: BaseException) -> None:
        """The step failed for good. Non-critical: pass its primary input through."""
        step = self.spec.step(name)
        message = self.redact(str(exc)) or type(exc).__name__
        if isinstance(exc, TimeoutError) and step.timeout:
            message = f"step {name} did not finish within its timeout of {step.timeout:g}s ({message})"
        attempts = self.attempts.get(name, 0)
        # a step the orchestrator stopped (a timeout) saw only a cancellation: the timeout is the story
        self.store.step_failed(
            self.run_id, name, type(exc).__name__, message, overwrite=isinstance(exc, TimeoutError)
        )
        passed = None
        if not step.critical and step.primary_input:
            passed = self.results[step.primary_input].output
        self.results[name] = StepResult(
            "failed",
            passed,
            error=message,
            error_type=type(exc).__name__,
            attempts=attempts,
            lineage=self._lineage_of(step.primary_input) if passed is not None else {},
        )
        if step.critical:
            self.halted = True

    def finish(self) -> RunSummary:
        """Skip whatever did not run, compute the run's status and totals, record them."""
        for name in self.pending():
            self.results[name] = StepResult("skipped")
            self.store.step_skipped(self.run_id, name, "not run: an earlier critical step failed")
        failed = [(n, r) for n, r in self.results.items() if r.status == "failed"]
        critical = [(n, r) for n, r in failed if self.spec.step(n).critical]
        noted = [w for r in self.results.values() for w in r.warnings]
        status = "failed" if critical else ("completed_with_warnings" if failed or noted else "completed")
        summary = RunSummary(status=status)
        for name, result in self.results.items():
            step = self.spec.step(name)
            summary.retry_count += max(result.attempts - 1, 0)
            if isinstance(step, ExtractStep) and result.status == "completed" and result.output is not None:
                summary.records_processed += height(result.output) or 0
            if result.load is not None and result.metrics.get("streamed"):
                summary.records_processed += result.load.rows  # a streamed input is counted as it loads
            if result.load is not None:
                summary.records_inserted += result.load.inserted
                summary.records_updated += result.load.updated
                summary.records_loaded += result.load.rows
                summary.records_quarantined += result.load.quarantined
        from headwater.quality.score import explain

        summary.quality_score = explain(self.checks).score
        summary.records_failed = summary.records_quarantined
        for name, result in failed:
            summary.warnings.append(f"step {name} failed: {result.error_type}: {result.error}")
        summary.warnings.extend(noted)
        summary.stale_data = [r.stale for r in self.results.values() if r.stale is not None]
        if summary.stale_data:
            summary.data_age_seconds = max(s["age_seconds"] for s in summary.stale_data)
        summary.breakers = [b.as_dict() for b in self.breaker_states()]
        if critical:
            summary.failed_step, first = critical[0]
            summary.error_type, summary.error_message = first.error_type, first.error
        if self.monitor is not None:
            self.monitor.stop()
            summary.peak_memory_mb = self.monitor.run_peak / (1024 * 1024)
            summary.cpu_seconds = self.monitor.cpu_seconds()
        self.store.finish_run(self.run_id, summary)
        return summary

    def breaker_states(self) -> list[BreakerState]:
        """The breakers in front of this pipeline's sources that are not closed now (opened by this
        run or by any other process)."""
        keys = {
            guard[0]
            for s in self.spec.steps
            if isinstance(s, ExtractStep) and s.source in self.spec.sources
            for guard in [source_breaker(s.source, self.spec.sources[s.source], self.connections)]
            if guard is not None
        }
        now = self.clock()
        return [b for b in open_breakers(self.store.engine, now) if b.key in keys]

    def outcome(self, summary: RunSummary) -> RunOutcome:
        """The finished run as one typed value (see headwater.pipeline.outcome)."""
        from headwater.sla import resolved

        failing = [c for c in self.checks if not c.get("success")]
        duration = None
        if self.started_at is not None:
            duration = (datetime.now(UTC) - self.started_at).total_seconds()
        return RunOutcome(
            run_id=self.run_id,
            pipeline=self.spec.name,
            execution_type=self.execution_type,
            summary=summary,
            duration_seconds=duration,
            flow_run_id=self.flow_run_id,
            failed_rules={str(c["rule_name"]): int(c.get("records_failed") or 0) for c in failing},
            top_hint=next((str(c["remediation"]) for c in failing if c.get("remediation")), None),
            owner=self.spec.owner,
            alerts=self.spec.alerts,
            sla=resolved(self.spec),
        )

    def abort(self, exc: BaseException) -> RunSummary:
        """The orchestration itself failed (not a step): record the run failed with that error."""
        self.halted = True
        summary = self.finish()
        if summary.status != "failed":
            summary.status, summary.error_type = "failed", type(exc).__name__
            summary.error_message = self.redact(str(exc))
            self.store.finish_run(self.run_id, summary)
        return summary

    # ------------------------------------------------------------ lineage

    def _lineage_of(self, step: str | None) -> Lineage:
        result = self.results.get(step or "")
        return result.lineage if result is not None else {}

    def _dataset(self, source_name: str) -> tuple[str, str]:
        """(dataset, table) naming a source the way data_lineage and other pipelines' targets do."""
        source = self.spec.sources[source_name]
        if isinstance(source, SqlSource):  # a query reads no one table: it is labelled query:<source>
            table = source.table if source.table is not None else f"query:{source_name}"
            return self._warehouse_label(source.connection or self.spec.warehouse), table
        if isinstance(source, RestSource):
            return source.url.split("?")[0], source_name
        if isinstance(source, Ga4Source):
            return f"ga4:properties/{source.property}", source_name
        if isinstance(source, WebhookSource):
            return f"webhook:{source.endpoint}", source_name
        if isinstance(source, RedisStreamSource):
            return f"redis_stream:{source.stream}", source_name
        return source.path, source_name

    def _warehouse_label(self, ref: ConnectionRef | None) -> str:
        if ref is not None and ref.block:
            return f"block:{ref.block}"
        return display_url(self.connections.url(ref))

    def _lineage_rows(self, step: LoadStep, frame: Frame, lineage: Lineage) -> list[dict[str, Any]]:
        target = self._warehouse_label(self.spec.warehouse_of(step))
        rows = []
        for column in columns(frame):
            lin = lineage.get(column)
            if lin is None:
                continue
            for origin in sorted(lin.sources, key=lambda o: (o.frame, o.column)):
                if not origin.frame.startswith(run_steps.SOURCE_PREFIX):
                    continue
                dataset, table = self._dataset(origin.frame.removeprefix(run_steps.SOURCE_PREFIX))
                rows.append(
                    {
                        "source_dataset": dataset,
                        "source_table": table,
                        "source_column": origin.column,
                        "target_dataset": target,
                        "target_table": step.destination.table,
                        "target_column": column,
                        "transformation_type": str(lin.kind),
                        "transformations": list(lin.via),
                    }
                )
        return rows

    # ------------------------------------------------------------ helpers

    def redact(self, text: str) -> str:
        return redact(text, self.connections.secrets)

    def _sample(self, step: Step, frame: Frame | None) -> list[dict[str, Any]] | None:
        rows = self.spec.samples if step.samples is None else step.samples
        if frame is None or not rows:
            return None
        if isinstance(frame, pl.LazyFrame):  # streamed: only a scan's first rows are cheap to take
            if not isinstance(step, ExtractStep):
                return None
            frame = frame.head(rows).collect()
        return masked_sample(frame, rows, self.spec.pii)


def _jsonable(value: Any) -> Any:
    return value if value is None or isinstance(value, int | float | str | bool | list) else str(value)


def _need(frame: Frame | None) -> Frame:
    if frame is None:
        raise UpstreamUnavailable("step", ["input"])
    return frame
