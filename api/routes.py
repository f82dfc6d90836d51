"""The API's endpoints under /api, shaped after the wedding platform's spec: pipelines with their
last execution, next run, 7-day success rate and mean duration; execute (manual or retry, typed
parameters, dry run); a pipeline's executions with stats; one execution in detail; the quality
dashboard; a dataset's lineage. Every request shows a token (`Authorization: Bearer hwt_…`); reading
needs any role, acting goes through headwater.access.Actions (the console's roles and audit log)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import polars as pl
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.context import ApiContext, now
from api.errors import ApiError
from headwater.access.sessions import Principal
from headwater.control import DeclaredSchedule
from headwater.quality.score import explain
from headwater.spec.loader import mask_secrets
from headwater.store.store import aware
from headwater.store.tables import data_pipelines, pipeline_executions
from headwater.views import lineage, pipelines, quality, runs
from headwater.views.overview import OK

router = APIRouter(prefix="/api")


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.context
    return ctx


Ctx = Annotated[ApiContext, Depends(context)]


def bearer(authorization: Annotated[str | None, Header()] = None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


Token = Annotated[str | None, Depends(bearer)]


def reader(ctx: Ctx, token: Token) -> Principal:
    """Any signed-in role may read."""
    return ctx.actions.identify(token)


Reader = Annotated[Principal, Depends(reader)]


def _records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dicts()


def _known(ctx: ApiContext, name: str) -> None:
    with ctx.engine.connect() as conn:
        found = conn.execute(
            sa.select(data_pipelines.c.id).where(data_pipelines.c.name == name, data_pipelines.c.is_active)
        ).first()
    if not found:
        raise ApiError(404, f"there is no pipeline {name!r}", "GET /api/data-pipelines lists them")


# ------------------------------------------------------------ pipelines


def _pipeline_rows(ctx: ApiContext, name: str | None = None) -> list[dict[str, Any]]:
    table = pipelines.pipelines(ctx.engine, now(), days=7)
    if name is not None:
        table = table.filter(pl.col("name") == name)
    declared = [
        DeclaredSchedule(
            r["name"], r["schedule_cron"], r["schedule_timezone"], r["schedule_interval_seconds"]
        )
        for r in table.iter_rows(named=True)
    ]
    states, problem = ctx.schedules(declared)
    out = []
    for r in table.iter_rows(named=True):
        state = states.get(r["name"])
        out.append(
            {
                "name": r["name"],
                "type": r["pipeline_type"],
                "description": r["description"],
                "owner": r["owner"],
                "tags": [t for t in (r["tags"] or "").split(", ") if t],
                "schedule": state.schedule if state else "",
                "paused": state.paused if state else None,
                "next_run": state.next_run if state else None,
                "schedule_source": state.source if state else None,
                "schedule_problem": problem,
                "last_execution": None
                if r["last_run_id"] is None
                else {
                    "id": r["last_run_id"],
                    "status": r["last_status"],
                    "started_at": r["last_started_at"],
                    "duration_seconds": r["last_duration_seconds"],
                },
                "executions_7d": r["runs"],
                "success_rate_7d": r["success_rate"],
                "mean_duration_seconds_7d": r["mean_duration_seconds"],
            }
        )
    return out


@router.get("/data-pipelines", summary="Every active pipeline: last execution, next run, 7-day stats")
def list_pipelines(ctx: Ctx, _: Reader) -> dict[str, Any]:
    rows = ctx.cached("pipelines", lambda: _pipeline_rows(ctx))
    return {"pipelines": rows, "count": len(rows)}


@router.get("/data-pipelines/{name}", summary="One pipeline, its sources and destinations")
def get_pipeline(name: str, ctx: Ctx, _: Reader) -> dict[str, Any]:
    _known(ctx, name)
    detail = pipelines.pipeline_detail(ctx.engine, name)
    return {
        **_pipeline_rows(ctx, name)[0],
        "sources": _records(detail["sources"]),
        "destinations": _records(detail["destinations"]),
    }


ParamValue = str | int | float | bool | None


class ExecuteRequest(BaseModel):
    execution_type: Literal["manual", "retry"] = Field(
        "manual", description="manual: a new run; retry: run again after a failed run"
    )
    parameters: dict[str, ParamValue] = Field(
        default_factory=dict,
        description="values for the parameters the spec declares (checked against their types); "
        "a retry takes the failed run's values unless given",
    )
    dry_run: bool = Field(False, description="validate and plan the run; nothing is read or written")
    retry_of: str | None = Field(
        None, description="retry: the failed execution to retry (default: the pipeline's newest run)"
    )


def _retry_params(ctx: ApiContext, name: str, retry_of: str | None) -> tuple[str, dict[str, Any]]:
    pe = pipeline_executions
    query = sa.select(pe.c.id, pe.c.status, pe.c.parameters).where(pe.c.pipeline_name == name)
    if retry_of:
        query = query.where(pe.c.id.startswith(retry_of, autoescape=True))
    with ctx.engine.connect() as conn:
        rows = conn.execute(query.order_by(pe.c.started_at.desc()).limit(1 if not retry_of else 2)).all()
    if not rows or (retry_of and len(rows) > 1):
        raise ApiError(
            404,
            f"no execution {retry_of!r} of {name}"
            if retry_of
            else f"{name} has not run yet: nothing to retry",
            "GET /api/data-pipelines/{name}/executions lists them",
        )
    run = rows[0]
    if run.status != "failed":
        raise ApiError(
            409,
            f"execution {run.id} of {name} is {run.status}: only a failed execution is retried",
            "use execution_type manual for a new run",
        )
    return run.id, dict(run.parameters or {})


@router.post(
    "/data-pipelines/{name}/execute",
    summary="Run a pipeline now (manual or retry), or plan it (dry_run)",
    status_code=202,
    responses={200: {"description": "dry run: the plan"}, 403: {"description": "the role may not run"}},
)
def execute(name: str, request: ExecuteRequest, ctx: Ctx, token: Token) -> Any:
    params: dict[str, Any] = dict(request.parameters)
    retried = None
    if request.execution_type == "retry":
        ctx.actions.identify(token)  # who asks, before telling them about runs
        retried, before = _retry_params(ctx, name, request.retry_of)
        params = {**before, **params}
    if request.dry_run:
        planned = ctx.actions.plan_pipeline(token, name, params, ctx.settings.pipelines_dir)
        return JSONResponse(
            {"dry_run": True, "execution_type": request.execution_type, "retry_of": retried, "plan": planned}
        )
    ticket = ctx.actions.run_pipeline(token, name, params, execution_type=request.execution_type)
    return {
        "pipeline": ticket.pipeline,
        "execution_id": ticket.run_id,
        "execution_type": request.execution_type,
        "retry_of": retried,
        "via": ticket.via,
        "ref": ticket.ref,
        "detail": ticket.detail,
        "links": {"execution": f"/api/executions/{ticket.run_id}"} if ticket.run_id else {},
    }


def _stats(frame: pl.DataFrame) -> dict[str, Any]:
    finished = frame.filter(pl.col("status") != "running")
    ok = finished.filter(pl.col("status").is_in(OK))
    durations = ok["duration_seconds"].drop_nulls()
    by_status = {s: int(n) for s, n in frame.group_by("status").len().iter_rows()}
    return {
        "executions": frame.height,
        "by_status": dict(sorted(by_status.items())),
        "success_rate": round(ok.height * 100.0 / finished.height, 2) if finished.height else None,
        "mean_duration_seconds": round(float(durations.mean()), 3) if len(durations) else None,  # type: ignore[arg-type]
        "p95_duration_seconds": round(float(durations.quantile(0.95, "linear")), 3)  # type: ignore[arg-type]
        if len(durations)
        else None,
        "records_loaded": int(frame["records_loaded"].sum() or 0),
        "records_quarantined": int(frame["records_quarantined"].sum() or 0),
    }


@router.get("/data-pipelines/{name}/executions", summary="A pipeline's executions, newest first, with stats")
def executions(
    name: str,
    ctx: Ctx,
    _: Reader,
    days: Annotated[int, Query(ge=1, le=3650, description="the window the stats cover")] = 30,
    status: Annotated[list[str] | None, Query(description="only these statuses")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    _known(ctx, name)
    statuses = sorted(status) if status else None
    since = now() - timedelta(days=days)
    stats = ctx.cached(
        ("executions-stats", name, days, tuple(statuses or ())),
        lambda: _stats(
            runs.runs(ctx.engine, pipeline=name, statuses=statuses, since=since, limit=10_000_000)
        ),
    )
    page = runs.runs(ctx.engine, pipeline=name, statuses=statuses, since=since, limit=limit)
    return {"pipeline": name, "window_days": days, "stats": stats, "executions": _records(page)}


def _utc(row: dict[str, Any]) -> dict[str, Any]:
    """The store's times as UTC (SQLite gives them back without a zone)."""
    return {k: aware(v) if isinstance(v, datetime) else v for k, v in row.items()}


