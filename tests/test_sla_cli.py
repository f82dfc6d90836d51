"""`headwater sla` on the embedded SQLite store of a fresh HEADWATER_HOME: the JSON report (what the
HTTP API serves) and the table agree with direct SQL over the rows written; a pipeline without an
`sla:` is refused with the fix; `--check` without HEADWATER_ALERTS says it sends nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from headwater.cli.main import main
from headwater.settings import Settings
from headwater.store import Store
from tests.sla_history import add_pipeline, add_run

SPEC = """\
name: daily
sources: {s: {kind: file, path: x.csv}}
steps: [{name: e, type: extract, source: s}]
sla: {success_rate: 90, window: 7d, deadline: "23:59", timezone: UTC}
"""
PLAIN = "name: plain\nsources: {s: {kind: file, path: x.csv}}\nsteps: [{name: e, type: extract, source: s}]\n"


@pytest.fixture
def folder(hw_env: Settings, tmp_path: Path) -> Path:
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "daily.yaml").write_text(SPEC)
    (folder / "plain.yaml").write_text(PLAIN)
    hw_env.ensure_home()
    store = Store(hw_env.database_url).migrate()
    today = datetime.now(UTC).date()
    pid = add_pipeline(store.engine, "daily")
    for back in range(9, 0, -1):
        start = datetime.combine(today - timedelta(days=back), time(0, 30), UTC)
        status = "failed" if back in (3, 5) else "completed"
        add_run(store.engine, pid, "daily", f"r{back}", status, start, start + timedelta(minutes=10))
    store.dispose()
    return folder


def test_sla_json_and_table_agree_with_the_store(
    hw_env: Settings, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sla", "--pipelines", str(folder), "--days", "10", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    [p] = report["pipelines"]  # `plain` declares no sla
    assert p["pipeline"] == "daily" and p["timezone"] == "UTC" and p["days"] == 10
    objectives = {o["objective"]: o for o in p["objectives"]}

    engine = sa.create_engine(hw_env.database_url)
    with engine.connect() as conn:
        # today's success rate over 7 days, straight from the table (started within the last 7 days)
        since = (datetime.now(UTC) - timedelta(days=7)).replace(tzinfo=None).isoformat(sep=" ")
        ok, finished = conn.execute(
            sa.text(
                "SELECT sum(CASE WHEN status IN ('completed', 'completed_with_warnings') THEN 1 ELSE 0 END),"
                " count(*) FROM pipeline_executions WHERE pipeline_name = 'daily' AND started_at > :since"
            ),
            {"since": since},
        ).one()
        # days with a successful run that ended by 23:59 UTC that day
        on_time = {
            r[0]
            for r in conn.execute(
                sa.text(
                    "SELECT date(ended_at) FROM pipeline_executions WHERE pipeline_name = 'daily' "
                    "AND status = 'completed' AND time(ended_at) <= '23:59:00'"
                )
            )
        }
    engine.dispose()
    today = datetime.now(UTC).date()
    assert p["per_day"][-1]["day"] == today.isoformat()
    assert p["per_day"][-1]["success_rate"] == round(100.0 * ok / finished, 3)
    measured = [(today - timedelta(days=b)).isoformat() for b in range(9, 0, -1)]
    assert objectives["deadline"]["days_measured"] == len(measured) == 9
    assert objectives["deadline"]["days_met"] == len(on_time) == 7
    assert objectives["deadline"]["missed_days"] == [d for d in measured if d not in on_time]

    assert main(["sla", "daily", "--pipelines", str(folder), "--days", "10"]) == 0
    out = capsys.readouterr().out
    assert "daily: " in out and "(last 10 days, UTC)" in out
    deadline_line = next(line for line in out.splitlines() if line.startswith("deadline"))
    assert "77.78%" in deadline_line and "7/9" in deadline_line
    assert ", ".join(objectives["deadline"]["missed_days"]) in deadline_line


def test_sla_refuses_a_pipeline_without_one_and_check_says_what_it_sends(
    hw_env: Settings, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sla", "plain", "--pipelines", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "no pipeline 'plain' with an sla:" in err and "Fix: add e.g. `sla:" in err

    assert main(["sla", "--check", "--pipelines", str(folder), "--days", "2"]) == 0
    assert "HEADWATER_ALERTS is not set: the SLA check sends no alerts" in capsys.readouterr().out
