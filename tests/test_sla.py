"""SLAs: the spec's `sla:` refused at load when wrong; attainment per day equal to an independent
computation (plain Python over the rows inserted, not the domain's Polars) on a history with failures,
long runs and late runs across the end of British Summer Time (25 Oct 2026); the report and the CLI.
Stores: SQLite and the real PostgreSQL (store_engine)."""

from __future__ import annotations

import bisect
import json
import math
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from headwater.errors import SpecError
from headwater.sla import attainment, expected_duration, findings, first_runs, read_history, sla_report
from headwater.spec.loader import load_pipeline
from headwater.spec.models import PipelineSpec, Sla
from tests.sla_history import LONDON, add_pipeline, add_run, at

OK = {"completed", "completed_with_warnings"}
FINISHED = OK | {"failed", "crashed"}
SLA = {
    "success_rate": 90,
    "window": "7d",
    "max_duration": "20m",
    "freshness": "26h",
    "deadline": "07:30",
    "timezone": "Europe/London",
    "days": ["mon", "tue", "wed", "thu", "fri", "sat"],
}
NOW = at("2026-10-29 12:00")  # a Thursday, GMT
DAYS = 12  # 18 Oct (Sunday, BST) .. 29 Oct (GMT); the clocks went back on Sunday 25 Oct


def history() -> list[tuple[str, str, datetime, datetime | None]]:
    """(id, status, start, end) in London time: daily runs at 06:00 with known misses."""
    runs = []
    for day in range(10, 19):  # 10-18 Oct: on time
        runs.append((f"r{day}", "completed", at(f"2026-10-{day} 06:00"), at(f"2026-10-{day} 06:10")))
    runs += [
        ("r19a", "failed", at("2026-10-19 06:00"), at("2026-10-19 06:05")),
        ("r19b", "completed", at("2026-10-19 09:00"), at("2026-10-19 09:10")),  # late: deadline missed
        ("r20", "completed_with_warnings", at("2026-10-20 06:00"), at("2026-10-20 06:10")),
        ("r21", "completed", at("2026-10-21 06:00"), at("2026-10-21 06:45")),  # 45 min: too long
        ("r22", "completed", at("2026-10-22 06:00"), at("2026-10-22 06:10")),
        ("r23a", "failed", at("2026-10-23 06:00"), at("2026-10-23 06:02")),
        ("r23b", "completed", at("2026-10-23 06:30"), at("2026-10-23 06:40")),
        # BST: 08:00 local is 07:00 UTC, before 07:30 in UTC but late in London
        ("r24", "completed", at("2026-10-24 07:50"), at("2026-10-24 08:00")),
        ("r25", "completed", at("2026-10-25 06:00"), at("2026-10-25 06:10")),  # Sunday: no deadline
        # GMT: 07:25 local is 07:25 UTC: on time
        ("r26", "completed", at("2026-10-26 07:15"), at("2026-10-26 07:25")),
        ("r27", "skipped", at("2026-10-27 06:00"), at("2026-10-27 06:00")),  # nothing to do: no success
        ("r28a", "crashed", at("2026-10-28 06:00"), at("2026-10-28 06:30")),
        ("r28b", "completed", at("2026-10-28 08:00"), at("2026-10-28 08:10")),
        ("r29", "running", at("2026-10-29 11:30"), None),  # 30 min so far at NOW
    ]
    return runs


def fill(engine: sa.Engine, name: str = "daily") -> list[tuple[str, str, datetime, datetime | None]]:
    pid = add_pipeline(engine, name)
    runs = history()
    for run_id, status, start, end in runs:
        add_run(engine, pid, name, run_id, status, start, end)
    return runs