def _execution_json(detail: runs.RunDetail, samples: bool) -> dict[str, Any]:
    run = _utc(dict(detail.run))
    for private in ("pid", "process_started_at", "pipeline_id"):
        run.pop(private, None)
    run["parameters"] = mask_secrets(run.get("parameters") or {})
    score = explain(detail.checks)
    errors = [
        {"step": s["step_name"], "type": s.get("error_type"), "message": s.get("error_message")}
        for s in detail.steps
        if s.get("error_message")
    ]
    if run.get("error_message") and not any(e["message"] == run["error_message"] for e in errors):
        errors.insert(
            0,
            {"step": run.get("failed_step"), "type": run.get("error_type"), "message": run["error_message"]},
        )
    return {
        "execution": run,
        "steps": [
            _utc({k: v for k, v in s.items() if samples or k not in ("sample_in", "sample_out")})
            for s in detail.steps
        ],
        "quality_checks": [_utc(c) for c in detail.checks],
        "quality_score": {"score": score.score, "parts": [p.__dict__ for p in score.parts]},
        "errors": errors,
    }


@router.get("/executions/{execution_id}", summary="One execution: steps, quality checks, errors")
def execution(
    execution_id: str,
    ctx: Ctx,
    _: Reader,
    samples: Annotated[bool, Query(description="include each step's masked sample rows")] = False,
) -> dict[str, Any]:
    full = runs.find_run(ctx.engine, execution_id) if len(execution_id) < 36 else execution_id
    detail = runs.run_detail(ctx.engine, full) if full else None
    if detail is None:
        raise ApiError(
            404,
            f"no execution {execution_id!r} (or more than one starts so)",
            "give the full id, or 8+ characters of it, from GET /api/data-pipelines/{name}/executions",
        )
    return _execution_json(detail, samples)


