"""The alert engine against real receivers (marker-free: local SMTP + HTTP servers in-process,
SQLite store per test)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from headwater.alerting import AlertEngine, AlertRules, AppriseDeliverer, Channels, DeliveryFailed, RunFacts
from headwater.alerting.engine import MttaMttr
from headwater.errors import NotificationError
from tests.alerting.conftest import Mailbox, Webhook, free_port

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # a Friday
SECRET = "hunter2-very-secret"


def failed_run(run_id: str = "run-1", pipeline: str = "flights_daily", **kw: Any) -> RunFacts:
    values: dict[str, Any] = {
        "pipeline": pipeline,
        "run_id": run_id,
        "status": "failed",
        "error_type": "PermanentError",
        "error_message": f"could not connect to postgresql://loader:{SECRET}@db:5432/wh",
        "failed_step": "load_flights",
        "duration_seconds": 42.5,
        "quality_score": 82.0,
        "failed_rules": {"dep_delay_not_null": 17},
        "records_loaded": 1200,
        "records_quarantined": 17,
        "links": {
            "prefect_run_url": f"http://prefect.local/runs/flow-run/{run_id}",
            "console_url": f"http://console.local/runs?run={run_id}",
        },
        "top_hint": "check the warehouse credentials block",
    }
    values.update(kw)
    return RunFacts(**values)


def ok_run(run_id: str, pipeline: str = "flights_daily") -> RunFacts:
    return RunFacts(
        pipeline=pipeline, run_id=run_id, status="completed", duration_seconds=30.0, quality_score=100.0
    )


def make_engine(
    store_engine: sa.Engine,
    channels: dict[str, Any],
    rules: list[dict[str, Any]],
    severity_channels: dict[str, list[str]],
    sleeps: list[float] | None = None,
) -> AlertEngine:
    chans = Channels.model_validate({"channels": channels})
    alert_rules = AlertRules.model_validate({"severity_channels": severity_channels, "rules": rules})
    deliver = AppriseDeliverer(
        attempts=3, backoff_seconds=1.0, sleep=(sleeps if sleeps is not None else []).append
    )
    return AlertEngine(store_engine, chans, alert_rules, deliver=deliver, secrets=[SECRET])


FAILED = {"name": "run-failed", "severity": "critical", "when": {"run_failed": True}}
ESCALATING = {**FAILED, "escalation": {"after_minutes": 15, "levels": [["pager"]]}}


@pytest.fixture
def basic(store_engine: sa.Engine, mailbox: Mailbox, webhook: Webhook) -> AlertEngine:
    return make_engine(
        store_engine,
        {
            "email": {"url": mailbox.url()},
            "hook": {"url": webhook.url()},
            "pager": {"url": webhook.url("pager")},
        },
        [ESCALATING, {"name": "low-quality", "severity": "critical", "when": {"quality_score_below": 90}}],
        {"critical": ["email", "hook"]},
    )


def test_failure_sends_exactly_one_email_and_one_json_post_with_the_facts(
    basic: AlertEngine, mailbox: Mailbox, webhook: Webhook
) -> None:
    sent = basic.process_run(failed_run(), T0)

    assert [(d.channel, d.status) for d in sent] == [("email", "sent"), ("hook", "sent")]
    assert len(mailbox.messages) == 1 and len(webhook.posts) == 1
    subject = mailbox.messages[0]["Subject"]
    body = Mailbox.text(mailbox.messages[0])
    assert "flights_daily" in subject and "run-1" in subject and "CRITICAL" in subject
    for text in (body, webhook.at("hook")[0]["message"]):
        assert "Pipeline flights_daily, run run-1 (failed)" in text
        assert "run-failed: run failed in step load_flights" in text
        assert "low-quality: quality score 82 is below 90" in text  # both conditions, one message
        assert "PermanentError" in text
        assert "duration 42.5 s, rows loaded 1200, rows quarantined 17, quality score 82" in text
        assert "dep_delay_not_null (17 rows)" in text
        assert "Prefect run: http://prefect.local/runs/flow-run/run-1" in text
        assert "Console: http://console.local/runs?run=run-1" in text
        assert "Try first: check the warehouse credentials block" in text
        assert SECRET not in text
    assert webhook.at("hook")[0]["title"] == subject
    assert [i["status"] for i in basic.history()] == ["open", "open"]


def test_second_failure_of_the_same_kind_while_open_sends_nothing(
    basic: AlertEngine, mailbox: Mailbox, webhook: Webhook
) -> None:
    basic.process_run(failed_run("run-1"), T0)
    assert basic.process_run(failed_run("run-2"), T0 + timedelta(minutes=5)) == []

    assert len(mailbox.messages) == 1 and len(webhook.posts) == 1
    instances = basic.history()
    assert len(instances) == 2
    assert {(i["occurrences"], i["first_run_id"], i["last_run_id"]) for i in instances} == {
        (2, "run-1", "run-2")
    }


def test_unacknowledged_alert_escalates_to_the_next_level_every_n_minutes(
    basic: AlertEngine, webhook: Webhook
) -> None:
    basic.process_run(failed_run(), T0)
    assert basic.tick(T0 + timedelta(minutes=14)) == []
    assert webhook.at("pager") == []

    escalated = basic.tick(T0 + timedelta(minutes=15))
    assert [(d.channel, d.kind) for d in escalated] == [("pager", "escalation")]
    assert len(webhook.at("pager")) == 1
    assert "ESCALATED CRITICAL" in webhook.at("pager")[0]["title"]
    assert basic.tick(T0 + timedelta(minutes=20)) == []
    basic.tick(T0 + timedelta(minutes=30))  # the last level repeats
    assert len(webhook.at("pager")) == 2


def test_acknowledged_alert_does_not_escalate(basic: AlertEngine, webhook: Webhook) -> None:
    basic.process_run(failed_run(), T0)
    run_failed = next(i for i in basic.history() if i["rule_name"] == "run-failed")
    basic.ack(run_failed["id"], "alice", T0 + timedelta(minutes=3))

    basic.tick(T0 + timedelta(minutes=60))
    assert webhook.at("pager") == []
    acked = next(i for i in basic.history() if i["id"] == run_failed["id"])
    assert (acked["status"], acked["acknowledged_by"], acked["level"]) == ("acknowledged", "alice", 0)


def test_next_success_resolves_and_sends_resolved(
    basic: AlertEngine, mailbox: Mailbox, webhook: Webhook
) -> None:
    basic.process_run(failed_run(), T0)
    sent = basic.process_run(ok_run("run-2"), T0 + timedelta(minutes=40))

    assert [(d.channel, d.kind, d.status) for d in sent] == [
        ("email", "resolved", "sent"),
        ("hook", "resolved", "sent"),
    ]
    assert len(mailbox.messages) == 2
    assert mailbox.messages[1]["Subject"] == "[RESOLVED] flights_daily: run-failed, low-quality"
    assert "resolved by run run-2 (completed)" in webhook.at("hook")[1]["message"]
    assert {i["status"] for i in basic.history()} == {"resolved"}
    assert basic.tick(T0 + timedelta(hours=5)) == []  # resolved: no escalation


def test_silence_holds_back_what_it_covers_and_nothing_else(basic: AlertEngine, webhook: Webhook) -> None:
    basic.silence(
        {"pipeline": "flights_*"}, until=T0 + timedelta(hours=1), by="bob", now=T0, reason="migration"
    )

    held = basic.process_run(failed_run("run-1"), T0 + timedelta(minutes=1))
    other = basic.process_run(failed_run("run-9", pipeline="claims"), T0 + timedelta(minutes=1))

    assert {(d.channel, d.status, d.reason) for d in held} == {
        ("email", "suppressed", "silenced"),
        ("hook", "suppressed", "silenced"),
    }
    assert [d.status for d in other] == ["sent", "sent"]
    assert [p["title"] for p in webhook.at("hook")] == [other[1].title]
    assert {i["pipeline_name"]: i["status"] for i in basic.history()} == {
        "flights_daily": "suppressed",
        "claims": "open",
    }

    basic.tick(T0 + timedelta(minutes=30))  # still silenced: no escalation either
    assert all("flights_daily" not in body["title"] for _, body in webhook.posts)

    released = basic.tick(T0 + timedelta(hours=1))  # the silence expired: the alert goes out now
    assert {(d.channel, d.kind, d.status) for d in released if "flights_daily" in d.title} == {
        ("email", "alert", "sent"),
        ("hook", "alert", "sent"),
    }
    assert any("flights_daily" in p["title"] for p in webhook.at("hook"))


def test_quiet_hours_hold_the_covered_channel_only_and_release_afterwards(
    store_engine: sa.Engine, mailbox: Mailbox, webhook: Webhook
) -> None:
    quiet = {"timezone": "UTC", "start": "22:00", "end": "07:00"}
    engine = make_engine(
        store_engine,
        {"email": {"url": mailbox.url(), "quiet_hours": quiet}, "hook": {"url": webhook.url()}},
        [FAILED],
        {"critical": ["email", "hook"]},
    )
    night = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)
    sent = engine.process_run(failed_run(), night)

    assert {(d.channel, d.status, d.reason) for d in sent} == {
        ("email", "held", "quiet hours"),
        ("hook", "sent", None),
    }
    assert mailbox.messages == [] and len(webhook.posts) == 1
    assert engine.tick(night + timedelta(hours=3)) == []  # 02:30: still quiet

    released = engine.tick(datetime(2026, 11, 21, 7, 0, tzinfo=UTC))
    assert [(d.channel, d.status) for d in released] == [("email", "sent")]
    assert len(mailbox.messages) == 1 and "run-1" in mailbox.messages[0]["Subject"]


def test_held_alert_is_superseded_when_resolved_before_quiet_hours_end(
    store_engine: sa.Engine, mailbox: Mailbox, webhook: Webhook
) -> None:
    quiet = {"timezone": "UTC", "start": "22:00", "end": "07:00"}
    engine = make_engine(
        store_engine,
        {"email": {"url": mailbox.url(), "quiet_hours": quiet}},
        [FAILED],
        {"critical": ["email"]},
    )
    engine.process_run(failed_run(), datetime(2026, 11, 20, 23, 0, tzinfo=UTC))
    engine.process_run(ok_run("run-2"), datetime(2026, 11, 21, 1, 0, tzinfo=UTC))
    released = engine.tick(datetime(2026, 11, 21, 8, 0, tzinfo=UTC))

    assert sorted(d.status for d in released) == ["superseded", "superseded"]
    assert mailbox.messages == []
    assert len(engine.deliveries()) == 2  # recorded, not lost


def test_refused_delivery_is_recorded_retried_and_raises(store_engine: sa.Engine, mailbox: Mailbox) -> None:
    sleeps: list[float] = []
    closed = f"json://127.0.0.1:{free_port()}/nobody"
    engine = make_engine(
        store_engine,
        {"email": {"url": mailbox.url()}, "dead": {"url": closed}},
        [FAILED],
        {"critical": ["dead", "email"]},
        sleeps,
    )
    with pytest.raises(DeliveryFailed) as info:
        engine.process_run(failed_run(), T0)

    assert isinstance(info.value, NotificationError)
    assert info.value.channel == "dead" and info.value.attempts == 3
    assert sleeps == [1.0, 2.0]  # backoff doubles between attempts
    assert len(mailbox.messages) == 1  # the other channel still got it
    recorded = {d.channel: (d.status, d.attempts) for d in engine.deliveries()}
    assert recorded == {"dead": ("failed", 3), "email": ("sent", 1)}
    assert engine.history()[0]["status"] == "open"


def test_mtta_and_mttr_are_exact(basic: AlertEngine) -> None:
    basic.process_run(failed_run("run-1", pipeline="a"), T0)
    basic.process_run(failed_run("run-2", pipeline="b", quality_score=100.0), T0 + timedelta(minutes=10))
    a = next(i for i in basic.history("a") if i["rule_name"] == "run-failed")
    b = basic.history("b")[0]
    basic.ack(a["id"], "alice", T0 + timedelta(minutes=4))
    basic.ack(b["id"], "bob", T0 + timedelta(minutes=10, seconds=90))
    basic.resolve(a["id"], "alice", T0 + timedelta(minutes=30))
    basic.process_run(ok_run("run-3", pipeline="b"), T0 + timedelta(minutes=70))

    result = basic.mtta_mttr(pipeline=None)
    # acknowledged: a after 4 min, b after 90 s; resolved: a by hand after 30 min, b by run-3 after 60 min;
    # a's low-quality alert stays open and unacknowledged, so it counts in neither
    assert result == MttaMttr(mtta_seconds=165.0, mttr_seconds=2700.0, acknowledged=2, resolved=2)
    assert basic.mtta_mttr(pipeline="b") == MttaMttr(90.0, 3600.0, 1, 1)


def test_maintenance_window_holds_its_channel_and_manual_resolve_tells_who_was_told(
    store_engine: sa.Engine, mailbox: Mailbox, webhook: Webhook
) -> None:
    window = {"start": T0.isoformat(), "end": (T0 + timedelta(hours=2)).isoformat(), "reason": "upgrade"}
    engine = make_engine(
        store_engine,
        {"email": {"url": mailbox.url()}, "hook": {"url": webhook.url(), "maintenance": [window]}},
        [FAILED],
        {"critical": ["email", "hook"]},
    )
    sent = engine.process_run(failed_run(), T0 + timedelta(minutes=5))
    assert {(d.channel, d.status, d.reason) for d in sent} == {
        ("email", "sent", None),
        ("hook", "held", "maintenance: upgrade"),
    }
    released = engine.tick(T0 + timedelta(hours=2))
    assert [(d.channel, d.status) for d in released] == [("hook", "sent")]
    assert len(webhook.posts) == 1

    instance = engine.history()[0]["id"]
    resolved = engine.resolve(instance, "carol", T0 + timedelta(hours=3))
    assert [(d.channel, d.kind) for d in resolved] == [("email", "resolved"), ("hook", "resolved")]
    assert "resolved by carol" in webhook.posts[-1][1]["message"]
    assert engine.resolve(instance, "carol", T0 + timedelta(hours=4)) == []  # already resolved
