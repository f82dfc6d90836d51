"""The HTTP API over HTTP (a real uvicorn started by `headwater api`) against a copy of the golden
store — the example pipelines really run, one vendor_prices run failed — on SQLite and PostgreSQL.
Every answer is compared with SQL over the store written here, independently of the views the API
reads through; tokens are made with the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
import yaml

from headwater.access.tokens import create_token
from tests.api.server import serving
from tests.golden import Console


@dataclass
class Api:
    url: str
    console: Console
    env: dict[str, str]

    def token(self, name: str, role: str, user: str | None = None) -> str:
        argv = [sys.executable, "-m", "headwater.cli", "tokens", "create", "--name", name, "--role", role]
        if user:
            argv += ["--user", user]
        out = subprocess.run([*argv, "--json"], env=self.env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        return str(json.loads(out.stdout)["token"])

    def get(self, path: str, token: str | None, **params: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(f"{self.url}{path}", headers=headers, params=params, timeout=60)  # type: ignore[arg-type]

    def post(self, path: str, token: str | None, body: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.post(f"{self.url}{path}", headers=headers, json=body, timeout=60)

    def sql(self, query: str, **params: object) -> list[sa.Row]:
        with self.console.engine.connect() as conn:
            return list(conn.execute(sa.text(query), params).all())


@pytest.fixture
def api(console: Console) -> Iterator[Api]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_URL")}
    with serving(env) as url:
        yield Api(url, console, env)


def _error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["status"] == status and error["message"] and error["fix"], error
    assert "Traceback" not in response.text
    return dict(error)


def test_no_token_or_a_dead_one_is_401_with_the_fix(api: Api) -> None:
    _error(api.get("/api/data-pipelines", None), 401)
    assert "headwater tokens create" in str(_error(api.get("/api/data-pipelines", "hwt_made-up"), 401)["fix"])
    past = datetime.now(UTC) - timedelta(days=2)
    old = create_token(
        api.console.engine, "old", "data_engineer", past, created_by="test", expires_in=timedelta(days=1)
    )
    assert "expired" in str(_error(api.get("/api/data-pipelines", old.secret), 401)["message"])
    token = api.token("gone", "data_analyst")
    assert api.get("/api/data-pipelines", token).status_code == 200
    out = subprocess.run(
        [sys.executable, "-m", "headwater.cli", "tokens", "revoke", "gone"],
        env=api.env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "revoked" in str(_error(api.get("/api/data-pipelines", token), 401)["message"])
    # only a hash is kept: the secret appears nowhere in the store
    assert not api.sql("SELECT id FROM api_tokens WHERE token_hash = :t OR prefix = :t", t=token)
    assert not api.sql("SELECT id FROM audit_log WHERE detail LIKE :t", t=f"%{token}%")


def test_every_read_endpoint_agrees_with_the_store(api: Api) -> None:
    token = api.token("reader", "data_analyst", user="analyst")
    now = datetime.now(UTC)

    # pipelines: last execution, 7-day runs, success rate and mean duration, each against SQL
    body = api.get("/api/data-pipelines", token).json()
    names = sorted(r[0] for r in api.sql("SELECT name FROM data_pipelines WHERE is_active"))
    assert [p["name"] for p in body["pipelines"]] == names and body["count"] == len(names)
    runs = api.sql("SELECT id, pipeline_name, status, started_at, duration_seconds FROM pipeline_executions")
    by_pipeline: dict[str, list[sa.Row]] = defaultdict(list)
    for r in runs:
        by_pipeline[r.pipeline_name].append(r)
    for p in body["pipelines"]:
        mine = sorted(by_pipeline[p["name"]], key=lambda r: r.started_at)
        assert p["last_execution"]["id"] == mine[-1].id
        assert p["last_execution"]["status"] == mine[-1].status
        done = [r for r in mine if r.status != "running"]
        ok = [r for r in done if r.status in ("completed", "completed_with_warnings")]
        assert p["executions_7d"] == len(done)
        assert p["success_rate_7d"] == round(len(ok) * 100.0 / len(done), 2)
        assert p["mean_duration_seconds_7d"] == round(sum(r.duration_seconds for r in ok) / len(ok), 2)
    claims = next(p for p in body["pipelines"] if p["name"] == "claims_deidentified")
    assert claims["schedule"] == "0 6 * * * (America/New_York)"
    assert datetime.fromisoformat(claims["next_run"]) > now

    # executions of vendor_prices, newest first, with stats (one run completed with warnings, one failed)
    vendor = api.get("/api/data-pipelines/vendor_prices/executions", token).json()
    rows = sorted(by_pipeline["vendor_prices"], key=lambda r: r.started_at, reverse=True)
    assert [e["id"] for e in vendor["executions"]] == [r.id for r in rows]
    loaded = api.sql(
        "SELECT SUM(records_loaded) FROM pipeline_executions WHERE pipeline_name = 'vendor_prices'"
    )
    assert vendor["stats"]["records_loaded"] == loaded[0][0]
    statuses: dict[str, int] = defaultdict(int)
    for r in rows:
        statuses[r.status] += 1
    assert vendor["stats"]["by_status"] == dict(statuses) and statuses["failed"] == 1
    assert vendor["stats"]["success_rate"] == 50.0

    # one execution in detail: the failed one, by its short id
    failed = next(r for r in rows if r.status == "failed")
    detail = api.get(f"/api/executions/{failed.id[:8]}", token).json()
    assert detail["execution"]["id"] == failed.id and detail["execution"]["status"] == "failed"
    steps = api.sql(
        "SELECT step_name FROM step_executions WHERE execution_id = :id ORDER BY id", id=failed.id
    )
    assert [s["step_name"] for s in detail["steps"]] == [s[0] for s in steps]
    assert detail["errors"][0]["step"] == "extract_feed"
    assert "never closed" in detail["errors"][0]["message"]
    assert all("sample_out" not in s for s in detail["steps"])
    good = next(r for r in rows if r.status != "failed")
    detail = api.get(f"/api/executions/{good.id}", token).json()
    checks = api.sql(
        "SELECT rule_name, records_failed FROM data_quality_checks WHERE execution_id = :id ORDER BY id",
        id=good.id,
    )
    assert [(c["rule_name"], c["records_failed"]) for c in detail["quality_checks"]] == [
        tuple(c) for c in checks
    ]
    assert (
        detail["quality_score"]["score"]
        == api.sql("SELECT quality_score FROM pipeline_executions WHERE id = :id", id=good.id)[0][0]
    )
    _error(api.get("/api/executions/zzzzzzzz", token), 404)

    # the quality dashboard
    dash = api.get("/api/data-quality/dashboard", token, days=30).json()
    scores = [
        r[0] for r in api.sql("SELECT quality_score FROM pipeline_executions WHERE quality_score IS NOT NULL")
    ]
    assert dash["runs_scored"] == len(scores)
    assert dash["overall_score"] == round(sum(scores) / len(scores), 2)
    failing = {
        (r[0], r[1])
        for r in api.sql("SELECT pipeline_name, rule_name FROM data_quality_checks WHERE records_failed > 0")
    }
    assert {(i["pipeline_name"], i["rule_name"]) for i in dash["top_issues"]} == failing
    waiting = dash["quarantine_waiting"]
    with api.console.warehouse().connect() as conn:
        expected = conn.execute(
            sa.text("SELECT COUNT(*) FROM headwater_quarantine WHERE status = 'quarantined'")
        ).scalar()
    assert waiting == expected and waiting > 0
    assert any("quarantine" in r["title"] for r in dash["recommendations"])

    # lineage of carrier_monthly: the tables its columns come from, by a walk over data_lineage here
    edges = api.sql(
        "SELECT source_dataset, source_table, source_column, target_dataset, target_table, target_column "
        "FROM data_lineage"
    )
    up: dict[tuple[str, str, str], set[tuple[str, str, str]]] = defaultdict(set)
    for sd, st, sc, td, tt, tc in edges:
        up[(td, tt, tc)].add((sd, st, sc))
    starts = {(td, tt, tc) for _, _, _, td, tt, tc in edges if tt == "carrier_monthly"}
    start = next(f"{td}::{tt}" for td, tt, _ in starts)
    seen, todo = set(), list(starts)
    while todo:
        for parent in up[todo.pop()]:
            if parent not in seen and parent not in starts:
                seen.add(parent)
                todo.append(parent)
    tables = {f"{d}::{t}" for d, t, _ in seen}
    lin = api.get("/api/lineage/carrier_monthly", token).json()
    assert lin["node"]["id"] == start
    assert set(lin["upstream_tables"]) == tables and lin["downstream_tables"] == []
    assert {"carrier_daily", "flights", "airlines"} <= {t.split("::")[1] for t in tables}
    assert lin["graph"]["edges"] and all(
        e["source"] in {n["id"] for n in lin["graph"]["nodes"]} for e in lin["graph"]["edges"]
    )
    assert "carrier_monthly" in str(_error(api.get("/api/lineage/nothing_here", token), 404)["fix"])
    _error(api.get("/api/data-pipelines/nope", token), 404)

    # SLAs: flights_daily declares one; every run of it succeeded, so every measured day is met
    report = api.get("/api/slas", token).json()
    assert [p["pipeline"] for p in report["pipelines"]] == ["flights_daily"]
    statuses = {
        r[0] for r in api.sql("SELECT status FROM pipeline_executions WHERE pipeline_name = 'flights_daily'")
    }
    assert statuses == {"completed"}
    rate = next(o for o in report["pipelines"][0]["objectives"] if o["objective"] == "success_rate")
    assert rate["days_measured"] >= 1 and rate["days_met"] == rate["days_measured"]
    # sync health: one row per active sync pipeline; breakers: none open
    syncs = api.get("/api/sync-health", token).json()["syncs"]
    expected_syncs = api.sql("SELECT name FROM data_pipelines WHERE pipeline_type = 'sync' AND is_active")
    assert sorted(s["name"] for s in syncs) == sorted(r[0] for r in expected_syncs)
    assert api.get("/api/breakers", token).json() == {"breakers": []}


def _audit(api: Api, outcome: str) -> list[sa.Row]:
    return api.sql(
        "SELECT username, role, action, target, outcome, parameters FROM audit_log "
        "WHERE source = 'api' AND outcome = :o ORDER BY id",
        o=outcome,
    )


def test_executing_needs_an_engineer_is_audited_and_a_retry_really_runs(api: Api) -> None:
    analyst = api.token("an", "data_analyst", user="analyst")
    engineer = api.token("eng", "data_engineer", user="engineer")
    before = api.sql("SELECT COUNT(*) FROM pipeline_executions")[0][0]

    denied = _error(api.post("/api/data-pipelines/vendor_prices/execute", analyst, {}), 403)
    assert "data_engineer" in str(denied["fix"])
    assert [(r.username, r.role, r.action, r.target) for r in _audit(api, "denied")] == [
        ("analyst", "data_analyst", "pipeline.run", "vendor_prices")
    ]

    # a dry run plans the spec's steps in order and starts nothing
    plan = api.post("/api/data-pipelines/vendor_prices/execute", engineer, {"dry_run": True})
    assert plan.status_code == 200, plan.text
    steps = [s["name"] for s in plan.json()["plan"]["steps"]]
    spec = yaml.safe_load((api.console.settings.pipelines_dir / "vendor_prices.yaml").read_text())
    assert steps == [s["name"] for s in spec["steps"]] and len(steps) == 4
    assert plan.json()["plan"]["parameters"] == {"feed": "data/vendor_prices.csv"}

    # a wrong parameter is refused with the spec's line and the fix, as JSON
    bad = _error(
        api.post("/api/data-pipelines/vendor_prices/execute", engineer, {"parameters": {"fed": "x"}}), 422
    )
    assert bad["problems"][0]["line"] and "feed" in str(bad["fix"])  # type: ignore[index]
    assert api.sql("SELECT COUNT(*) FROM pipeline_executions")[0][0] == before

    # a retry of the failed run, with the good feed: a real run, recorded as a retry
    started = api.post(
        "/api/data-pipelines/vendor_prices/execute",
        engineer,
        {"execution_type": "retry", "parameters": {"feed": "data/vendor_prices.csv"}},
    )
    assert started.status_code == 202, started.text
    failed_id = api.sql("SELECT id FROM pipeline_executions WHERE status = 'failed'")[0][0]
    assert started.json()["retry_of"] == failed_id
    run_id = started.json()["execution_id"]
    deadline = time.monotonic() + 180
    status = None
    while time.monotonic() < deadline:
        got = api.get(f"/api/executions/{run_id}", engineer)
        if got.status_code == 200 and got.json()["execution"]["status"] != "running":
            status = got.json()["execution"]["status"]
            break
        time.sleep(1)
    row = api.sql(
        "SELECT execution_type, status, records_loaded, parameters FROM pipeline_executions WHERE id = :id",
        id=run_id,
    )[0]
    assert status == row.status == "completed_with_warnings"
    assert row.execution_type == "retry" and row.records_loaded == 9
    ok = _audit(api, "ok")
    assert [(r.username, r.action) for r in ok] == [
        ("engineer", "pipeline.run"),
        ("engineer", "pipeline.run"),
    ]
    params = [json.loads(r.parameters) if isinstance(r.parameters, str) else r.parameters for r in ok]
    assert params == [{"dry_run": True}, {"feed": "data/vendor_prices.csv", "execution_type": "retry"}]
    # a retry when the newest run did not fail: refused, naming why
    _error(api.post("/api/data-pipelines/vendor_prices/execute", engineer, {"execution_type": "retry"}), 409)
