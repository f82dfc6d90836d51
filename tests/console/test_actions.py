"""Actions from the pages: an analyst is refused everything — also when the request is crafted
(a disabled button clicked anyway) — and each refusal is audited with nothing changed; an engineer
runs a pipeline (really, in a process of its own), acknowledges, resolves and silences alerts; an
admin manages users. Every attempt lands in the audit log."""

from __future__ import annotations

import time
from typing import Any

import psutil
import pytest
import sqlalchemy as sa

from tests.console.conftest import Console, app
from tests.console.test_pages import as_json, clean, frame, metrics, rows, scalar

pytestmark = pytest.mark.prefect


def _alive(pid: int) -> bool:
    """The process runs (a zombie has ended: it only waits for its parent to reap it)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _zombies() -> list[int]:
    """Children of this process (the console's, in AppTest) that ended and were never reaped."""
    return [c.pid for c in psutil.Process().children() if c.status() == psutil.STATUS_ZOMBIE]


def audit(console: Console, action: str) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in rows(
            console.engine,
            "SELECT username, role, target, outcome FROM audit_log WHERE action = :a ORDER BY id",
            a=action,
        )
    ]


def test_an_analyst_cannot_act_from_the_pages(console: Console) -> None:
    e = console.engine
    runs_before = scalar(e, "SELECT count(*) FROM pipeline_executions")
    at = app(console, "data_analyst")
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("app_pages/admin.py")  # the admin page is not even registered for an analyst

    at.switch_page("app_pages/pipelines.py").run()
    clean(at)
    run_now = at.button(key="run_now")
    assert "Needs the role data_engineer or system_admin; you are data_analyst" in run_now.help
    run_now.click().run()  # the button is there, locked: the click reaches the domain, which refuses
    assert at.error[0].value.startswith("Not allowed: analyst (data_analyst) may not pipeline.run")

    at.switch_page("app_pages/quality.py").run()
    at.radio(key="quality_section").set_value("Quarantine").run()
    at.button(key="replay").click().run()
    assert "may not quarantine.replay" in at.error[0].value

    at.switch_page("app_pages/alerts.py").run()
    clean(at)
    at.button(key="ack").click().run()
    assert "may not alert.ack" in at.error[0].value
    at.button(key="resolve").click().run()
    assert "may not alert.resolve" in at.error[0].value
    at.button(key="silence_submit").click().run()
    assert "may not alert.silence" in at.error[0].value

    # nothing happened...
    assert scalar(e, "SELECT count(*) FROM pipeline_executions") == runs_before
    assert scalar(e, "SELECT count(*) FROM alert_instances WHERE status = 'open'") == 2
    assert scalar(e, "SELECT count(*) FROM alert_silences") == 0
    with console.warehouse().connect() as conn:
        assert (
            conn.execute(
                sa.text("SELECT count(*) FROM headwater_quarantine WHERE status = 'replayed'")
            ).scalar()
            == 0
        )
    # ...and every attempt is on record
    denied = rows(
        e,
        "SELECT action, target FROM audit_log WHERE username = 'analyst' AND outcome = 'denied' ORDER BY id",
    )
    assert [a for a, _ in denied] == [
        "pipeline.run",
        "quarantine.replay",
        "alert.ack",
        "alert.resolve",
        "alert.silence",
    ]
    assert denied[0][1] == "carrier_monthly" and denied[1][1] == "flights_clean"


def test_an_engineer_runs_a_pipeline_now(
    console: Console, prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a Prefect server is configured but vendor_prices is not deployed there: the run starts in a
    # process of its own, which reports to that server and records the run in the store
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    e = console.engine
    at = app(console, "data_engineer")
    at.switch_page("app_pages/pipelines.py").run()
    at.selectbox(key="pipeline_pick").set_value("vendor_prices").run()
    clean(at)
    feed = at.text_input(key="param_vendor_prices_feed")
    assert feed.value == "data/vendor_prices.csv"
    feed.input("data/no_such_feed.csv")
    at.button(key="run_now").click().run()  # a bad value fails at once, with the file and the fix
    assert (
        "vendor_prices.yaml:18: sources.feed.path: no file matches 'data/no_such_feed.csv'"
        in at.error[0].value
    )
    assert audit(console, "pipeline.run")[-1][-1] == "failed"
    at.text_input(key="param_vendor_prices_feed").input("./data/vendor_prices.csv")  # changed: passed on
    clicked = time.monotonic()
    at.button(key="run_now").click().run()
    clean(at)
    message = at.success[0].value
    assert "run started in process" in message
    pid = int(message.split("process ")[1].split(";")[0])
    # the page links to the run it started, by the id the run is recorded under
    link = at.get("page_link")[0].proto
    assert link.page == "run" and link.label.startswith("Open run ")
    run_id = link.query_string.removeprefix("id=")
    assert len(run_id) == 36 and link.label == f"Open run {run_id[:8]}"
    # ...and the run is in the store as running well within one refresh of the Overview's live
    # panel (10 s): `headwater run` records it before it starts the slow part
    while time.monotonic() - clicked < 10 and not rows(
        e, "SELECT status FROM pipeline_executions WHERE id = :i", i=run_id
    ):
        time.sleep(0.2)
    assert rows(e, "SELECT pipeline_name, status FROM pipeline_executions WHERE id = :i", i=run_id) == [
        ("vendor_prices", "running")
    ], f"not recorded {time.monotonic() - clicked:.1f} s after Run now"
    overview = app(console, "data_analyst")
    assert metrics(overview)["Running now"] == "1"
    assert frame(overview, "running for (s)")["run"].tolist() == [run_id[:8]]
    # the run, its alerting included, is over when its process ends; the console reaps it (it is
    # the console's child): nothing is left behind as a zombie
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.5)
    assert not _alive(pid), f"process {pid} still running"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _zombies():
        time.sleep(0.1)
    assert _zombies() == []
    done = rows(
        e,
        "SELECT status, execution_type, records_loaded, parameters FROM pipeline_executions "
        "WHERE pipeline_name = 'vendor_prices' AND status <> 'running' ORDER BY started_at DESC",
    )
    assert len(done) == 3, done
    assert rows(e, "SELECT status FROM pipeline_executions WHERE id = :i", i=run_id) == [
        ("completed_with_warnings",)
    ]
    status, kind, loaded, params = done[0]
    assert (status, kind, loaded) == ("completed_with_warnings", "manual", 9)
    assert as_json(params) == {"feed": "./data/vendor_prices.csv"}
    assert [o for *_, o in audit(console, "pipeline.run")] == ["failed", "ok"]
    # the good run resolved the failure's alert by itself
    assert (
        rows(e, "SELECT status, resolved_by FROM alert_instances WHERE rule_name = 'run-failed'")[0][0]
        == "resolved"
    )