# ------------------------------------------------------------ quality and lineage


@router.get("/data-quality/dashboard", summary="Overall score, trend, top issues, by source, recommendations")
def quality_dashboard(
    ctx: Ctx,
    _: Reader,
    days: Annotated[int, Query(ge=1, le=3650)] = 30,
    pipeline: str | None = None,
) -> dict[str, Any]:
    if pipeline is not None:
        _known(ctx, pipeline)
    return ctx.cached(("quality", days, pipeline), lambda: _quality(ctx, days, pipeline))


def _quality(ctx: ApiContext, days: int, pipeline: str | None) -> dict[str, Any]:
    since = now() - timedelta(days=days)
    checks = quality.checks(ctx.engine, since, pipeline)
    trend = quality.score_trend(ctx.engine, since, pipeline)
    waiting = {
        key: n for key, n in ctx.quarantine_waiting().items() if pipeline in (None, key[0]) and n is not None
    }
    scores = runs.runs(ctx.engine, pipeline=pipeline, since=since, limit=1_000_000)[
        "quality_score"
    ].drop_nulls()
    return {
        "window_days": days,
        "pipeline": pipeline,
        "overall_score": round(float(scores.mean()), 2) if len(scores) else None,  # type: ignore[arg-type]
        "runs_scored": len(scores),
        "trend": _records(trend),
        "top_issues": _records(quality.top_issues(checks, limit=10)),
        "by_source": _records(quality.by_source(ctx.engine, checks)),
        "recommendations": [r.__dict__ for r in quality.recommendations(ctx.engine, checks, now(), waiting)],
        "quarantine_waiting": sum(waiting.values()),
    }


def _lineage_node(graph: lineage.LineageGraph, name: str) -> str:
    """A node id from what a person writes: the id itself (`dataset`, `dataset::table`,
    `dataset::table.column`), or a table name (`carrier_daily`) or `table.column` found in one dataset."""
    if name in graph.nodes:
        return name
    table, _, column = name.partition(".")
    found = [
        n.id
        for n in graph.nodes.values()
        if (n.kind == "table" and not column and n.table == name)
        or (n.kind == "column" and column and n.table == table and n.column == column)
    ]
    if len(found) == 1:
        return found[0]
    if found:
        raise ApiError(
            409, f"{name!r} is in {len(found)} datasets", f"name one of: {', '.join(sorted(found))}"
        )
    known = sorted(n.id for n in graph.nodes.values() if n.kind == "table")
    raise ApiError(
        404,
        f"no lineage is recorded for {name!r}",
        f"tables with lineage: {', '.join(known) or 'none yet (run a pipeline)'}",
    )


