"""Read and write the metadata store. One short transaction per event, so a killed process leaves
a record that says how far it got."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, overload

import psutil
import sqlalchemy as sa

from headwater.connections import display_url, make_engine
from headwater.spec.loader import LoadedSpec, mask_secrets
from headwater.spec.models import FileSource, Ga4Source, LoadStep, RestSource, SqlSource, WebhookSource
from headwater.store import migrate
from headwater.store.tables import (
    data_destinations,
    data_lineage,
    data_pipelines,
    data_quality_checks,
    data_quality_rules,
    data_sources,
    pipeline_executions,
    pipeline_steps,
    step_executions,
)

RUN_STATUSES = ("running", "completed", "completed_with_warnings", "failed", "crashed", "skipped")
"""skipped: a scheduled or triggered run whose precondition (the spec's `when:`) did not hold."""
ACTIVE = ("running",)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class StepRecord:
    """What a finished (or failed) step attempt reports to the store."""

    status: str
    attempts: int
    started_at: datetime
    ended_at: datetime
    records_in: int | None = None
    records_out: int | None = None
    peak_memory_mb: float | None = None
    memory_delta_mb: float | None = None
    sample_in: list[dict[str, Any]] | None = None
    sample_out: list[dict[str, Any]] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error_type: str | None = None
    error_message: str | None = None


@dataclass
class RunSummary:
    status: str
    records_processed: int = 0
    records_inserted: int = 0
    records_updated: int = 0
    records_failed: int = 0
    records_loaded: int = 0
    records_quarantined: int = 0
    quality_score: float | None = None
    peak_memory_mb: float | None = None
    cpu_seconds: float | None = None
    error_type: str | None = None
    error_message: str | None = None
    failed_step: str | None = None
    retry_count: int = 0
    warnings: list[str] = field(default_factory=list)
    data_age_seconds: float | None = None
    """The age of the oldest last good extract the run loaded instead of its source (None: all fresh)."""
    stale_data: list[dict[str, Any]] = field(default_factory=list)
    """Each extract that used its last good data: step, source, breaker, extracted_at, age_seconds."""
    breakers: list[dict[str, Any]] = field(default_factory=list)
    """The circuit breakers in front of the pipeline's sources that were not closed when it ended."""


def source_location(source: Any) -> tuple[str, str | None]:
    if isinstance(source, FileSource):
        return source.path, None
    if isinstance(source, SqlSource):
        ref = source.connection
        if ref is None:
            where = "warehouse"
        else:
            where = f"block:{ref.block}" if ref.block else display_url(ref.url or "")
        # a query source reads no one table: "#query" (the data_sources row names the source)
        what = source.table if source.table is not None else "query"
        return f"{where}#{what}", source.incremental.cursor if source.incremental else None
    if isinstance(source, RestSource):
        return source.url.split("?")[0], None
    if isinstance(source, Ga4Source):
        return f"ga4:properties/{source.property}", "date" if source.incremental else None
    if isinstance(source, WebhookSource):
        return f"webhook:{source.endpoint}", None
    return "", None


def _process_identity() -> tuple[str, int, float]:
    pid = os.getpid()
    return socket.gethostname(), pid, psutil.Process(pid).create_time()


class Store:
    def __init__(self, url: str, engine: sa.Engine | None = None) -> None:
        self.url = url
        self.engine = engine or make_engine(url)
        # writes take SQLite's write lock up front: a deferred transaction that reads and then writes
        # fails at once with "database is locked" when another writer got in between
        self.writer = self.engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")

    def migrate(self) -> Store:
        migrate.upgrade(self.engine)
        return self

    def dispose(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------ pipelines

    def register_pipeline(self, loaded: LoadedSpec, warehouse_url: str) -> int:
        """Upsert the pipeline and replace its steps, sources and destinations with the spec's."""
        spec = loaded.spec
        digest = loaded.digest
        values = {
            "pipeline_type": spec.type,
            "description": spec.description,
            "tags": list(spec.tags),
            "owner": spec.owner,
            "spec_path": str(loaded.path),
            "spec_hash": digest,
            "schedule_cron": spec.schedule.cron if spec.schedule else None,
            "schedule_timezone": spec.schedule.timezone if spec.schedule else None,
            "schedule_interval_seconds": spec.schedule.interval if spec.schedule else None,
            "alert_settings": spec.alerts.model_dump() if spec.alerts else None,
            "updated_at": now(),
        }
        with self.writer.begin() as conn:
            row = conn.execute(
                sa.select(data_pipelines.c.id, data_pipelines.c.spec_hash).where(
                    data_pipelines.c.name == spec.name
                )
            ).first()
            if row and row.spec_hash == digest:
                return int(row.id)
            if row:
                pipeline_id = int(row.id)
                conn.execute(
                    sa.update(data_pipelines).where(data_pipelines.c.id == pipeline_id).values(values)
                )
                for table in (pipeline_steps, data_sources, data_destinations):
                    conn.execute(sa.delete(table).where(table.c.pipeline_id == pipeline_id))
            else:
                inserted = conn.execute(
                    sa.insert(data_pipelines).values(name=spec.name, created_at=now(), **values)
                )
                pipeline_id = int(inserted.inserted_primary_key[0])  # type: ignore[index]
            steps = [
                {
                    "pipeline_id": pipeline_id,
                    "name": s.name,
                    "step_type": s.type,
                    "position": i,
                    "depends_on": list(s.depends_on),
                    "critical": s.critical,
                    "timeout_seconds": s.timeout,
                    "retry_policy": spec.retry_for(s).model_dump(),
                    "config": mask_secrets(
                        s.model_dump(
                            mode="json",
                            by_alias=True,
                            exclude={"name", "type", "depends_on", "critical", "timeout", "retry", "samples"},
                        )
                    ),
                }
                for i, s in enumerate(spec.steps)
            ]
            conn.execute(sa.insert(pipeline_steps), steps)
            sources = []
            for name, source in spec.sources.items():
                location, cursor = source_location(source)
                config = source.model_dump(mode="json", exclude={"auth", "headers", "connection", "body"})
                sources.append(
                    {
                        "pipeline_id": pipeline_id,
                        "name": name,
                        "kind": source.kind,
                        "location": location,
                        "incremental_cursor": cursor,
                        "config": config,
                    }
                )
            conn.execute(sa.insert(data_sources), sources)
            dests = []
            for s in spec.steps:
                if isinstance(s, LoadStep):
                    ref = spec.warehouse_of(s)
                    where = (
                        f"block:{ref.block}"
                        if ref and ref.block
                        else display_url(ref.url if ref and ref.url else warehouse_url)
                    )
                    dests.append(
                        {
                            "pipeline_id": pipeline_id,
                            "step_name": s.name,
                            "table_name": s.destination.table,
                            "write_mode": s.destination.mode,
                            "primary_key": list(s.destination.primary_key),
                            "warehouse": where,
                        }
                    )
            if dests:
                conn.execute(sa.insert(data_destinations), dests)
        return pipeline_id

    # ------------------------------------------------------------ runs

    def mark_crashed(self, pipeline: str | None = None) -> list[str]:
        """Runs of `pipeline` (None: of every pipeline) still 'running' whose process on this host is
        gone: mark them crashed."""
        host = socket.gethostname()
        query = sa.select(
            pipeline_executions.c.id,
            pipeline_executions.c.pid,
            pipeline_executions.c.process_started_at,
        ).where(pipeline_executions.c.status.in_(ACTIVE), pipeline_executions.c.hostname == host)
        if pipeline is not None:
            query = query.where(pipeline_executions.c.pipeline_name == pipeline)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            row.id
            for row in rows
            if not _alive(row.pid, row.process_started_at)
            and self.mark_run_crashed(row.id, f"process {row.pid} on {host} ended without finishing the run")
        ]

    def start_run(
        self,
        pipeline_id: int,
        pipeline: str,
        steps: Sequence[tuple[str, str]],
        *,
        execution_type: str,
        flow_run_id: str | None,
        parameters: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> str:
        """Record a new run and its pending steps. `parameters`: the run's values (JSON), stored
        with those whose names look secret masked. `run_id`: an id chosen by whoever asked for the
        run (so it can link to it at once); a run recorded under it already (by `headwater run`
        before its worker started) is taken over by this process, steps and all."""
        run_id = run_id or str(uuid.uuid4())
        host, pid, started = _process_identity()
        values = {
            "pipeline_id": pipeline_id,
            "pipeline_name": pipeline,
            "flow_run_id": flow_run_id,
            "execution_type": execution_type,
            "status": "running",
            "parameters": None if parameters is None else mask_secrets(dict(parameters)),
            "hostname": host,
            "pid": pid,
            "process_started_at": started,
        }
        with self.writer.begin() as conn:
            existing = conn.execute(
                sa.select(pipeline_executions.c.status).where(pipeline_executions.c.id == run_id)
            ).first()
            if existing is not None and existing.status != "running":
                raise ValueError(f"run {run_id} is already recorded as {existing.status}")
            if existing is None:
                conn.execute(
                    sa.insert(pipeline_executions).values(id=run_id, started_at=now(), warnings=[], **values)
                )
            else:
                conn.execute(
                    sa.update(pipeline_executions).where(pipeline_executions.c.id == run_id).values(values)
                )
                conn.execute(sa.delete(step_executions).where(step_executions.c.execution_id == run_id))
            if steps:
                conn.execute(
                    sa.insert(step_executions),
                    [
                        {
                            "execution_id": run_id,
                            "step_name": name,
                            "step_type": kind,
                            "status": "pending",
                            "metrics": {},
                        }
                        for name, kind in steps
                    ],
                )
        return run_id

    def record_refused_run(
        self,
        pipeline: str,
        *,
        spec_path: str,
        error_type: str,
        error_message: str,
        execution_type: str = "manual",
        run_id: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        flow_run_id: str | None = None,
    ) -> str:
        """A run that could not start (its spec does not load, a parameter or a secret is wrong):
        recorded `failed` with the reason, so the run history shows it. A pipeline the store has
        not seen yet gets a row of its own (its spec could not be read, so it says so)."""
        run_id = run_id or str(uuid.uuid4())
        host, pid, started = _process_identity()
        stamp = now()
        with self.writer.begin() as conn:
            pipeline_id = conn.execute(
                sa.select(data_pipelines.c.id).where(data_pipelines.c.name == pipeline)
            ).scalar()
            if pipeline_id is None:
                inserted = conn.execute(
                    sa.insert(data_pipelines).values(
                        name=pipeline,
                        pipeline_type="etl",
                        description="(its spec could not be loaded)",
                        tags=[],
                        spec_path=spec_path,
                        spec_hash="",
                        created_at=stamp,
                        updated_at=stamp,
                    )
                )
                pipeline_id = int(inserted.inserted_primary_key[0])  # type: ignore[index]
            values = {
                "pipeline_id": pipeline_id,
                "pipeline_name": pipeline,
                "flow_run_id": flow_run_id,
                "execution_type": execution_type,
                "status": "failed",
                "ended_at": stamp,
                "error_type": error_type,
                "error_message": error_message,
                "parameters": None if parameters is None else mask_secrets(dict(parameters)),
                "hostname": host,
                "pid": pid,
                "process_started_at": started,
            }
            if conn.execute(
                sa.update(pipeline_executions)
                .where(pipeline_executions.c.id == run_id, pipeline_executions.c.status == "running")
                .values(values)
            ).rowcount:
                return run_id
            conn.execute(
                sa.insert(pipeline_executions).values(
                    id=run_id, started_at=stamp, duration_seconds=0.0, warnings=[], **values
                )
            )
        return run_id

    def record_skipped_run(
        self,
        pipeline_id: int,
        pipeline: str,
        reason: str,
        *,
        execution_type: str,
        run_id: str | None = None,
        flow_run_id: str | None = None,
    ) -> str:
        """A scheduled or triggered run that had nothing to do: recorded `skipped`, the reason as its
        one warning (a run recorded `running` under `run_id` already is closed that way)."""
        run_id = run_id or str(uuid.uuid4())
        host, pid, started = _process_identity()
        stamp = now()
        values = {
            "pipeline_id": pipeline_id,
            "pipeline_name": pipeline,
            "flow_run_id": flow_run_id,
            "execution_type": execution_type,
            "status": "skipped",
            "ended_at": stamp,
            "duration_seconds": 0.0,
            "warnings": [reason],
            "hostname": host,
            "pid": pid,
            "process_started_at": started,
        }
        with self.writer.begin() as conn:
            if conn.execute(
                sa.update(pipeline_executions)
                .where(pipeline_executions.c.id == run_id, pipeline_executions.c.status == "running")
                .values(values)
            ).rowcount:
                conn.execute(sa.delete(step_executions).where(step_executions.c.execution_id == run_id))
                return run_id
            conn.execute(sa.insert(pipeline_executions).values(id=run_id, started_at=stamp, **values))
        return run_id

    def last_success_start(self, pipeline: str) -> datetime | None:
        """When the pipeline's latest completed run (with or without warnings) started."""
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(sa.func.max(pipeline_executions.c.started_at)).where(
                    pipeline_executions.c.pipeline_name == pipeline,
                    pipeline_executions.c.status.in_(("completed", "completed_with_warnings")),
                )
            ).scalar()
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value  # type: ignore[no-any-return]

    def mark_run_crashed(self, run_id: str, reason: str) -> bool:
        """The process running `run_id` ended without finishing it (killed, crashed): say so, with
        `reason`. False when the run had finished (or is not recorded)."""
        with self.writer.begin() as conn:
            row = conn.execute(
                sa.select(pipeline_executions.c.started_at).where(
                    pipeline_executions.c.id == run_id, pipeline_executions.c.status.in_(ACTIVE)
                )
            ).first()
            if row is None:
                return False
            ended = now()
            conn.execute(
                sa.update(pipeline_executions)
                .where(pipeline_executions.c.id == run_id)
                .values(
                    status="crashed",
                    ended_at=ended,
                    duration_seconds=(ended - (aware(row.started_at) or ended)).total_seconds(),
                    error_type="Crashed",
                    error_message=reason,
                )
            )
            conn.execute(
                sa.update(step_executions)
                .where(
                    step_executions.c.execution_id == run_id,
                    step_executions.c.status.in_(("running", "retrying")),
                )
                .values(status="crashed", ended_at=ended, error_message=reason)
            )
            conn.execute(
                sa.update(step_executions)
                .where(step_executions.c.execution_id == run_id, step_executions.c.status == "pending")
                .values(status="skipped", ended_at=ended, error_message="not run: the run crashed")
            )
        return True

    def step_started(self, run_id: str, step: str, attempt: int) -> None:
        values: dict[str, Any] = {"status": "running", "attempts": attempt, "retry_count": attempt - 1}
        if attempt == 1:
            values["started_at"] = now()
        with self.writer.begin() as conn:
            conn.execute(
                sa.update(step_executions)
                .where(step_executions.c.execution_id == run_id, step_executions.c.step_name == step)
                .values(values)
            )

    def step_finished(self, run_id: str, step: str, record: StepRecord) -> None:
        with self.writer.begin() as conn:
            started = conn.execute(
                sa.select(step_executions.c.started_at).where(
                    step_executions.c.execution_id == run_id, step_executions.c.step_name == step
                )
            ).scalar()
            first = aware(started) or record.started_at
            conn.execute(
                sa.update(step_executions)
                .where(step_executions.c.execution_id == run_id, step_executions.c.step_name == step)
                .values(
                    status=record.status,
                    attempts=record.attempts,
                    retry_count=max(record.attempts - 1, 0),
                    started_at=first,
                    ended_at=record.ended_at,
                    duration_seconds=(record.ended_at - first).total_seconds(),
                    records_in=record.records_in,
                    records_out=record.records_out,
                    peak_memory_mb=record.peak_memory_mb,
                    memory_delta_mb=record.memory_delta_mb,
                    sample_in=record.sample_in,
                    sample_out=record.sample_out,
                    metrics=record.metrics,
                    error_type=record.error_type,
                    error_message=record.error_message,
                )
            )

    def step_failed(self, run_id: str, step: str, error_type: str, message: str, *, overwrite: bool) -> None:
        """Mark a step failed by the orchestrator; without `overwrite`, only if it has not recorded its
        own end (a step stopped from outside may not have)."""
        where = [step_executions.c.execution_id == run_id, step_executions.c.step_name == step]
        if not overwrite:
            where.append(step_executions.c.status.in_(("pending", "running", "retrying")))
        with self.writer.begin() as conn:
            conn.execute(
                sa.update(step_executions)
                .where(*where)
                .values(status="failed", error_type=error_type, error_message=message, ended_at=now())
            )

    def step_skipped(self, run_id: str, step: str, reason: str) -> None:
        with self.writer.begin() as conn:
            conn.execute(
                sa.update(step_executions)
                .where(step_executions.c.execution_id == run_id, step_executions.c.step_name == step)
                .values(status="skipped", error_message=reason, ended_at=now())
            )

    def finish_run(self, run_id: str, summary: RunSummary) -> None:
        with self.writer.begin() as conn:
            started = conn.execute(
                sa.select(pipeline_executions.c.started_at).where(pipeline_executions.c.id == run_id)
            ).scalar()
            ended = now()
            conn.execute(
                sa.update(pipeline_executions)
                .where(pipeline_executions.c.id == run_id)
                .values(
                    status=summary.status,
                    ended_at=ended,
                    duration_seconds=(ended - (aware(started) or ended)).total_seconds(),
                    records_processed=summary.records_processed,
                    records_inserted=summary.records_inserted,
                    records_updated=summary.records_updated,
                    records_failed=summary.records_failed,
                    records_loaded=summary.records_loaded,
                    records_quarantined=summary.records_quarantined,
                    quality_score=summary.quality_score,
                    peak_memory_mb=summary.peak_memory_mb,
                    cpu_seconds=summary.cpu_seconds,
                    error_type=summary.error_type,
                    error_message=summary.error_message,
                    failed_step=summary.failed_step,
                    retry_count=summary.retry_count,
                    warnings=summary.warnings,
                    data_age_seconds=summary.data_age_seconds,
                    stale_data=summary.stale_data or None,
                )
            )

    # ------------------------------------------------------------ lineage

    def replace_lineage(
        self, pipeline: str, run_id: str, target_table: str, rows: list[dict[str, Any]]
    ) -> None:
        """The column lineage of `target_table` as `pipeline` loads it now (replacing the last run's)."""
        with self.writer.begin() as conn:
            conn.execute(
                sa.delete(data_lineage).where(
                    data_lineage.c.pipeline_name == pipeline, data_lineage.c.target_table == target_table
                )
            )
            if rows:
                stamp = now()
                conn.execute(
                    sa.insert(data_lineage),
                    [
                        {**r, "pipeline_name": pipeline, "execution_id": run_id, "recorded_at": stamp}
                        for r in rows
                    ],
                )

    def record_quality(
        self, pipeline: str, run_id: str, rules: list[dict[str, Any]], checks: list[dict[str, Any]]
    ) -> None:
        """A suite's rule definitions (current) and this run's check results (history)."""
        stamp = now()
        with self.writer.begin() as conn:
            for rule in rules:
                key = (
                    (data_quality_rules.c.pipeline_name == pipeline)
                    & (data_quality_rules.c.suite == rule["suite"])
                    & (data_quality_rules.c.rule_name == rule["rule_name"])
                )
                if not conn.execute(
                    sa.update(data_quality_rules).where(key).values(**rule, updated_at=stamp)
                ).rowcount:
                    conn.execute(
                        sa.insert(data_quality_rules).values(pipeline_name=pipeline, updated_at=stamp, **rule)
                    )
            if checks:
                conn.execute(
                    sa.insert(data_quality_checks),
                    [
                        {**c, "execution_id": run_id, "pipeline_name": pipeline, "checked_at": stamp}
                        for c in checks
                    ],
                )

    def last_loads(self) -> list[dict[str, Any]]:
        """Each destination table with when a completed run last loaded it."""
        stmt = (
            sa.select(
                data_destinations.c.table_name,
                sa.func.max(pipeline_executions.c.ended_at).label("last_loaded"),
            )
            .join(pipeline_executions, pipeline_executions.c.pipeline_id == data_destinations.c.pipeline_id)
            .where(pipeline_executions.c.status.in_(("completed", "completed_with_warnings")))
            .group_by(data_destinations.c.table_name)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def quality_checks_of(self, run_ids: list[str]) -> list[dict[str, Any]]:
        """The checks of many runs in one query."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(data_quality_checks)
                .where(data_quality_checks.c.execution_id.in_(run_ids))
                .order_by(data_quality_checks.c.id)
            )
            return [dict(r._mapping) for r in rows]

    def steps_of(self, run_ids: list[str]) -> list[dict[str, Any]]:
        """The steps of many runs in one query."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(step_executions)
                .where(step_executions.c.execution_id.in_(run_ids))
                .order_by(step_executions.c.id)
            )
            return [dict(r._mapping) for r in rows]

    def quality_checks(self, run_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(data_quality_checks)
                .where(data_quality_checks.c.execution_id == run_id)
                .order_by(data_quality_checks.c.id)
            )
            return [dict(r._mapping) for r in rows]

    def lineage(self, pipeline: str | None = None) -> list[dict[str, Any]]:
        stmt = sa.select(data_lineage).order_by(
            data_lineage.c.target_table, data_lineage.c.target_column, data_lineage.c.source_column
        )
        if pipeline:
            stmt = stmt.where(data_lineage.c.pipeline_name == pipeline)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    # ------------------------------------------------------------ reads

    def runs(self, pipeline: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        stmt = sa.select(pipeline_executions).order_by(pipeline_executions.c.started_at.desc()).limit(limit)
        if pipeline:
            stmt = stmt.where(pipeline_executions.c.pipeline_name == pipeline)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def run(self, run_id: str) -> dict[str, Any] | None:
        """One run by its id, or by the short id (its first 8 or more characters) tables show."""
        return self.find_run(run_id)[0]

    def find_run(self, run_id: str) -> tuple[dict[str, Any] | None, list[str]]:
        """(the run, []) by id or unambiguous id prefix of 8+ characters; (None, the ids that share
        the prefix) when it is ambiguous; (None, []) when nothing matches."""
        key = run_id.strip().lower()
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(pipeline_executions).where(pipeline_executions.c.id == key)).first()
            if row is not None:
                return dict(row._mapping), []
            if len(key) < 8 or not all(c in "0123456789abcdef-" for c in key):
                return None, []
            rows = conn.execute(
                sa.select(pipeline_executions)
                .where(pipeline_executions.c.id.like(f"{key}%"))
                .order_by(pipeline_executions.c.started_at.desc())
                .limit(10)
            ).all()
        if len(rows) == 1:
            return dict(rows[0]._mapping), []
        return None, [r.id for r in rows]

    def steps(self, run_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(step_executions)
                .where(step_executions.c.execution_id == run_id)
                .order_by(step_executions.c.id)
            )
            return [dict(r._mapping) for r in rows]


@overload
def aware(value: datetime) -> datetime: ...
@overload
def aware(value: None) -> None: ...
def aware(value: datetime | None) -> datetime | None:
    """A timestamp from the store as UTC-aware (SQLite gives naive UTC)."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _alive(pid: int, started: float) -> bool:
    try:
        proc = psutil.Process(pid)
        return abs(proc.create_time() - started) < 1.0 and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
