"""Everything the pages read, cached: engines and the orchestrator once per process
(`st.cache_resource`), reads for TTL seconds (`st.cache_data`, keyed by the store URL so two stores
never share an entry). Pages call these and the domain's Actions; they never query or write."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import sqlalchemy as sa
import streamlit as st

from headwater.access import Actions
from headwater.connections import Connections
from headwater.control import DeclaredSchedule, LocalOrchestrator, Orchestrator, ScheduleState
from headwater.settings import Settings
from headwater.store import Store
from headwater.store.tables import data_destinations, data_pipelines
from headwater.views import lineage, overview, pipelines, quality, quarantine, runs
from headwater.views.health import HealthCheck, check_all

TTL = 30


def settings() -> Settings:
    return Settings.from_env()


def now() -> datetime:
    return datetime.now(UTC)


@st.cache_resource(show_spinner=False)
def _engine(url: str) -> sa.Engine:
    return Store(url).migrate().engine


def engine() -> sa.Engine:
    return _engine(settings().database_url)


@st.cache_resource(show_spinner=False)
def _orchestrator(home: str, pipelines_dir: str, prefect_api_url: str | None) -> Orchestrator:
    from pathlib import Path

    local = LocalOrchestrator(Path(home), Path(pipelines_dir))
    if prefect_api_url:
        from flows.control import PrefectOrchestrator

        return PrefectOrchestrator(prefect_api_url, local)
    return local


def orchestrator() -> Orchestrator:
    s = settings()
    return _orchestrator(str(s.home), str(s.pipelines_dir), s.prefect_api_url)


def _alert_engine() -> Any:
    from headwater.alerting import engine_for

    s = settings()
    assert s.alerts_dir is not None
    return engine_for(engine(), s.alerts_dir)


def actions() -> Actions:
    return Actions(engine(), orchestrator(), _alert_engine if settings().alerts_dir else None)


def refresh() -> None:
    """After an action: the next reads see its effect."""
    st.cache_data.clear()


# ------------------------------------------------------------ reads


@st.cache_data(ttl=15, show_spinner=False)
def health(
    database_url: str, warehouse_url: str, prefect_api_url: str | None, redis_url: str | None
) -> list[HealthCheck]:
    return check_all(database_url, warehouse_url, prefect_api_url, redis_url)


def health_now() -> list[HealthCheck]:
    s = settings()
    return health(s.database_url, s.warehouse_url, s.prefect_api_url, s.redis_url)


@st.cache_data(ttl=15, show_spinner=False)
def _open_breakers(url: str) -> list[dict[str, Any]]:
    from headwater.breakers import open_breakers

    return [{**b.as_dict(), "state": b.state} for b in open_breakers(_engine(url), now())]


def open_breakers_now() -> list[dict[str, Any]]:
    """Circuit breakers that are open or half-open (headwater.breakers)."""
    return _open_breakers(settings().database_url)


@st.cache_data(ttl=TTL, show_spinner=False)
def _overview(url: str) -> overview.Overview:
    return overview.overview(_engine(url), now())


def overview_now() -> overview.Overview:
    return _overview(settings().database_url)


@st.cache_data(ttl=10, show_spinner=False)
def _running(url: str) -> pl.DataFrame:
    return runs.runs(_engine(url), statuses=["running"], limit=50)


def running() -> pl.DataFrame:
    return _running(settings().database_url)


@st.cache_data(ttl=TTL, show_spinner=False)
def _runs(
    url: str, pipeline: str | None, statuses: tuple[str, ...], days: int | None, limit: int
) -> pl.DataFrame:
    since = now() - timedelta(days=days) if days else None
    return runs.runs(_engine(url), pipeline=pipeline, statuses=list(statuses), since=since, limit=limit)


def run_list(
    pipeline: str | None = None, statuses: tuple[str, ...] = (), days: int | None = None, limit: int = 200
) -> pl.DataFrame:
    return _runs(settings().database_url, pipeline, statuses, days, limit)


@st.cache_data(ttl=TTL, show_spinner=False)
def _run_detail(url: str, run_id: str) -> runs.RunDetail | None:
    return runs.run_detail(_engine(url), run_id)


def run_detail(run_id: str) -> runs.RunDetail | None:
    return _run_detail(settings().database_url, run_id)


def find_run(prefix: str) -> str | None:
    """The run's full id, read now (not cached: a run being started appears within seconds)."""
    return runs.find_run(engine(), prefix)


