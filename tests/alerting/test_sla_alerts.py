"""SLA alerts through the alert engine to a real receiver (a local HTTP server taking apprise's json://
posts): a projected miss before the deadline, a missing run at the deadline and not a second before,
each raised once over repeated sweeps, resolved by the run that succeeds. Time is injected; stores:
SQLite and the real PostgreSQL (store_engine)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from headwater.alerting import AlertEngine, AlertRules, Channels, RunFacts
from headwater.alerting.engine import history
from headwater.alerting.sla import check_slas
from headwater.settings import Settings
from headwater.spec.models import PipelineSpec
from tests.alerting.conftest import Webhook
from tests.sla_history import add_pipeline, add_run, at, set_finished

DURATIONS = [10, 15, 20, 15, 25]  # minutes, 15-19 Nov: the 90th percentile (next higher) is 25 min


def spec(**sla: Any) -> PipelineSpec:
    return PipelineSpec.model_validate(
        {
            "name": "daily",
            "owner": "analytics",
            "sources": {"s": {"kind": "file", "path": "x.csv"}},
            "steps": [{"name": "e", "type": "extract", "source": "s"}],
            "alerts": {"channels": ["team"]},
            "sla": {"deadline": "07:30", "timezone": "Europe/London", **sla},
        }
    )


@pytest.fixture
def settings(tmp_path: Path, webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> Settings:
    folder = tmp_path / "alerts"
    folder.mkdir()
    channels = {name: {"url": webhook.url(name)} for name in ("team", "oncall", "pager")}
    (folder / "channels.yaml").write_text(
        yaml.safe_dump({"channels": channels, "delivery": {"attempts": 1, "backoff_seconds": 0}})
    )
    rules = {
        "severity_channels": {"critical": ["oncall"], "warning": ["oncall"]},
        "rules": [
            {"name": "run-failed", "severity": "critical", "when": {"run_failed": True}},
            {
                "name": "sla-pager",
                "severity": "critical",
                "when": {"sla_missed_run": True},
                "channels": ["pager"],
            },
        ],
    }
    (folder / "rules.yaml").write_text(yaml.safe_dump(rules))
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HEADWATER_ALERTS", str(folder))
    return Settings.from_env()


@pytest.fixture
def daily(store_engine: sa.Engine) -> int:
    pid = add_pipeline(store_engine, "daily")
    for i, minutes in enumerate(DURATIONS):
        start = at(f"2026-11-{15 + i} 06:00")
        add_run(
            store_engine, pid, "daily", f"r{15 + i}", "completed", start, start + timedelta(minutes=minutes)
        )
    return pid


def sweep(settings: Settings, engine: sa.Engine, when: str, **sla: Any) -> list[tuple[str, str, str]]:
    sent = check_slas(settings, engine, [spec(**sla)], at(when))
    return [(d.channel, d.kind, d.status) for d in sent]


def open_rules(engine: sa.Engine) -> dict[str, int]:
    return {
        i["rule_name"]: i["occurrences"]
        for i in history(engine)
        if i["status"] in ("open", "acknowledged", "suppressed")
    }


def test_a_slow_run_alerts_before_the_deadline_then_at_it_once_each_and_resolves_when_it_succeeds(
    settings: Settings, store_engine: sa.Engine, daily: int, webhook: Webhook
) -> None:
    add_run(store_engine, daily, "daily", "r20", "running", at("2026-11-20 06:50"), None)

    # expected to finish at 06:50 + 25 min = 07:15: nothing yet
    assert sweep(settings, store_engine, "2026-11-20 07:10") == []
    assert sweep(settings, store_engine, "2026-11-20 07:15") == []
    # past its expected duration: assumed to need a fresh 25 min, 07:40:01 > 07:30 -> at risk, 29 min early
    assert sweep(settings, store_engine, "2026-11-20 07:15:01") == [("team", "alert", "sent")]
    [post] = webhook.at("team")
    assert post["title"].startswith(
        "[WARNING] daily: SLA deadline at risk: projected to finish at Fri 2026-11-20 07:40 GMT, after"
    )
    assert "Owner: analytics" in post["message"]
    assert (
        "daily.sla-projected-miss: SLA deadline at risk: projected to finish at Fri 2026-11-20 07:40 GMT, "
        "after the 07:30 deadline (run r20 started Fri 2026-11-20 06:50 GMT and has outrun its expected "
        "25 min; expected duration 25 min)"
    ) in post["message"]

    for when in ("07:20", "07:25", "07:29:59"):  # raised once: later sweeps send nothing
        assert sweep(settings, store_engine, f"2026-11-20 {when}") == []
    assert open_rules(store_engine) == {"daily.sla-projected-miss": 4}

    # the deadline passes with the run still going: missed, to the spec's channel and rules.yaml's pager
    assert sorted(sweep(settings, store_engine, "2026-11-20 07:30")) == [
        ("pager", "alert", "sent"),
        ("team", "alert", "sent"),
    ]
    missed = webhook.at("team")[1]
    assert missed["title"].startswith(
        "[CRITICAL] daily: SLA deadline missed: no successful run by the deadline, Fri"
    )
    assert len(webhook.at("pager")) == 1
    assert sweep(settings, store_engine, "2026-11-20 07:31") == []
    assert open_rules(store_engine) == {
        "daily.sla-projected-miss": 6,
        "daily.sla-missed-run": 2,
        "sla-pager": 2,
    }

    set_finished(store_engine, "r20", "completed", at("2026-11-20 07:40"))
    resolved = sweep(settings, store_engine, "2026-11-20 07:41")
    assert sorted(resolved) == [("pager", "resolved", "sent"), ("team", "resolved", "sent")]
    assert open_rules(store_engine) == {}
    assert {(i["resolved_by"], i["resolved_run_id"]) for i in history(store_engine)} == {("run r20", "r20")}
    assert "daily: resolved by run r20 (completed)" in webhook.at("team")[2]["message"]
    assert (
        webhook.at("team")[2]["title"] == "[RESOLVED] daily: daily.sla-projected-miss, daily.sla-missed-run"
    )
    assert sweep(settings, store_engine, "2026-11-20 07:45") == []
    assert len(webhook.at("team")) == 3 and len(webhook.at("oncall")) == 0


def test_no_run_at_all_alerts_at_the_deadline_and_not_before(
    settings: Settings, store_engine: sa.Engine, daily: int, webhook: Webhook
) -> None:
    # an alert of another kind stays as it is: the sweep evaluates SLA rules only
    other = AlertEngine(
        store_engine,
        Channels.model_validate({"channels": {}}),
        AlertRules.model_validate({"rules": [{"name": "run-failed", "when": {"run_failed": True}}]}),
    )
    other.process_run(RunFacts(pipeline="daily", run_id="r19x", status="failed"), at("2026-11-20 06:00"))

    # no run started: now + 25 min passes 07:30 from 07:05 on
    assert sweep(settings, store_engine, "2026-11-20 07:05") == []
    assert sweep(settings, store_engine, "2026-11-20 07:05:01") == [("team", "alert", "sent")]
    assert "(no run has started; expected duration 25 min)" in webhook.at("team")[0]["message"]
    assert sweep(settings, store_engine, "2026-11-20 07:29:59") == []
    assert "daily.sla-missed-run" not in open_rules(store_engine)

    assert sorted(sweep(settings, store_engine, "2026-11-20 07:30")) == [
        ("pager", "alert", "sent"),
        ("team", "alert", "sent"),
    ]
    assert (
        webhook.at("team")[1]["message"].count(
            "SLA deadline missed: no successful run by the deadline, Fri 2026-11-20 07:30 GMT, "
            "nor since: the last one finished Thu 2026-11-19 06:25 GMT"
        )
        == 1
    )
    # the next day, still nothing: the same incident (no new message), until a run succeeds
    assert sweep(settings, store_engine, "2026-11-21 07:30") == []
    assert open_rules(store_engine) == {
        "run-failed": 1,
        "daily.sla-projected-miss": 4,
        "daily.sla-missed-run": 2,
        "sla-pager": 2,
    }
    add_run(store_engine, daily, "daily", "r21", "completed", at("2026-11-21 09:00"), at("2026-11-21 09:20"))
    assert sorted(sweep(settings, store_engine, "2026-11-21 09:21")) == [
        ("pager", "resolved", "sent"),
        ("team", "resolved", "sent"),
    ]
    assert open_rules(store_engine) == {"run-failed": 1}


def test_breaches_raise_once_and_resolve(
    settings: Settings, store_engine: sa.Engine, daily: int, webhook: Webhook
) -> None:
    sla = {"deadline": None, "freshness": "26h", "max_duration": "20m"}
    # the last run (19 Nov) took 25 min: over 20; its success ended 19 Nov 06:25
    assert sweep(settings, store_engine, "2026-11-20 05:00", **sla) == [("team", "alert", "sent")]
    assert "SLA max duration: run r19 took 25 min (limit 20 min)" in webhook.at("team")[0]["message"]
    assert sweep(settings, store_engine, "2026-11-20 08:25", **sla) == []  # 26 h exactly: still fresh
    assert sweep(settings, store_engine, "2026-11-20 08:25:01", **sla) == [("team", "alert", "sent")]
    assert "SLA freshness: the last successful run finished 26 h ago" in webhook.at("team")[1]["message"]
    assert sweep(settings, store_engine, "2026-11-20 08:30", **sla) == []
    assert open_rules(store_engine) == {"daily.sla-breach-max-duration": 4, "daily.sla-breach-freshness": 2}

    add_run(store_engine, daily, "daily", "r20", "completed", at("2026-11-20 09:00"), at("2026-11-20 09:12"))
    assert sweep(settings, store_engine, "2026-11-20 09:13", **sla) == [("team", "resolved", "sent")]
    assert open_rules(store_engine) == {}


def test_after_a_run_its_sla_is_checked_with_the_run_rules(
    settings: Settings, store_engine: sa.Engine, daily: int, webhook: Webhook
) -> None:
    from headwater.alerting.after_run import alert_on
    from headwater.pipeline.outcome import RunOutcome
    from headwater.sla import resolved
    from headwater.store import Store
    from headwater.store.store import RunSummary

    store = Store(str(store_engine.url), engine=store_engine)
    pipeline = spec(deadline=None, max_duration="20m")

    def finish(run_id: str, minutes: int) -> list[tuple[str, str, str]]:
        end = datetime.now(UTC)
        add_run(store_engine, daily, "daily", run_id, "completed", end - timedelta(minutes=minutes), end)
        outcome = RunOutcome(
            run_id=run_id,
            pipeline="daily",
            execution_type="scheduled",
            summary=RunSummary(status="completed"),
            duration_seconds=minutes * 60.0,
            alerts=pipeline.alerts,
            sla=resolved(pipeline),
        )
        sent = alert_on(outcome, settings, store, secrets=set(), links={})
        return [(d.channel, d.kind, d.status) for d in sent]

    assert finish("slow", 30) == [("team", "alert", "sent")]
    assert "SLA max duration: run slow took 30 min (limit 20 min)" in webhook.at("team")[0]["message"]
    assert open_rules(store_engine) == {"daily.sla-breach-max-duration": 1}
    assert finish("quick", 5) == [("team", "resolved", "sent")]
    assert open_rules(store_engine) == {}


def test_the_supervisor_checks_slas_once_per_incident_and_logs_what_fails(
    settings: Settings,
    store_engine: sa.Engine,
    daily: int,
    webhook: Webhook,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from headwater.services import Supervisor, UpConfig
    from headwater.store import Store

    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "daily.yaml").write_text(
        "name: daily\nsources: {s: {kind: file, path: x.csv}}\nsteps: [{name: e, type: extract, source: s}]\n"
        "alerts: {channels: [team]}\nsla: {freshness: 1h}\n"
    )
    supervisor = Supervisor(settings, UpConfig(pipelines_dir=folder))
    supervisor.store = Store(str(store_engine.url), engine=store_engine)

    supervisor.sla_sweep()  # the last success ended 19 Nov: stale now
    supervisor.sla_sweep()
    assert len(webhook.at("team")) == 1
    assert "SLA freshness: the last successful run finished" in webhook.at("team")[0]["message"]
    assert open_rules(store_engine) == {"daily.sla-breach-freshness": 2}

    supervisor.store = Store(f"sqlite:///{tmp_path}/missing/dir/s.db")  # a store it cannot open
    supervisor.sla_sweep()
    assert "could not check SLAs" in caplog.text
