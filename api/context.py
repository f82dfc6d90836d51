"""What every request shares, made once per API process: the settings, the store's engine, the
orchestrator (the Prefect server when there is one, else local processes), the Actions gate, and a
short cache of schedule states (asking Prefect on every request would make the API as slow as it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import sqlalchemy as sa

from headwater.access import Actions
from headwater.connections import Connections
from headwater.control import DeclaredSchedule, LocalOrchestrator, Orchestrator, ScheduleState, spec_schedules
from headwater.services import running_api_url
from headwater.settings import Settings
from headwater.store import Store

SCHEDULES_TTL = 30.0
ANSWER_TTL = 5.0
T = TypeVar("T")


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ApiContext:
    settings: Settings
    store: Store
    orchestrator: Orchestrator
    actions: Actions
    connections: Connections | None = None
    _schedules: tuple[float, dict[str, ScheduleState], str | None] | None = None
    _waiting: tuple[float, dict[tuple[str, str], int | None]] | None = None
    _answers: dict[Any, tuple[float, Any]] = field(default_factory=dict)
    _computing: dict[Any, threading.Lock] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def engine(self) -> sa.Engine:
        return self.store.engine

    @classmethod
    def create(cls, settings: Settings) -> ApiContext:
        settings.ensure_home()
        store = Store(settings.database_url).migrate()
        local = LocalOrchestrator(settings.home, settings.pipelines_dir)
        prefect_url = settings.prefect_api_url or running_api_url(settings)
        orchestrator: Orchestrator = local
        if prefect_url:
            from flows.control import PrefectOrchestrator

            orchestrator = PrefectOrchestrator(prefect_url, local)
        alerts = None
        if settings.alerts_dir:
            alerts_dir = settings.alerts_dir

            def alerts() -> Any:
                from headwater.alerting import engine_for

                return engine_for(store.engine, alerts_dir)

        actions = Actions(
            store.engine,
            orchestrator,
            alerts,
            source="api",
            connections=Connections(settings.warehouse_url),
        )
        return cls(settings, store, orchestrator, actions, actions.connections)

    def schedules(self, declared: list[DeclaredSchedule]) -> tuple[dict[str, ScheduleState], str | None]:
        """Each pipeline's schedule state (cached for SCHEDULES_TTL seconds), and why the
        orchestrator could not be asked (then: computed from the specs)."""
        with self._lock:
            cached = self._schedules
            if cached is not None and time.monotonic() - cached[0] < SCHEDULES_TTL:
                return cached[1], cached[2]
            try:
                states, problem = self.orchestrator.schedules(declared, now()), None
            except Exception as exc:  # Prefect down: answer from the specs, and say so
                states, problem = spec_schedules(declared, now()), f"{type(exc).__name__}: {exc}"
            self._schedules = (time.monotonic(), states, problem)
            return states, problem

    def cached(self, key: Any, compute: Callable[[], T], ttl: float = ANSWER_TTL) -> T:
        """An answer computed at most once per `ttl` seconds per key, by one request while the
        others asking the same wait for it (reads that aggregate the whole history: every client
        of a dashboard asks the same). Runs land minutes apart, so an answer seconds old is the answer."""

        def fresh() -> tuple[float, Any] | None:
            hit = self._answers.get(key)
            return hit if hit is not None and time.monotonic() - hit[0] < ttl else None

        hit = fresh()
        if hit is not None:
            return cast(T, hit[1])
        with self._lock:
            gate = self._computing.setdefault(key, threading.Lock())
        with gate:
            hit = fresh()
            if hit is not None:
                return cast(T, hit[1])
            value = compute()
            with self._lock:
                if len(self._answers) > 512:  # many distinct parameters: start over rather than grow
                    self._answers.clear()
                    self._computing = {key: gate}
                self._answers[key] = (time.monotonic(), value)
        return value

    def warehouse_engine(self, pipeline: str, table: str | None = None) -> sa.Engine:
        """The engine of the warehouse the pipeline loads `table` into, resolved as runs resolve it."""
        from headwater.spec.loader import find_pipeline

        loaded = find_pipeline(self.settings.pipelines_dir, pipeline, reading=True)
        assert self.connections is not None
        return self.connections.engine(loaded.spec.warehouse_for(table))

    def quarantine_waiting(self) -> dict[tuple[str, str], int | None]:
        """Rows waiting in quarantine per (pipeline, destination table); None where the warehouse
        did not answer. Cached like the schedules."""
        from headwater.store.tables import data_destinations, data_pipelines
        from headwater.views import quarantine

        with self._lock:
            if self._waiting is not None and time.monotonic() - self._waiting[0] < SCHEDULES_TTL:
                return self._waiting[1]
        query = (
            sa.select(data_pipelines.c.name, data_destinations.c.table_name)
            .join(data_pipelines, data_pipelines.c.id == data_destinations.c.pipeline_id)
            .where(data_pipelines.c.is_active)
        )
        with self.engine.connect() as conn:
            pairs = conn.execute(query).all()
        out: dict[tuple[str, str], int | None] = {}
        for pipeline, table in pairs:
            try:
                counts = quarantine.counts(self.warehouse_engine(pipeline, table), pipeline, table)
                out[(pipeline, table)] = int(counts.filter(counts["status"] == "quarantined")["rows"].sum())
            except Exception:  # a warehouse that cannot be reached shows as unknown
                out[(pipeline, table)] = None
        with self._lock:
            self._waiting = (time.monotonic(), out)
        return out