@router.get(
    "/lineage/{name:path}",
    summary="Lineage of a dataset, table or column: upstream, downstream, and the graph between",
    description="`name`: a table (`carrier_daily`), `table.column`, or a node id as the graph gives it "
    "(`<dataset>`, `<dataset>::<table>`, `<dataset>::<table>.<column>`).",
)
def dataset_lineage(name: str, ctx: Ctx, _: Reader) -> dict[str, Any]:
    graph = ctx.cached("lineage", lambda: lineage.lineage_graph(ctx.engine))
    node_id = _lineage_node(graph, name)
    up, down = graph.upstream(node_id), graph.downstream(node_id)
    members = set(graph.members(node_id))
    ids = members | {n.id for n in up} | {n.id for n in down}
    node = graph.nodes[node_id]

    def describe(n: lineage.Node) -> dict[str, Any]:
        return {"id": n.id, "kind": n.kind, "dataset": n.dataset, "table": n.table, "column": n.column}

    return {
        "node": describe(node),
        "upstream": [describe(n) for n in up],
        "downstream": [describe(n) for n in down],
        "upstream_tables": graph.tables(up),
        "downstream_tables": graph.tables(down),
        "graph": {
            "nodes": [describe(graph.nodes[i]) for i in sorted(ids)],
            "edges": [{"source": s, "target": t} for s, t in graph.links_among(ids)],
        },
    }


# ------------------------------------------------------------ SLAs, syncs, breakers


@router.get("/slas", summary="SLA attainment per pipeline: objectives, days measured and met, misses")
def slas(
    ctx: Ctx,
    _: Reader,
    days: Annotated[int | None, Query(ge=1, le=366, description="default: each SLA's window")] = None,
    pipeline: str | None = None,
) -> dict[str, Any]:
    from headwater.alerting.sla import sla_specs
    from headwater.sla import sla_report

    def compute() -> dict[str, Any]:
        specs, problems = sla_specs(ctx.settings.pipelines_dir)
        report = sla_report(ctx.engine, specs, now(), days)
        report["spec_problems"] = [str(p) for p in problems]
        return report

    report = ctx.cached(("slas", days), compute)
    if pipeline is None:
        return report
    _known(ctx, pipeline)
    return {**report, "pipelines": [p for p in report["pipelines"] if p.get("pipeline") == pipeline]}


@router.get(
    "/sync-health", summary="Each sync pipeline: last success, staleness, next run, failures this week"
)
def sync_health(ctx: Ctx, _: Reader) -> dict[str, Any]:
    from headwater.views.sync import sync_health as health

    def compute() -> dict[str, Any]:
        table = pipelines.pipelines(ctx.engine, now(), days=7)
        declared = [
            DeclaredSchedule(
                r["name"], r["schedule_cron"], r["schedule_timezone"], r["schedule_interval_seconds"]
            )
            for r in table.iter_rows(named=True)
        ]
        states, _problem = ctx.schedules(declared)
        rows = health(ctx.engine, now(), {n: s.next_run for n, s in states.items()})
        return {"syncs": _records(rows)}

    return ctx.cached("sync-health", compute)


@router.get("/breakers", summary="Circuit breakers of sources and alert channels, and their state")
def breakers(
    ctx: Ctx,
    _: Reader,
    include_closed: Annotated[bool, Query(alias="all", description="closed breakers too")] = False,
) -> dict[str, Any]:
    from headwater.breakers import Breakers, open_breakers

    found = Breakers(ctx.engine).all() if include_closed else open_breakers(ctx.engine, now())
    return {"breakers": [b.as_dict() for b in found]}


# ------------------------------------------------------------ stream processors


def _stream_processor_json(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


@router.get("/streams", summary="Each stream processor: health, lag, throughput, last committed id")
def list_streams(ctx: Ctx, _: Reader) -> dict[str, Any]:
    from headwater.views.streams import processors

    table = processors(ctx.engine, now())
    return {"processors": [_stream_processor_json(r) for r in table.iter_rows(named=True)]}


@router.get("/streams/{name}", summary="One stream processor: its per-minute history and dead letters")
def get_stream(
    name: str,
    ctx: Ctx,
    _: Reader,
    minutes: Annotated[int, Query(ge=1, le=10080, description="history of the last N minutes")] = 60,
) -> dict[str, Any]:
    from headwater.views.streams import dead_count, history, processors

    table = processors(ctx.engine, now()).filter(pl.col("name") == name)
    if table.is_empty():
        raise ApiError(404, f"there is no stream processor {name!r}", "GET /api/streams lists them")
    row = table.row(0, named=True)
    dead: int | None = None
    if ctx.settings.redis_url:
        import redis

        client = redis.Redis.from_url(ctx.settings.redis_url, decode_responses=True, socket_timeout=10)
        try:
            dead = dead_count(client, row["stream"])
        except redis.RedisError:
            dead = None  # the figures from the store still answer
        finally:
            client.close()
    minutes_rows = history(ctx.engine, name, now() - timedelta(minutes=minutes))
    return {
        "processor": _stream_processor_json(row),
        "minutes": minutes,
        "history": [_stream_processor_json(r) for r in minutes_rows.iter_rows(named=True)],
        "dead_letters": dead,
    }