def independent(
    runs: list[tuple[str, str, datetime, datetime | None]], now: datetime
) -> list[dict[str, Any]]:
    """Each London day's figures, computed directly from the rows (loops, zoneinfo, a minute grid)."""
    window = timedelta(days=7)
    ends = sorted(e for _, s, _, e in runs if s in OK and e is not None)
    first = min(s for _, _, s, _ in runs)
    out = []
    for back in range(DAYS - 1, -1, -1):
        day = now.astimezone(LONDON).date() - timedelta(days=back)
        start = datetime.combine(day, time(0), LONDON).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(0), LONDON).astimezone(UTC)
        stop = min(end, now)
        in_window = [s for _, s, st, _ in runs if s in FINISHED and stop - window < st <= stop]
        rate = 100.0 * sum(s in OK for s in in_window) / len(in_window) if in_window else None
        took = [
            ((e if e is not None else now) - st).total_seconds()
            for _, s, st, e in runs
            if s != "skipped" and start <= st < stop
        ]
        longest = max(took) if took else None
        # the age of the last success just before each minute of the day (every time here is on a minute)
        ages = []
        t = start
        while t <= stop:
            i = bisect.bisect_left(ends, t)
            if i:
                ages.append((t - ends[i - 1]).total_seconds())
            t += timedelta(minutes=1)
        age = max(ages) if ages else None
        due = None
        if day.strftime("%a").lower() in SLA["days"]:
            due = datetime.combine(day, time(7, 30), LONDON).astimezone(UTC)
            due = due if due > first else None
        on_time = None
        if due is not None:
            on_time = any(start <= e <= due for e in ends) or (None if due > now else False)
        row = {
            "day": day,
            "success_rate": rate,
            "success_rate_met": None if rate is None else rate >= 90,
            "max_duration_seconds": longest,
            "max_duration_met": None if longest is None else longest <= 1200,
            "freshness_max_age_seconds": age,
            "freshness_met": None if age is None else age <= 26 * 3600,
            "deadline_met": on_time,
        }
        measured = [row[k] for k in row if k.endswith("_met") and row[k] is not None]
        row["met"] = all(measured) if measured else None
        out.append(row)
    return out


def test_attainment_per_day_equals_an_independent_computation_across_the_dst_change(
    store_engine: sa.Engine,
) -> None:
    runs = fill(store_engine)
    sla = Sla.model_validate(SLA)
    loaded = read_history(store_engine, ["daily"], NOW - timedelta(days=DAYS + 8))
    got = attainment(sla, loaded, NOW, DAYS, first_runs(store_engine, ["daily"])["daily"])

    keys = list(independent(runs, NOW)[0])
    mine = [{k: r[k] for k in keys} for r in got.iter_rows(named=True)]
    assert mine == independent(runs, NOW)
    # the ones the DST change decides, by hand: 24 Oct (BST) 08:00 local is late, 26 Oct (GMT) 07:25 is not;
    # Sundays have no deadline; 25 Oct is a 25-hour day
    by_day = {r["day"].isoformat(): r for r in mine}
    assert [by_day[f"2026-10-{d}"]["deadline_met"] for d in range(18, 30)] == [
        None, False, True, True, True, True, False, None, True, False, False, False,
    ]  # fmt: skip
    assert by_day["2026-10-21"]["max_duration_seconds"] == 45 * 60
    assert by_day["2026-10-29"]["max_duration_seconds"] == 30 * 60  # the run still running
    assert (
        by_day["2026-10-28"]["freshness_max_age_seconds"] == (48 * 60 + 45) * 60
    )  # 26 Oct 07:25 -> 28 Oct 08:10
    # 24 Oct 08:00 BST to 25 Oct 06:10 GMT is 23 h 10 min (the clock went back an hour between)
    assert by_day["2026-10-25"]["freshness_max_age_seconds"] == (23 * 60 + 10) * 60


def test_report_counts_days_met_per_objective(store_engine: sa.Engine) -> None:
    runs = fill(store_engine)
    spec = PipelineSpec.model_validate(
        {
            "name": "daily",
            "sources": {"s": {"kind": "file", "path": "x.csv"}},
            "steps": [{"name": "e", "type": "extract", "source": "s"}],
            "sla": SLA,
        }
    )
    report = sla_report(store_engine, [spec], NOW, DAYS)

    [p] = report["pipelines"]
    days = independent(runs, NOW)
    for o in p["objectives"]:
        flags = [d[f"{o['objective']}_met"] for d in days]
        measured = [f for f in flags if f is not None]
        assert (o["days_measured"], o["days_met"]) == (len(measured), sum(measured))
        assert o["attainment"] == round(100.0 * sum(measured) / len(measured), 2)
        assert o["missed_days"] == [d["day"].isoformat() for d in days if d[f"{o['objective']}_met"] is False]
    deadline = next(o for o in p["objectives"] if o["objective"] == "deadline")
    assert (deadline["days_measured"], deadline["days_met"], deadline["attainment"]) == (10, 5, 50.0)
    assert p["attainment"] == round(100.0 * sum(bool(d["met"]) for d in days) / DAYS, 2)
    assert json.loads(json.dumps(report)) == report  # JSON-ready as it is


def test_expected_duration_is_the_90th_percentile_of_the_latest_successes(store_engine: sa.Engine) -> None:
    runs = fill(store_engine)
    sla = Sla.model_validate(SLA)
    loaded = read_history(store_engine, ["daily"], NOW - timedelta(days=1))  # the baseline comes along

    durations = sorted(
        sorted(((st, (e - st).total_seconds()) for _, s, st, e in runs if s in OK and e), key=lambda x: x[0])[
            -20:
        ],
        key=lambda x: x[1],
    )
    values = [d for _, d in durations]
    # 18 successes, one of 45 min: the 90th percentile is still 10 min
    assert len(values) == 18
    assert expected_duration(sla, loaded) == values[math.ceil(0.9 * (len(values) - 1))] == 600


