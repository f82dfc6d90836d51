"""Channel and rule configuration, conditions and quiet hours (no services needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from headwater.alerting import RunFacts, load_channels, load_rules
from headwater.alerting.conditions import AllOf, AnyOf
from headwater.alerting.config import AlertRule, Channels, QuietHours
from headwater.errors import SpecError
from headwater.store import Store
from headwater.store.tables import metadata

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_ENV = {
    k: "x"
    for k in [
        "SMTP_USER",
        "SMTP_PASSWORD",
        "SLACK_TOKEN_A",
        "SLACK_TOKEN_B",
        "SLACK_TOKEN_C",
        "PAGERDUTY_INTEGRATION_KEY",
        "PAGERDUTY_API_KEY",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_FROM",
        "ONCALL_PHONE",
    ]
}
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_example_config_loads_with_secrets_from_the_environment() -> None:
    env = {**EXAMPLE_ENV, "SMTP_PASSWORD": "s3cr3t-pw"}
    channels = load_channels(REPO / "alerts/channels.yaml", env)
    rules = load_rules(REPO / "alerts/rules.yaml", channels, env)
    assert "s3cr3t-pw@smtp.example.com" in channels.channels["oncall-email"].url
    assert "s3cr3t-pw" not in repr(channels)
    assert {r.name for r in rules.rules} >= {"run-failed", "quality-dropped", "flights-stale"}


def test_unknown_key_and_literal_password_are_spec_errors(tmp_path: Path) -> None:
    typo = write(tmp_path, "c.yaml", "channels:\n  a:\n    url: json://h/x\n    quiet_hour: {}\n")
    with pytest.raises(SpecError, match="unknown key 'quiet_hour'"):
        load_channels(typo, {})
    literal = write(
        tmp_path, "d.yaml", "channels:\n  a:\n    url: mailto://me:hunter22@smtp.x.org?to=a@b.c\n"
    )
    with pytest.raises(SpecError, match="literal password") as info:
        load_channels(literal, {})
    assert "hunter22" not in str(info.value)
    unset = write(tmp_path, "e.yaml", "channels:\n  a:\n    url: json://${HOOK_HOST}/x\n")
    with pytest.raises(SpecError, match="HOOK_HOST is not set"):
        load_channels(unset, {})


def test_rules_must_name_known_channels(tmp_path: Path) -> None:
    channels = Channels.model_validate({"channels": {"hook": {"url": "json://h/x"}}})
    rules = write(
        tmp_path,
        "r.yaml",
        "severity_channels: {critical: [hook, pager]}\nrules:\n  - {name: f, when: {run_failed: true}}\n",
    )
    with pytest.raises(SpecError, match="unknown channel 'pager'"):
        load_rules(rules, channels, {})


def test_conditions_combine_with_all_and_any() -> None:
    rule = AlertRule.model_validate(
        {
            "name": "r",
            "when": {
                "all": [
                    {"run_failed": True},
                    {"any": [{"quality_score_below": 90}, {"quarantine_rate_over": 0.1}]},
                ]
            },
        }
    )
    assert isinstance(rule.when, AllOf) and isinstance(rule.when.all[1], AnyOf)
    assert rule.when.key() == "all(run_failed,any(quality_score_below:90,quarantine_rate_over:0.1))"
    failed = RunFacts("p", "r1", "failed", quality_score=95.0, records_loaded=80, records_quarantined=20)
    assert rule.when.fired(failed, NOW) == [
        "run failed",
        "20 rows quarantined (20.0%, limit 10.0%)",
    ]
    assert rule.when.fired(RunFacts("p", "r2", "completed", quality_score=50.0), NOW) == []
    assert rule.when.fired(RunFacts("p", "r3", "failed", quality_score=95.0), NOW) == []


@pytest.mark.parametrize(
    ("when", "facts", "fired"),
    [
        ({"duration_over_seconds": 60}, {"duration_seconds": 61}, ["run took 61 s (limit 60 s)"]),
        ({"duration_over_seconds": 60}, {"duration_seconds": 60}, []),
        (
            {"quality_rule_failing": "id_unique"},
            {"failed_rules": {"id_unique": 3}},
            ["quality rule id_unique failed (3 rows)"],
        ),
        ({"quality_rule_failing": "id_unique"}, {"failed_rules": {"other": 3}}, []),
        (
            {"anomaly_detected": True},
            {"anomalies": ["row count 10x usual"]},
            ["anomaly: row count 10x usual"],
        ),
        ({"anomaly_detected": True}, {}, []),
        (
            {"table": "flights", "not_loaded_for_hours": 26},
            {"last_loaded": {"flights": NOW - timedelta(hours=27)}},
            ["table flights not loaded for 27.0 h (limit 26 h)"],
        ),
        (
            {"table": "flights", "not_loaded_for_hours": 26},
            {"last_loaded": {"flights": NOW - timedelta(hours=25)}},
            [],
        ),
    ],
)
def test_each_condition(when: dict[str, object], facts: dict[str, object], fired: list[str]) -> None:
    rule = AlertRule.model_validate({"name": "r", "when": when})
    assert rule.when.fired(RunFacts("p", "r1", "completed", **facts), NOW) == fired  # type: ignore[arg-type]


def test_quiet_hours_past_midnight_follow_the_days_they_begin_on() -> None:
    quiet = QuietHours.model_validate(
        {"timezone": "America/New_York", "start": "22:00", "end": "06:00", "days": ["fri"]}
    )
    # Friday 23:00 and Saturday 05:00 in New York are quiet; Saturday 23:00 and Friday 05:00 are not
    assert quiet.covers(datetime(2026, 11, 21, 4, 0, tzinfo=UTC))
    assert quiet.covers(datetime(2026, 11, 21, 10, 0, tzinfo=UTC))
    assert not quiet.covers(datetime(2026, 11, 22, 4, 0, tzinfo=UTC))
    assert not quiet.covers(datetime(2026, 11, 20, 10, 0, tzinfo=UTC))


def test_migration_creates_the_alerting_tables_as_declared(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/s.db").migrate()
    with store.engine.connect() as conn:
        names = set(sa.inspect(conn).get_table_names())
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    store.dispose()
    assert {"pipeline_alerts", "alert_instances", "alert_deliveries", "alert_silences"} <= names
    assert diff == []


@pytest.mark.postgres
def test_migration_on_postgres_matches_the_declared_tables(pg_url: str) -> None:
    store = Store(pg_url).migrate()
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    store.dispose()
    assert diff == []


def test_the_store_refuses_a_second_active_instance_of_a_fingerprint(tmp_path: Path) -> None:
    from headwater.store.tables import alert_instances

    store = Store(f"sqlite:///{tmp_path}/s.db").migrate()
    row = {
        "fingerprint": "f" * 64,
        "active_fingerprint": "f" * 64,
        "rule_name": "r",
        "pipeline_name": "p",
        "severity": "critical",
        "condition_key": "run_failed",
        "status": "open",
        "details": {},
        "first_run_id": "r1",
        "last_run_id": "r1",
        "occurrences": 1,
        "level": 0,
        "opened_at": NOW,
        "last_seen_at": NOW,
    }
    with store.engine.begin() as conn:
        conn.execute(sa.insert(alert_instances).values(row))
        conn.execute(
            sa.insert(alert_instances).values({**row, "active_fingerprint": None, "status": "resolved"})
        )
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(sa.insert(alert_instances).values(row))
    store.dispose()