@st.cache_data(ttl=TTL, show_spinner=False)
def _pipelines(url: str) -> pl.DataFrame:
    return pipelines.pipelines(_engine(url), now())


def pipeline_table() -> pl.DataFrame:
    return _pipelines(settings().database_url)


@st.cache_data(ttl=TTL, show_spinner=False)
def _pipeline_detail(url: str, name: str) -> dict[str, pl.DataFrame]:
    return pipelines.pipeline_detail(_engine(url), name)


def pipeline_detail(name: str) -> dict[str, pl.DataFrame]:
    return _pipeline_detail(settings().database_url, name)


def _declared(table: pl.DataFrame) -> list[DeclaredSchedule]:
    return [
        DeclaredSchedule(
            r["name"], r["schedule_cron"], r["schedule_timezone"], r["schedule_interval_seconds"]
        )
        for r in table.iter_rows(named=True)
    ]


@st.cache_data(ttl=TTL, show_spinner=False)
def _schedules(
    url: str, home: str, pipelines_dir: str, prefect_api_url: str | None
) -> dict[str, ScheduleState]:
    declared = _declared(_pipelines(url))
    return _orchestrator(home, pipelines_dir, prefect_api_url).schedules(declared, now())


def schedules() -> tuple[dict[str, ScheduleState], str | None]:
    """Each pipeline's schedule state, and a problem reaching the orchestrator (then: from specs)."""
    from headwater.control import spec_schedules

    s = settings()
    try:
        return _schedules(s.database_url, str(s.home), str(s.pipelines_dir), s.prefect_api_url), None
    except Exception as exc:  # Prefect down: the page still shows what the specs say
        return spec_schedules(_declared(pipeline_table()), now()), f"{type(exc).__name__}: {exc}"


@st.cache_data(ttl=TTL, show_spinner=False)
def _checks(url: str, days: int, pipeline: str | None) -> pl.DataFrame:
    return quality.checks(_engine(url), now() - timedelta(days=days), pipeline)


def checks(days: int, pipeline: str | None) -> pl.DataFrame:
    return _checks(settings().database_url, days, pipeline)


@st.cache_data(ttl=TTL, show_spinner=False)
def _score_trend(url: str, days: int, pipeline: str | None) -> pl.DataFrame:
    return quality.score_trend(_engine(url), now() - timedelta(days=days), pipeline)


def score_trend(days: int, pipeline: str | None) -> pl.DataFrame:
    return _score_trend(settings().database_url, days, pipeline)


@st.cache_data(ttl=TTL, show_spinner=False)
def _by_source(url: str, days: int, pipeline: str | None) -> pl.DataFrame:
    return quality.by_source(_engine(url), _checks(url, days, pipeline))


def by_source(days: int, pipeline: str | None) -> pl.DataFrame:
    return _by_source(settings().database_url, days, pipeline)


@st.cache_data(ttl=TTL, show_spinner=False)
def _recommendations(url: str, days: int, pipeline: str | None) -> list[quality.Recommendation]:
    waiting = {
        (p, t): int(n)
        for p, t, n in quarantine_overview().select("pipeline", "table", "waiting").iter_rows()
        if pipeline in (None, p) and n is not None
    }
    return quality.recommendations(_engine(url), _checks(url, days, pipeline), now(), waiting)


def recommendations(days: int, pipeline: str | None) -> list[quality.Recommendation]:
    return _recommendations(settings().database_url, days, pipeline)


@st.cache_data(ttl=TTL, show_spinner=False)
def _lineage(url: str, pipeline: str | None) -> lineage.LineageGraph:
    return lineage.lineage_graph(_engine(url), pipeline)


def lineage_graph(pipeline: str | None = None) -> lineage.LineageGraph:
    return _lineage(settings().database_url, pipeline)


