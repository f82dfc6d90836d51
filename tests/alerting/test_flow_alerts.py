"""Acceptance, through the real flow: a failed run produces exactly one email at the local SMTP
server and one JSON post at the local webhook, with the pipeline, run, error and links; a second
failure while the alert is open sends nothing new; the next success resolves it and says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.cli import main
from headwater.settings import Settings
from headwater.store import Store
from tests.alerting.conftest import Mailbox, Webhook
from tests.conftest import run_flow

pytestmark = pytest.mark.prefect

SPEC = """\
name: vendors_alerting
sources:
  feed: {{kind: file, path: data/vendor_prices.csv, columns: {{price: string}}}}
steps:
  - {{name: extract_feed, type: extract, source: feed}}
  - name: price
    type: transform
    depends_on: [extract_feed]
    ops:
      - derive: {{price_value: "{expr}"}}
  - name: load_vendors
    type: load
    depends_on: [price]
    destination: {{table: vendors_alerting, mode: overwrite}}
"""


def configure(folder: Path, mailbox: Mailbox, webhook: Webhook) -> None:
    folder.mkdir()
    (folder / "channels.yaml").write_text(
        f"channels:\n  oncall-email: {{url: '{mailbox.url()}'}}\n  ops-webhook: {{url: '{webhook.url()}'}}\n"
        "delivery: {attempts: 1, backoff_seconds: 0.1}\n"
    )
    (folder / "rules.yaml").write_text(
        "severity_channels: {critical: [oncall-email, ops-webhook]}\n"
        "rules:\n  - {name: run-failed, severity: critical, when: {run_failed: true}}\n"
    )


def test_failure_alerts_once_and_success_resolves(
    hw_env: Settings,
    spec_dir: Path,
    prefect_api: str,
    mailbox: Mailbox,
    webhook: Webhook,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(tmp_path / "alerts", mailbox, webhook)
    monkeypatch.setenv("HEADWATER_ALERTS", str(tmp_path / "alerts"))
    monkeypatch.setenv("HEADWATER_CONSOLE_URL", "http://console.example:8501")
    spec = spec_dir / "vendors_alerting.yaml"
    spec.write_text(SPEC.format(expr="CAST(price AS DOUBLE)"))  # "£1,200.50" does not cast: fails

    first = run_flow("vendors_alerting", spec_dir)
    assert first["status"] == "failed"
    assert len(mailbox.messages) == 1 and len(webhook.at("hook")) == 1
    mail = mailbox.messages[0]
    text = Mailbox.text(mail)
    assert "vendors_alerting" in str(mail["Subject"])
    for expected in (
        "vendors_alerting",
        first["run_id"],
        "price",
        "conversion from `str` to `f64` failed",
        f"http://console.example:8501/run?id={first['run_id']}",
    ):
        assert expected in text, expected
    post = webhook.at("hook")[0]
    assert first["run_id"] in post["message"] and "vendors_alerting" in post["title"]

    second = run_flow("vendors_alerting", spec_dir)
    assert second["status"] == "failed"
    assert len(mailbox.messages) == 1 and len(webhook.at("hook")) == 1  # still open: nothing new

    assert main(["alerts", "list"]) == 0
    listed = capsys.readouterr().out
    assert "vendors_alerting" in listed and "run-failed" in listed and " open " in listed
    alert_id = int(listed.splitlines()[2].split()[0])
    assert main(["alerts", "ack", str(alert_id), "--by", "tester"]) == 0
    assert "acknowledged by tester" in capsys.readouterr().out

    spec.write_text(SPEC.format(expr="LENGTH(price)"))
    third = run_flow("vendors_alerting", spec_dir)
    assert third["status"] == "completed"
    assert len(mailbox.messages) == 2 and len(webhook.at("hook")) == 2
    assert "RESOLVED" in str(mailbox.messages[1]["Subject"]).upper()
    assert "RESOLVED" in webhook.at("hook")[1]["title"].upper()
    assert Store(hw_env.database_url).run(third["run_id"])["status"] == "completed"  # type: ignore[index]
    assert main(["alerts", "history"]) == 0
    history = capsys.readouterr().out
    assert "resolved" in history and "(1 acknowledged)" in history and "(1 resolved)" in history


OWNED = """\
name: vendors_owned
owner: wedding-data
alerts: {owner: pricing-team, channels: [ops-webhook], on: [failure, success]}
sources:
  feed: {kind: file, path: data/vendor_prices.csv}
steps:
  - {name: extract_feed, type: extract, source: feed}
  - name: load_vendors
    type: load
    depends_on: [extract_feed]
    destination: {table: vendors_owned, mode: overwrite}
  - name: tell_sales
    type: notify
    depends_on: [load_vendors]
    message: "{pipeline} loaded {rows} rows (run {run_id})"
    channels: [oncall-email]
"""


def test_the_specs_alerts_and_notify_steps_deliver(
    hw_env: Settings,
    spec_dir: Path,
    prefect_api: str,
    mailbox: Mailbox,
    webhook: Webhook,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The spec's `alerts:` adds this pipeline's own rules (owner, channels, outcomes) to rules.yaml's;
    a notify step sends its message to the channels it names."""
    configure(tmp_path / "alerts", mailbox, webhook)
    monkeypatch.setenv("HEADWATER_ALERTS", str(tmp_path / "alerts"))
    (spec_dir / "vendors_owned.yaml").write_text(OWNED)

    result = run_flow("vendors_owned", spec_dir)
    assert result["status"] == "completed"
    # the notify step: one email, the message with its placeholders filled in
    (mail,) = mailbox.messages
    assert f"vendors_owned loaded 12 rows (run {result['run_id']})" in Mailbox.text(mail)
    # the spec's on-success rule: info, to the spec's channel only, naming the owner
    (post,) = webhook.at("hook")
    assert "[INFO] vendors_owned" in post["title"]
    assert "vendors_owned.on-success" in post["message"] and "Owner: pricing-team" in post["message"]
    store = Store(hw_env.database_url)
    with store.engine.connect() as conn:
        rules = [r[0] for r in conn.exec_driver_sql("SELECT rule_name FROM alert_instances")]
    store.dispose()
    assert rules == ["vendors_owned.on-success"]