def test_findings_at_now_name_each_broken_objective(store_engine: sa.Engine) -> None:
    fill(store_engine)
    sla = Sla.model_validate(SLA)
    loaded = read_history(store_engine, ["daily"], NOW - timedelta(days=9))
    found = findings(sla, loaded, NOW, first_runs(store_engine, ["daily"])["daily"])

    # started after 22 Oct 12:00: r23a failed, r28a crashed; r27 (skipped) and r29 (running) do not count
    assert found.success_rate == (
        "success rate 71.43% over the last 7 d is below 90% (5 of 7 finished runs succeeded)"
    )
    # the latest finished run (r28b) took 10 min; r29 has run 30 min so far
    assert found.max_duration == "run r29 has been running for 30 min (limit 20 min)"
    assert found.freshness == (
        "the last successful run finished 27.8 h ago, at Wed 2026-10-28 08:10 GMT (limit 26 h)"
    )


def test_freshness_and_missed_run_at_the_moment_they_start(store_engine: sa.Engine) -> None:
    fill(store_engine)
    sla = Sla.model_validate(SLA)
    loaded = read_history(store_engine, ["daily"], NOW - timedelta(days=9))
    first = first_runs(store_engine, ["daily"])["daily"]
    last_ok = at("2026-10-28 08:10")

    assert findings(sla, loaded, last_ok + timedelta(hours=26), first).freshness is None
    stale = findings(sla, loaded, last_ok + timedelta(hours=26, seconds=1), first).freshness
    assert stale == "the last successful run finished 26 h ago, at Wed 2026-10-28 08:10 GMT (limit 26 h)"
    # 29 Oct: no success today; the deadline is missed at 07:30, not a second before
    assert findings(sla, loaded, at("2026-10-29 07:29:59"), first).missed_run is None
    missed = findings(sla, loaded, at("2026-10-29 07:30"), first).missed_run
    assert missed == (
        "no successful run by the deadline, Thu 2026-10-29 07:30 GMT, nor since: "
        "the last one finished Wed 2026-10-28 08:10 GMT"
    )


@pytest.mark.parametrize(
    ("sla", "field", "message", "fix"),
    [
        ({"success_rate": 0.99}, "sla.success_rate", "0.99 is not a percent", "write 99 for 99%"),
        ({"deadline": "7.30"}, "sla.deadline", "'7.30' is not a time of day", "HH:MM"),
        ({"deadline": "07:30", "timezone": "Mars/Olympus"}, "sla.timezone", "unknown time zone", "IANA"),
        ({"success_rate": 99, "window": "36h"}, "sla.window", "whole days", "'2d'"),
        ({"max_duration": "soon"}, "sla.max_duration", "is not a duration", "'5m'"),
        ({"timezone": "UTC"}, "sla", "give at least one of", None),
    ],
)
def test_bad_sla_is_refused_at_load_with_file_line_and_fix(
    tmp_path: Path, sla: dict[str, Any], field: str, message: str, fix: str | None
) -> None:
    spec = tmp_path / "p.yaml"
    lines = [
        "name: p",
        "sources: {s: {kind: file, path: x.csv}}",
        "steps: [{name: e, type: extract, source: s}]",
    ]
    spec.write_text("\n".join([*lines, f"sla: {json.dumps(sla)}", ""]))

    with pytest.raises(SpecError) as err:
        load_pipeline(spec, check=False)
    [problem] = err.value.problems
    assert problem.field == field and problem.line == 4
    assert message in problem.message + (problem.hint or "")
    if fix:
        assert fix in str(problem)


def test_sla_time_zone_defaults_to_the_schedule_and_adding_sla_leaves_other_hashes(tmp_path: Path) -> None:
    from headwater.sla import resolved

    spec = tmp_path / "p.yaml"
    base = "name: p\nsources: {s: {kind: file, path: x.csv}}\nsteps: [{name: e, type: extract, source: s}]\n"
    spec.write_text(base + 'schedule: {cron: "0 6 * * *", timezone: America/New_York}\n')
    before = load_pipeline(spec, check=False)
    spec.write_text(spec.read_text() + 'sla: {deadline: "07:30"}\n')
    after = load_pipeline(spec, check=False)

    assert before.spec.sla is None and "sla" not in before.spec.model_dump(exclude_defaults=True)
    assert after.digest != before.digest
    sla = resolved(after.spec)
    assert sla is not None and sla.timezone == "America/New_York" and sla.deadline == "07:30"