def test_an_engineer_handles_alerts(console: Console, golden: Any) -> None:
    e = console.engine
    posts = len(golden.receiver.posts)
    at = app(console, "data_engineer")
    at.switch_page("app_pages/alerts.py").run()
    clean(at)
    active = frame(at, "rule")
    assert sorted(active["rule"]) == ["quarantine-high", "run-failed"]
    failed_id = scalar(e, "SELECT id FROM alert_instances WHERE rule_name = 'run-failed'")
    at.selectbox(key="alert_pick").set_value(failed_id).run()
    at.button(key="ack").click().run()
    clean(at)
    assert at.success[0].value == f"alert {failed_id} acknowledged"
    assert rows(e, "SELECT status, acknowledged_by FROM alert_instances WHERE id = :i", i=failed_id) == [
        ("acknowledged", "engineer")
    ]
    at.button(key="resolve").click().run()
    assert rows(e, "SELECT status, resolved_by FROM alert_instances WHERE id = :i", i=failed_id) == [
        ("resolved", "engineer")
    ]
    assert at.success[0].value == f"alert {failed_id} resolved; 1 message(s) sent"
    assert len(golden.receiver.posts) == posts + 1
    assert "RESOLVED" in golden.receiver.posts[-1][1]["title"].upper()

    at.text_input(key="silence_pipeline").input("flights_*")
    at.text_input(key="silence_reason").input("backfill")
    at.button(key="silence_submit").click().run()
    clean(at)
    assert [
        (as_json(m), r, b) for m, r, b in rows(e, "SELECT matchers, reason, created_by FROM alert_silences")
    ] == [({"pipeline": "flights_*"}, "backfill", "engineer")]
    metric = {m.label: m.value for m in at.metric}
    assert metric["MTTA"] != "—" and metric["MTTR"] != "—"
    assert [o for *_, o in audit(console, "alert.ack")] == ["ok"]
    assert [o for *_, o in audit(console, "alert.resolve")] == ["ok"]
    assert [o for *_, o in audit(console, "alert.silence")] == ["ok"]


def test_an_admin_manages_users_and_reads_the_audit_log(console: Console) -> None:
    e = console.engine
    at = app(console, "system_admin")
    at.switch_page("app_pages/admin.py").run()
    clean(at)
    assert at.title[0].value == "Administration"
    assert sorted(frame(at, "user")["user"]) == ["admin", "analyst", "engineer"]
    at.text_input(key="new_user").input("dana")
    at.selectbox(key="new_role").set_value("data_engineer")
    at.text_input(key="new_password").input("a long pass phrase")
    at.button(key="add_user_submit").click().run()
    clean(at)
    assert rows(e, "SELECT role, is_active FROM console_users WHERE username = 'dana'") == [
        ("data_engineer", True)
    ]
    at.selectbox(key="change_user").set_value("engineer").run()  # the form starts from their role
    assert at.selectbox(key="change_role").value == "data_engineer"
    at.selectbox(key="change_role").set_value("data_analyst")
    at.button(key="set_role_submit").click().run()
    assert scalar(e, "SELECT role FROM console_users WHERE username = 'engineer'") == "data_analyst"
    # the engineer's open session now has the analyst's rights
    engineer = app(console, "data_engineer")
    engineer.switch_page("app_pages/pipelines.py").run()
    assert engineer.button(key="run_now").help.endswith("you are data_analyst.")

    at.radio(key="admin_section").set_value("Audit log").run()
    clean(at)
    log = frame(at, "outcome")
    assert {"users.manage"} <= set(log["action"])
    assert len(log) == scalar(e, "SELECT count(*) FROM audit_log")


def test_sign_out_ends_the_session(console: Console) -> None:
    at = app(console, "data_analyst")
    at.button(key="sign_out").click().run()
    assert at.title[0].value.endswith("Headwater")
    assert "You signed out" in at.info[0].value
    assert (
        scalar(
            console.engine,
            "SELECT end_reason FROM console_sessions s JOIN console_users u ON u.id = s.user_id "
            "WHERE u.username = 'analyst'",
        )
        == "logout"
    )
    at.session_state["hw_token"] = console.tokens["data_analyst"]  # replaying the old token does not work
    at.run()
    assert at.title[0].value.endswith("Headwater")
