"""The command line as a new user found it: one clean summary per run (the traceback only with
--verbose), refused runs recorded, a wrong name named, the demo's salt kept for later runs, short run
ids, alerts that read without channels or secrets, audited CLI actions, one score scale, help for
every option, and a score that explains itself.

Real services: SQLite store and warehouse per test; the Prefect test harness where a run starts
(`headwater run` hands its API to the worker it starts)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from headwater.cli import build_parser, main
from headwater.settings import Settings
from headwater.store import Store
from tests.conftest import EXAMPLES

FAILING = """\
name: failing
sources:
  feed: {kind: file, path: feed.csv}
steps:
  - {name: extract, type: extract, source: feed}
  - name: shape
    type: transform
    depends_on: [extract]
    ops:
      - cast: {name: int}
  - {name: load, type: load, depends_on: [shape], destination: {table: failing, mode: append}}
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


@pytest.mark.prefect
def test_a_failed_run_prints_one_clean_summary_and_verbose_shows_the_traceback(
    hw_env: Settings, tmp_path: Path, prefect_api: str, capfd: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "specs"
    write(folder, "feed.csv", "id,name\n1,Ann\n2,Bo\n")
    write(folder, "failing.yaml", FAILING)

    assert main(["run", "failing", "--pipelines", str(folder)]) == 1
    out, err = capfd.readouterr()
    text = out + err
    assert "failing: failed  (run " in out
    assert "failed at step shape: PermanentError: step shape: InvalidOperationError" in out
    assert text.count("InvalidOperationError") == 1  # once: no echo as a warning, no Prefect log
    assert "Traceback" not in text and "warning:" not in text
    log = re.search(r"log: (\S+\.log)", out)
    assert log and "Traceback" in Path(log.group(1)).read_text()  # the details are kept

    assert main(["run", "failing", "--pipelines", str(folder), "--verbose"]) == 1
    out, err = capfd.readouterr()
    assert "Traceback" in out + err and "failing: failed  (run " in out
    runs = Store(hw_env.database_url).runs("failing")
    assert [r["status"] for r in runs] == ["failed", "failed"]


def test_a_wrong_name_is_named_even_when_another_spec_needs_an_unset_secret(
    hw_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "specs"
    write(folder, "feed.csv", "id\n1\n")
    write(
        folder,
        "secretive.yaml",
        "name: secretive\nsources:\n"
        "  api: {kind: rest, url: 'http://127.0.0.1:9/x', auth: {token: '${HW_UNSET_TOKEN}'}}\n"
        "steps:\n  - {name: extract, type: extract, source: api}\n",
    )
    write(folder, "broken.yaml", "name: broken\nsources: [unclosed\n")
    monkeypatch.delenv("HW_UNSET_TOKEN", raising=False)
    assert main(["run", "vendor_prise", "--pipelines", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "no pipeline named 'vendor_prise'" in err
    assert "choose one of: secretive" in err and "not valid YAML, so not searched: broken.yaml" in err
    assert "HW_UNSET_TOKEN" not in err
    assert Store(hw_env.database_url).migrate().runs() == []  # no such pipeline: no run to record


def test_a_refused_run_is_recorded_failed_with_the_reason(
    hw_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "vendor_prices", "--pipelines", str(EXAMPLES), "--param", "feed=nowhere.csv"]) == 2
    out, err = capsys.readouterr()
    assert "vendor_prices: refused, nothing ran" in out
    assert "sources.feed.path: no file matches 'nowhere.csv'" in err
    (run,) = Store(hw_env.database_url).runs("vendor_prices")
    assert (run["status"], run["error_type"], run["parameters"]) == (
        "failed",
        "SpecError",
        {"feed": "nowhere.csv"},
    )
    assert "no file matches 'nowhere.csv'" in run["error_message"]
    assert main(["runs"]) == 0
    listing = capsys.readouterr().out
    assert re.search(r"vendor_prices\s+manual\s+failed .* SpecError", listing)


@pytest.mark.prefect
def test_after_the_demo_a_run_uses_the_salt_the_demo_kept(
    hw_env: Settings, prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    salt = "kept-for-this-home-0123456789abcdef"
    (hw_env.home / "secrets").mkdir(parents=True)
    (hw_env.home / "secrets" / "hash_salt").write_text(salt)
    monkeypatch.delenv("HASH_SALT")
    assert main(["run", "claims_deidentified", "--pipelines", str(EXAMPLES)]) == 0
    (run,) = Store(hw_env.database_url).runs("claims_deidentified")
    assert run["status"] == "completed"
    engine = sa.create_engine(hw_env.warehouse_url)
    keys = pl.read_database("SELECT DISTINCT patient_key FROM claims_deid", engine)["patient_key"]
    engine.dispose()
    raw = pl.read_ndjson(EXAMPLES / "data" / "claims_batch.ndjson")["patient_id"].unique()
    import hashlib
    import hmac

    expected = {"P-" + hmac.new(salt.encode(), str(v).encode(), hashlib.sha256).hexdigest()[:16] for v in raw}
    assert set(keys) == expected  # every pseudonym made with the salt the demo kept


def test_runs_accepts_the_short_id_and_explains_the_score(
    hw_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from headwater.pipeline.launch import prepare_run

    store = Store(hw_env.database_url).migrate()
    run_id, _ = prepare_run(
        store,
        EXAMPLES,
        "vendor_prices",
        params=None,
        execution_type="manual",
        warehouse_url=hw_env.warehouse_url,
    )
    checks = [
        {"step_name": "check_prices", "suite": "expect", "table_name": "vendor_prices", "rule_name": name,
         "expectation_type": "expect_row_condition", "dimension": "validity", "severity": severity,
         "action": "fail", "records_checked": 9, "records_passed": passed, "records_failed": 9 - passed,
         "pass_rate": 100.0 * passed / 9, "score": 100.0 * passed / 9, "success": passed == 9,
         "observed_value": None, "sample_failures": [], "remediation": None, "weight": weight}
        for name, severity, weight, passed in (("a", "error", 1.0, 9), ("b", "warning", 2.0, 8))
    ]  # fmt: skip
    store.record_quality("vendor_prices", run_id, [], checks)
    assert main(["runs", "--run", run_id[:8]]) == 0
    out = capsys.readouterr().out
    assert out.startswith("pipeline_name      vendor_prices")
    # a (error 2 x 1 = 2, passes 100%) and b (warning 1 x 2 = 2, passes 88.89%): half the weight each
    assert re.search(r"a\s+expect\s+error\s+1\s+2\s+50\.0\s+100\.00\s+50\.00\s*\n", out)
    assert re.search(r"b\s+expect\s+warning\s+2\s+2\s+50\.0\s+88\.89\s+44\.44\s+-5\.56", out)
    assert "quality score 94.44 = the weighted mean of the rules' pass rates" in out
    assert main(["runs", "--run", "zzzzzzzz"]) == 1
    assert "no run 'zzzzzzzz'" in capsys.readouterr().out
    store.dispose()


def test_alerts_read_without_channels_and_actions_are_audited(
    hw_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # channels whose secret is not set here: reading alerts needs neither the channels nor the secret
    folder = tmp_path / "alerts"
    write(folder, "channels.yaml", "channels:\n  hook: {url: 'json://127.0.0.1:9/${HW_HOOK_TOKEN}'}\n")
    write(folder, "rules.yaml", "rules:\n  - {name: failed, when: {run_failed: true}, channels: [hook]}\n")
    monkeypatch.setenv("HEADWATER_ALERTS", str(folder))
    monkeypatch.delenv("HW_HOOK_TOKEN", raising=False)
    assert main(["alerts", "list"]) == 0
    assert "no open alerts" in capsys.readouterr().out
    assert main(["alerts", "history"]) == 0
    assert "MTTA - (0 acknowledged)" in capsys.readouterr().out

    assert main(["alerts", "ack"]) == 1
    assert "`headwater alerts ack` needs the alert's id" in capsys.readouterr().err
    assert main(["alerts", "resolve"]) == 1
    assert "see the ids with `headwater alerts list`" in capsys.readouterr().err

    assert main(["alerts", "silence", "--match", "pipeline=flights_*", "--hours", "2", "--by", "dana",
                 "--reason", "backfill"]) == 0  # fmt: skip
    assert re.match(
        r"silence 1 on pipeline=flights_\* until \d{4}-\d\d-\d\d \d\d:\d\d UTC", capsys.readouterr().out
    )
    engine = sa.create_engine(hw_env.database_url)
    with engine.connect() as conn:
        audit = conn.exec_driver_sql(
            "SELECT username, action, target, outcome, detail, source FROM audit_log ORDER BY id"
        ).all()
    engine.dispose()
    assert [tuple(a) for a in audit] == [
        ("dana", "alert.silence", "pipeline=flights_*", "ok", "silence 1", "cli")
    ]


def test_validate_refuses_a_quality_threshold_on_the_wrong_scale(
    hw_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "alerts"
    write(folder, "channels.yaml", "channels:\n  hook: {url: 'json://127.0.0.1:9/x'}\n")
    write(
        folder, "rules.yaml", "rules:\n  - {name: low, when: {quality_score_below: 0.9}, channels: [hook]}\n"
    )
    monkeypatch.setenv("HEADWATER_ALERTS", str(folder))
    monkeypatch.setenv("HEADWATER_PIPELINES", str(EXAMPLES))
    assert main(["validate"]) == 1
    out = capsys.readouterr().out
    assert "rules.yaml: rules[0].when.quality_score_below" in out
    assert "0.9 is not on the 0-100 scale quality scores use: write 90 for 90%" in out
    write(
        folder, "rules.yaml", "rules:\n  - {name: low, when: {quality_score_below: 90}, channels: [hook]}\n"
    )
    assert main(["validate"]) == 0
    assert f"ok  {folder}  (alert channels and rules)" in capsys.readouterr().out


def test_every_option_has_help_text() -> None:
    parser = build_parser()
    assert parser.description and "Headwater runs the data pipelines you declare" in parser.description
    missing = []
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, sub in [("headwater", parser), *subparsers[0].choices.items()]:
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            if not action.help:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []
