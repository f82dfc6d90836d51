"""Through a real Prefect API with the repo's prefect.yaml really deployed (`prefect deploy --all`):
the Pipelines page shows each deployment's schedule, state and next run; an engineer pauses and
resumes a schedule and runs a pipeline now with parameters (a flow run of its deployment, which a
real process worker then executes into the store); an analyst's pause is refused, audited, and
leaves the deployment as it was."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import REPO
from tests.console.conftest import Console, app, sqlite_only
from tests.console.test_pages import as_json, clean, frame, rows

pytestmark = [pytest.mark.prefect, sqlite_only]
PREFECT = str(Path(sys.executable).parent / "prefect")
POOL = "headwater"


def _prefect(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [PREFECT, "--no-prompt", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def deployed(prefect_api: str) -> Iterator[dict[str, str]]:
    """prefect.yaml deployed to the test API on a process work pool; removed afterwards."""
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "HEADWATER_REPO": str(REPO)}
    _prefect(["work-pool", "create", POOL, "--type", "process", "--overwrite"], env)
    _prefect(["deploy", "--all"], env)
    yield env
    from prefect import get_client

    with get_client(sync_client=True) as client:
        for deployment in client.read_deployments():
            client.delete_deployment(deployment.id)
        client.delete_work_pool(POOL)


def _deployment(name: str) -> Any:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(f"{name}/{name}")


def test_pause_resume_and_schedules(
    console: Console, deployed: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", deployed["PREFECT_API_URL"])
    at = app(console, "data_analyst")
    health = [m.value for m in at.markdown if "**Prefect API**" in m.value]
    assert len(health) == 1 and "— ok ·" in health[0] and deployed["PREFECT_API_URL"] in health[0]
    at.switch_page("app_pages/pipelines.py").run()
    clean(at)
    table = frame(at, "success rate").set_index("name")
    assert table.loc["flights_daily", "state"] == "active"
    assert table.loc["carrier_monthly", "schedule"] == "no active schedule"  # it runs on a trigger
    ny = datetime.now(ZoneInfo("America/New_York"))
    six = ny.replace(hour=6, minute=0, second=0, microsecond=0)
    six = six if six > ny else six + timedelta(days=1)
    # a column with a gap (carrier_monthly runs on a trigger) is shown as text, "—" for the gap
    assert table.loc["flights_daily", "next run (UTC)"] == f"{six.astimezone(UTC):%Y-%m-%d %H:%M:%S}"
    assert table.loc["carrier_monthly", "next run (UTC)"] == "—"

    at.selectbox(key="pipeline_pick").set_value("flights_daily").run()
    at.button(key="pause").click().run()  # the analyst: refused
    assert "may not pipeline.pause" in at.error[0].value
    assert _deployment("flights_daily").paused is False

    eng = app(console, "data_engineer")
    eng.switch_page("app_pages/pipelines.py").run()
    eng.selectbox(key="pipeline_pick").set_value("flights_daily").run()
    eng.button(key="pause").click().run()
    clean(eng)
    assert eng.success[0].value == "flights_daily paused"
    assert _deployment("flights_daily").paused is True
    eng.run()
    table = frame(eng, "success rate").set_index("name")
    assert table.loc["flights_daily", "state"] == "paused"
    assert table.loc["flights_daily", "next run (UTC)"] == "—"  # paused: none
    eng.button(key="resume").click().run()
    assert eng.success[0].value == "flights_daily resumed"
    assert _deployment("flights_daily").paused is False
    assert rows(
        console.engine,
        "SELECT username, action, outcome FROM audit_log WHERE action LIKE 'pipeline.%' ORDER BY id",
    ) == [
        ("analyst", "pipeline.pause", "denied"),
        ("engineer", "pipeline.pause", "ok"),
        ("engineer", "pipeline.resume", "ok"),
    ]


def test_run_now_creates_a_flow_run_that_a_worker_executes(
    console: Console, deployed: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", deployed["PREFECT_API_URL"])
    at = app(console, "data_engineer")
    at.switch_page("app_pages/pipelines.py").run()
    at.selectbox(key="pipeline_pick").set_value("vendor_prices").run()
    at.text_input(key="param_vendor_prices_feed").input("./data/vendor_prices.csv")
    at.button(key="run_now").click().run()
    clean(at)
    message = at.success[0].value
    assert "scheduled on deployment vendor_prices/vendor_prices" in message
    flow_run_id = message.split("(")[1].split(")")[0]
    from prefect import get_client

    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
    parameters = dict(flow_run.parameters)
    run_id = parameters.pop("run_id")  # chosen by the console: the page links to it at once
    assert parameters == {
        "pipeline": "vendor_prices",
        "execution_type": "manual",
        "params": {"feed": "./data/vendor_prices.csv"},
    }
    assert at.get("page_link")[0].proto.query_string == f"id={run_id}"
    assert "requested-by:engineer" in flow_run.tags

    # a real process worker picks the run up and executes it from the deployment's entrypoint
    env = {**deployed, **{k: v for k, v in os.environ.items() if k.startswith("HEADWATER_")}}
    worker = subprocess.Popen(
        [PREFECT, "worker", "start", "--pool", POOL, "--run-once"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out, _ = worker.communicate(timeout=300)
    finally:
        worker.kill()
    deadline = time.monotonic() + 60
    found: list[Any] = []
    while time.monotonic() < deadline and not found:
        found = rows(
            console.engine,
            "SELECT status, execution_type, records_loaded, parameters, flow_run_id FROM pipeline_executions "
            "WHERE flow_run_id = :f",
            f=flow_run_id,
        )
        time.sleep(0.5)
    assert found, out[-4000:]
    assert rows(
        console.engine, "SELECT id FROM pipeline_executions WHERE flow_run_id = :f", f=flow_run_id
    ) == [(run_id,)]
    status, kind, loaded, params, _ = found[0]
    assert (status, kind, loaded) == ("completed_with_warnings", "manual", 9)
    assert as_json(params) == {"feed": "./data/vendor_prices.csv"}
