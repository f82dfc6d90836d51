"""The Sync health page (AppTest) on the golden store: vendor_prices is the examples' `sync` pipeline
(one completed run, then one failed): its last success, staleness, next run and failures this week
match the store; Run now goes through the audited Actions (an analyst is refused and audited, an
engineer starts a run).

Real services: the golden store (the examples really run through the Prefect test harness)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import psutil
import pytest

from tests.console.conftest import Console, app, sqlite_only
from tests.console.test_pages import clean, frame, metrics, rows, scalar

pytestmark = [pytest.mark.prefect, sqlite_only]


def test_sync_page_matches_the_store(console: Console) -> None:
    e = console.engine
    at = app(console, "data_analyst")
    at.switch_page("app_pages/sync.py").run()
    clean(at)
    table = frame(at, "staleness (h)").set_index("name")
    syncs = [
        r[0] for r in rows(e, "SELECT name FROM data_pipelines WHERE pipeline_type = 'sync' ORDER BY name")
    ]
    assert sorted(table.index) == syncs == ["vendor_prices"]
    row = table.loc["vendor_prices"]
    ended = scalar(
        e,
        "SELECT max(ended_at) FROM pipeline_executions WHERE pipeline_name = 'vendor_prices' "
        "AND status IN ('completed', 'completed_with_warnings')",
    )
    ended = datetime.fromisoformat(str(ended)).replace(tzinfo=UTC)
    assert row["last success (UTC)"].to_pydatetime() == ended
    staleness_h = (datetime.now(UTC) - ended).total_seconds() / 3600
    assert abs(float(row["staleness (h)"]) - staleness_h) <= 0.1
    failures = scalar(
        e,
        "SELECT count(*) FROM pipeline_executions WHERE pipeline_name = 'vendor_prices' "
        "AND status IN ('failed', 'crashed') AND started_at >= :since",
        since=datetime.now(UTC) - timedelta(days=7),
    )
    assert row["failures (7 d)"] == failures == 1
    assert row["runs (7 d)"] == 2
    assert (row["health"], row["last status"]) == ("failing", "failed")
    # next run: the spec's 07:30 in London
    from zoneinfo import ZoneInfo

    london = datetime.now(ZoneInfo("Europe/London"))
    nxt = london.replace(hour=7, minute=30, second=0, microsecond=0)
    nxt = nxt if nxt > london else nxt + timedelta(days=1)
    assert row["next run (UTC)"].to_pydatetime() == nxt.astimezone(UTC)
    assert metrics(at) == {"Syncs": "1", "Healthy": "0", "Stale": "0", "Failing": "1"}


def test_run_now_is_audited(console: Console) -> None:
    e = console.engine
    at = app(console, "data_analyst")
    at.switch_page("app_pages/sync.py").run()
    button = at.button(key="sync_run_now")
    assert "Needs the role data_engineer or system_admin" in button.help
    button.click().run()
    assert at.error[0].value.startswith("Not allowed: analyst (data_analyst) may not pipeline.run")
    audit = "SELECT username, target, outcome FROM audit_log WHERE action = 'pipeline.run' ORDER BY id"
    assert rows(e, audit) == [("analyst", "vendor_prices", "denied")]

    at = app(console, "data_engineer")
    at.switch_page("app_pages/sync.py").run()
    at.button(key="sync_run_now").click().run()
    clean(at)
    message = at.success[0].value
    assert "run started in process" in message
    assert rows(e, audit)[-1] == ("engineer", "vendor_prices", "ok")
    link = at.get("page_link")[0].proto
    run_id = link.query_string.removeprefix("id=")
    pid = int(message.split("process ")[1].split(";")[0])
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and psutil.pid_exists(pid):
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.5)
    assert rows(e, "SELECT execution_type, status FROM pipeline_executions WHERE id = :i", i=run_id) == [
        ("manual", "completed_with_warnings")
    ]