# ------------------------------------------------------------ alerts


@st.cache_data(ttl=TTL, show_spinner=False)
def _alerts(url: str, days: int, statuses: tuple[str, ...]) -> list[dict[str, Any]]:
    from headwater.alerting.engine import history

    return history(_engine(url), since=now() - timedelta(days=days), statuses=statuses or None)


def alerts(days: int = 3650, statuses: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return _alerts(settings().database_url, days, statuses)


@st.cache_data(ttl=TTL, show_spinner=False)
def _deliveries(url: str, alert_id: int) -> list[Any]:
    from headwater.alerting.engine import deliveries

    return deliveries(_engine(url), alert_id)


def deliveries(alert_id: int) -> list[Any]:
    return _deliveries(settings().database_url, alert_id)


@st.cache_data(ttl=TTL, show_spinner=False)
def _silences(url: str) -> list[Any]:
    from headwater.alerting.engine import active_silences

    return active_silences(_engine(url), now())


def silences() -> list[Any]:
    return _silences(settings().database_url)


# ------------------------------------------------------------ quarantine (in the warehouses)


@st.cache_resource(show_spinner=False)
def _connections(default_warehouse_url: str, prefect_api_url: str | None) -> Connections:
    if prefect_api_url:  # warehouses named by a block need Prefect's block store
        from flows.pipeline import load_database_url, load_rest_token

        return Connections(
            default_warehouse_url, database_block=load_database_url, secret_block=load_rest_token
        )
    return Connections(default_warehouse_url)


@st.cache_resource(show_spinner=False, max_entries=200)
def _spec(pipelines_dir: str, pipeline: str, stamp: float) -> Any:
    from headwater.spec.loader import find_pipeline

    return find_pipeline(pipelines_dir, pipeline, reading=True)


def spec(pipeline: str) -> Any:
    """The pipeline's spec, read (not checked: that reads its source files) and kept until the
    file changes."""
    folder = settings().pipelines_dir
    path = folder / f"{pipeline}.yaml"
    return _spec(str(folder), pipeline, path.stat().st_mtime if path.exists() else 0.0)


def warehouse_engine(pipeline: str) -> sa.Engine:
    """The engine of the pipeline's warehouse, resolved from its spec as runs resolve it."""
    s = settings()
    return _connections(s.warehouse_url, s.prefect_api_url).engine(spec(pipeline).spec.warehouse_for())


@st.cache_data(ttl=TTL, show_spinner=False)
def _destinations(url: str) -> pl.DataFrame:
    query = (
        sa.select(data_pipelines.c.name, data_destinations.c.table_name)
        .join(data_pipelines, data_pipelines.c.id == data_destinations.c.pipeline_id)
        .where(data_pipelines.c.is_active)
        .order_by(data_pipelines.c.name, data_destinations.c.table_name)
    )
    with _engine(url).connect() as conn:
        rows = conn.execute(query).all()
    return pl.DataFrame(rows, schema={"pipeline": pl.String, "table": pl.String}, orient="row")


@st.cache_data(ttl=TTL, show_spinner=False)
def _quarantine_counts(url: str, pipeline: str, table: str) -> pl.DataFrame:
    return quarantine.counts(warehouse_engine(pipeline), pipeline, table)


def quarantine_counts(pipeline: str, table: str) -> pl.DataFrame:
    return _quarantine_counts(settings().database_url, pipeline, table)


def quarantine_overview() -> pl.DataFrame:
    """pipeline, table, waiting (rows still quarantined), replayed: every destination table."""
    rows = []
    for pipeline, table in _destinations(settings().database_url).iter_rows():
        try:
            counts = quarantine_counts(pipeline, table)
        except Exception:  # a warehouse that cannot be reached shows as unknown, not as an error page
            rows.append((pipeline, table, None, None))
            continue
        by_status = dict(counts.group_by("status").agg(pl.col("rows").sum()).iter_rows())
        rows.append((pipeline, table, by_status.get("quarantined", 0), by_status.get("replayed", 0)))
    schema = {"pipeline": pl.String, "table": pl.String, "waiting": pl.Int64, "replayed": pl.Int64}
    return pl.DataFrame(rows, schema=schema, orient="row")


@st.cache_data(ttl=TTL, show_spinner=False)
def _quarantine_rows(
    url: str, pipeline: str, table: str, status: str | None, rule: str | None, limit: int, offset: int
) -> pl.DataFrame:
    return quarantine.rows(
        warehouse_engine(pipeline), pipeline, table, status=status, rule=rule, limit=limit, offset=offset
    )


def quarantine_rows(
    pipeline: str, table: str, status: str | None, rule: str | None, limit: int = 100, offset: int = 0
) -> pl.DataFrame:
    return _quarantine_rows(settings().database_url, pipeline, table, status, rule, limit, offset)


# ------------------------------------------------------------ admin


def users() -> list[dict[str, Any]]:
    from headwater.access.users import list_users

    return list_users(engine())


def console_settings() -> list[dict[str, Any]]:
    from headwater.access.config import setting_rows

    return setting_rows(engine())


def audit(limit: int, username: str | None, action: str | None, outcome: str | None) -> list[dict[str, Any]]:
    from headwater.access.audit import read

    return read(engine(), limit=limit, username=username, action=action, outcome=outcome)


def pipeline_params(pipeline: str) -> dict[str, Any]:
    """The parameters the pipeline's spec declares (name -> ParamSpec), for the run-now form."""
    return dict(spec(pipeline).spec.params)


@st.cache_data(ttl=TTL, show_spinner=False)
def _sync_health(url: str, next_runs: tuple[tuple[str, datetime | None], ...]) -> pl.DataFrame:
    from headwater.views.sync import sync_health as view

    return view(_engine(url), now(), dict(next_runs))


def sync_health(states: Mapping[str, ScheduleState]) -> pl.DataFrame:
    """Each sync pipeline's health (headwater.views.sync), next runs from `states` (the orchestrator's,
    or the specs')."""
    return _sync_health(settings().database_url, tuple(sorted((k, v.next_run) for k, v in states.items())))


@st.cache_data(ttl=TTL, show_spinner=False)
def _sla_report(url: str, folder: str, days: int | None) -> dict[str, Any]:
    from headwater.alerting.sla import sla_specs
    from headwater.sla import sla_report as report

    specs, _ = sla_specs(folder)
    return report(_engine(url), specs, now(), days)


def sla_report(days: int | None) -> dict[str, Any]:
    """Each `sla:` pipeline's attainment over the last `days` days (None: its window), and what an
    SLA check finds now (headwater.sla.sla_report)."""
    s = settings()
    return _sla_report(s.database_url, str(s.pipelines_dir), days)


# ------------------------------------------------------------ stream processors


@st.cache_data(ttl=10, show_spinner=False)
def _stream_processors(url: str) -> pl.DataFrame:
    from headwater.views.streams import processors

    return processors(_engine(url), now())


def stream_processors() -> pl.DataFrame:
    """Each stream processor with its health and current figures (headwater.views.streams)."""
    return _stream_processors(settings().database_url)


@st.cache_data(ttl=10, show_spinner=False)
def _stream_history(url: str, name: str, minutes: int) -> pl.DataFrame:
    from headwater.views.streams import history

    return history(_engine(url), name, now() - timedelta(minutes=minutes))


def stream_history(name: str, minutes: int) -> pl.DataFrame:
    """The processor's per-minute figures of the last `minutes` minutes."""
    return _stream_history(settings().database_url, name, minutes)


@st.cache_resource(show_spinner=False)
def _redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, decode_responses=True, socket_timeout=10)


@st.cache_data(ttl=10, show_spinner=False)
def _dead_letters(url: str, stream: str, count: int) -> tuple[pl.DataFrame, int]:
    from headwater.views.streams import dead_count, dead_letters

    client = _redis(url)
    return dead_letters(client, stream, count), dead_count(client, stream)


def dead_letters(stream: str, count: int) -> tuple[pl.DataFrame, int] | None:
    """The newest `count` dead letters of `stream` and how many there are (None: no Redis set)."""
    url = settings().redis_url
    return None if not url else _dead_letters(url, stream, count)
