"""Every console page rendered through Streamlit's AppTest on a store with 10,000 runs, cold (reads
hit the store) and warm (served from st.cache_data), against a baseline measured in the same run:
the page's data reads alone. Target: every cold render under 2,000 ms.

Speed is measured, never asserted: the exit code is nonzero only when a page raised. Run from the
repository root:

    .venv/bin/python bench/console.py [--runs 10000] [--repeat 3] [--keep DIR]

Built first (untimed), in a throwaway HEADWATER_HOME (--keep DIR: built in DIR and left there):
- the five example pipelines run once for real through their Prefect flows (Prefect's test harness),
  then vendor_prices once more on a malformed feed, which fails: 6 runs;
- those runs copied up to --runs with bulk Core inserts (executemany, 500 runs a transaction): new ids,
  starts spread over the last 90 days, durations and scores jittered, ~6% copies of the failed run (a
  sixth of those marked crashed), 3 running; each copy with its steps and quality checks; then 300
  alert instances (resolved, acknowledged, open, silenced) with one delivery each. No ANALYZE.

Timed, per page, --repeat times (the table shows medians):
- cold: st.cache_data.clear(), then AppTest switch_page(page).run(): the router's session check, every
  read through console/data.py, Polars, Plotly and AppTest's own element tree (engines stay cached);
- warm: run() again at once, the reads served from st.cache_data;
- reads (the baseline): the calls the page makes through console/data.py, made directly on the store
  engine: headwater.views, the alerting reads, spec loading and the router's principal();
- the same cold renders on the 6-run store, before the copies: ratio 10k/6 is what store size costs.
Quality's sections after Trends are selected with radio quality_section (Trends is "quality").

This file is named console.py: it takes bench/ off sys.path so `console` is the console package.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "console" / "streamlit_app.py")
EXAMPLES = ["flights_daily", "carrier_monthly", "flights_clean", "vendor_prices", "claims_deidentified"]
BROKEN_FEED = 'vendor_id,vendor_name,category,city,price,currency,updated_at\nV001,"Rose & Co,florist\n'
PAGES = ["overview", "pipelines", "run", "quality", "lineage", "alerts"]
SECTIONS = ["Top issues", "By source", "Recommendations", "Quarantine"]
ACTIVE = ("open", "acknowledged", "suppressed")
TARGET_MS, CHUNK, ALERTS, PASSWORD = 2000.0, 500, 300, "bench-console-Passw0rd"
TABLES = ["pipeline_executions", "step_executions", "data_quality_checks", "alert_instances"]
TABLES += ["alert_deliveries", "data_lineage"]


@dataclass
class Timings:
    """Milliseconds per label (page, or 'quality: <section>'), one entry per repetition."""

    cold: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    warm: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    reads: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


def own_console_package() -> None:
    """`python bench/console.py` puts bench/ first on sys.path, where this file would be `console`."""
    here = Path(__file__).resolve().parent
    sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != here]


def prepare(root: Path) -> Path:
    pipelines = root / "pipelines"
    shutil.copytree(REPO / "pipelines", pipelines)
    shutil.copytree(REPO / "quality_suites", root / "quality_suites")  # specs name ../quality_suites/
    (pipelines / "data" / "broken_feed.csv").write_text(BROKEN_FEED)
    os.environ.update(HEADWATER_HOME=str(root / "home"), HEADWATER_PIPELINES=str(pipelines))
    for name in ("DATABASE_URL", "WAREHOUSE_URL", "ALERTS", "REDIS_URL"):
        os.environ.pop(f"HEADWATER_{name}", None)
    os.environ.pop("PREFECT_API_URL", None)  # the console reads as it does without a Prefect server
    os.environ.setdefault("HASH_SALT", "headwater-bench-salt-5e2d8c1a")  # the claims example's secret
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_HOME", str(REPO / "bench" / ".data" / "prefect_home"))
    return pipelines


def run_examples(pipelines: Path) -> None:
    from prefect.testing.utilities import prefect_test_harness

    from flows.pipeline import PipelineRunFailed, flow_for

    plan: list[tuple[str, dict[str, str] | None]] = [(n, None) for n in EXAMPLES]
    with prefect_test_harness(server_startup_timeout=120):
        for name, params in [*plan, ("vendor_prices", {"feed": "data/broken_feed.csv"})]:
            mark = time.perf_counter()
            try:
                flow = flow_for(name)
                result = flow(
                    pipeline=name, pipelines_dir=str(pipelines), execution_type="manual", params=params
                )
            except PipelineRunFailed as exc:
                result = exc.summary
            print(f"  {name}{' (broken feed)' if params else ''}: {result['status']} ({ms(mark):,.0f} ms)")
            if (result["status"] == "failed") != bool(params):
                raise RuntimeError(f"{name} ended {result['status']}: {result}")


def moved(row: dict[str, Any], shift: timedelta, *columns: str) -> dict[str, Any]:
    return {**row, **{c: row[c] + shift for c in columns if row[c] is not None}}


def replicate(engine: sa.Engine, total: int, now: datetime, rng: random.Random) -> None:
    """Copy the real runs, with their steps and checks, until the store holds `total` runs."""
    from headwater.store.tables import data_quality_checks as dq
    from headwater.store.tables import pipeline_executions as pe
    from headwater.store.tables import step_executions as se

    children: dict[str, dict[str, list[dict[str, Any]]]] = {"se": defaultdict(list), "dq": defaultdict(list)}
    with engine.connect() as conn:
        runs = [dict(r._mapping) for r in conn.execute(sa.select(pe))]
        for key, table in (("se", se), ("dq", dq)):
            for r in conn.execute(sa.select(table)):
                row = dict(r._mapping)
                del row["id"]
                children[key][row["execution_id"]].append(row)
    good, bad = [r for r in runs if r["status"] != "failed"], [r for r in runs if r["status"] == "failed"]
    copies = max(0, total - len(runs))
    for first in range(0, copies, CHUNK):
        rows: dict[str, list[dict[str, Any]]] = {"pe": [], "se": [], "dq": []}
        for i in range(first, min(copies, first + CHUNK)):
            src = rng.choice(bad) if rng.random() < 0.06 else rng.choice(good)
            running = i < 3
            start = now - timedelta(
                seconds=rng.uniform(60, 1200) if running else rng.uniform(600, 90 * 86400)
            )
            shift = start - (src["started_at"].replace(tzinfo=UTC))
            run = moved(src, shift, "started_at", "ended_at") | {"id": str(uuid.uuid4()), "flow_run_id": None}
            if run["duration_seconds"] is not None:
                run["duration_seconds"] *= rng.uniform(0.8, 1.4)
            if run["quality_score"] is not None:
                run["quality_score"] = max(0.0, min(100.0, run["quality_score"] + rng.gauss(0, 1.5)))
            if src["status"] == "failed" and rng.random() < 1 / 6:
                run["status"] = "crashed"
            if running:
                run.update(status="running", ended_at=None, duration_seconds=None)
            rows["pe"].append(run)
            new = {"execution_id": run["id"]}
            rows["se"] += [moved(s, shift, "started_at", "ended_at") | new for s in children["se"][src["id"]]]
            rows["dq"] += [moved(c, shift, "checked_at") | new for c in children["dq"][src["id"]]]
        with engine.begin() as conn:  # one executemany per table and chunk
            for key, table in (("pe", pe), ("se", se), ("dq", dq)):
                if rows[key]:
                    conn.execute(sa.insert(table), rows[key])


def add_alerts(engine: sa.Engine, now: datetime, rng: random.Random) -> None:
    """Alert instances over the last 90 days (mostly resolved), one delivery each."""
    from headwater.store.tables import alert_deliveries, alert_instances, pipeline_executions

    with engine.connect() as conn:
        runs = conn.execute(sa.select(pipeline_executions.c.pipeline_name, pipeline_executions.c.id)).all()
        first_id = (conn.execute(sa.select(sa.func.max(alert_instances.c.id))).scalar() or 0) + 1
    rules = [("run-failed", "critical"), ("quarantine-high", "warning"), ("score-drop", "warning")]
    instances, sent = [], []
    for n in range(ALERTS):
        (rule, severity), (pipeline, run_id) = rng.choice(rules), rng.choice(runs)
        status = rng.choices(["resolved", "acknowledged", "open", "suppressed"], [80, 8, 7, 5])[0]
        opened = now - timedelta(seconds=rng.uniform(300, 90 * 86400))
        acked = None
        if status == "acknowledged" or (status == "resolved" and rng.random() < 0.8):
            acked = min(now, opened + timedelta(seconds=rng.expovariate(1 / 1200)))
        fixed = min(now, (acked or opened) + timedelta(seconds=rng.expovariate(1 / 7200)))
        fingerprint = hashlib.sha256(f"{rule}\0{pipeline}\0{n}".encode()).hexdigest()
        run = {"run_id": run_id, "status": "failed", "failed_step": "extract", "error_type": "SpecError"}
        instances.append(
            {"id": first_id + n, "fingerprint": fingerprint, "rule_name": rule, "pipeline_name": pipeline,
             "active_fingerprint": fingerprint if status in ACTIVE else None, "severity": severity,
             "condition_key": rule, "status": status, "first_run_id": run_id, "last_run_id": run_id,
             "details": {"run": run, "fired": [f"{rule} on {pipeline}"], "hint": "see the run"},
             "occurrences": rng.randint(1, 5), "level": rng.randint(0, 1), "opened_at": opened,
             "last_seen_at": acked or opened, "next_escalation_at": None, "acknowledged_at": acked,
             "acknowledged_by": "bench" if acked else None, "resolved_run_id": None,
             "resolved_at": fixed if status == "resolved" else None,
             "resolved_by": "auto" if status == "resolved" else None}
        )  # fmt: skip
        sent.append(
            {"instance_ids": [first_id + n], "kind": "alert", "channel": "ops-webhook", "run_id": run_id,
             "title": f"{severity}: {rule} on {pipeline}", "body": "bench", "status": "sent", "reason": None,
             "attempts": 1, "error": None, "created_at": opened, "sent_at": opened}
        )  # fmt: skip
    with engine.begin() as conn:
        conn.execute(sa.insert(alert_instances), instances)
        conn.execute(sa.insert(alert_deliveries), sent)


def print_counts(engine: sa.Engine, label: str) -> None:
    with engine.connect() as conn:
        counts = [f"{t} {conn.execute(sa.text(f'SELECT count(*) FROM {t}')).scalar():,}" for t in TABLES]
    print(f"{label}: " + ", ".join(counts))


def reads(engine: sa.Engine, warehouse: sa.Engine, token: str) -> dict[str, Callable[[], None]]:
    """Per label, the reads the page makes through console/data.py, made directly (no Streamlit)."""
    from headwater.access import principal
    from headwater.alerting.engine import active_silences, deliveries, history, mtta_mttr
    from headwater.control import DeclaredSchedule, spec_schedules
    from headwater.settings import Settings
    from headwater.spec.loader import find_pipeline
    from headwater.store.tables import data_destinations as dd
    from headwater.store.tables import data_pipelines as dp
    from headwater.views import lineage, overview, pipelines, quality, quarantine, runs
    from headwater.views.health import check_all

    s = Settings.from_env()

    def start() -> datetime:  # the router checks the session on every render
        now = datetime.now(UTC)
        principal(engine, token, now)
        return now

    def overview_page() -> None:
        now = start()
        overview.overview(engine, now)
        check_all(s.database_url, s.warehouse_url, None, None)
        runs.runs(engine, statuses=["running"], limit=50)
        runs.runs(engine, statuses=["failed", "crashed"], since=now - timedelta(days=7), limit=10)

    def pipelines_page() -> None:
        now = start()
        table = pipelines.pipelines(engine, now)
        cols = ("name", "schedule_cron", "schedule_timezone", "schedule_interval_seconds")
        spec_schedules([DeclaredSchedule(*r) for r in table.select(cols).iter_rows()], now)
        name = table["name"][0]
        pipelines.pipeline_detail(engine, name)
        runs.runs(engine, pipeline=name, limit=60)
        find_pipeline(s.pipelines_dir, name, params_may_be_unset=True)

    def run_page() -> None:
        pipelines.pipelines(engine, start())
        runs.run_detail(engine, runs.runs(engine, limit=100)["id"][0])

    def waiting() -> dict[tuple[str, str], int]:
        query = (
            sa.select(dp.c.name, dd.c.table_name).join(dp, dp.c.id == dd.c.pipeline_id).where(dp.c.is_active)
        )
        with engine.connect() as conn:
            targets = conn.execute(query.order_by(dp.c.name, dd.c.table_name)).all()
        counts = {(p, t): quarantine.counts(warehouse, p, t) for p, t in targets}
        return {k: int(v.filter(v["status"] == "quarantined")["rows"].sum()) for k, v in counts.items()}

    def quality_page(section: str) -> Callable[[], None]:
        def go() -> None:
            now = start()
            pipelines.pipelines(engine, now)
            checks = quality.checks(engine, now - timedelta(days=30))
            if section == "Trends":
                quality.score_trend(engine, now - timedelta(days=30))
                quality.trend_by(checks, "table_name")
                quality.trend_by(checks, "dimension")
                quality.latest_by(checks, "dimension")
            elif section == "Top issues":
                quality.top_issues(checks, limit=20)
            elif section == "By source":
                quality.by_source(engine, checks)
            elif section == "Recommendations":
                quality.recommendations(engine, checks, now, waiting())
            else:
                (p, t), _ = max(waiting().items(), key=lambda kv: kv[1])
                quarantine.rows(warehouse, p, t, status="quarantined", limit=100, offset=0)

        return go

    def lineage_page() -> None:
        pipelines.pipelines(engine, start())
        graph = lineage.lineage_graph(engine, None)
        chosen = min(
            (n for n in graph.nodes.values() if n.kind == "table"), key=lambda n: (n.label, n.dataset)
        )
        graph.tables(graph.upstream(chosen.id))
        graph.tables(graph.downstream(chosen.id))
        graph.depth()
        graph.table_edges()

    def alerts_page() -> None:
        now = start()
        mtta_mttr(history(engine, since=now - timedelta(days=30)))
        active = history(engine, since=now - timedelta(days=3650), statuses=ACTIVE)
        if active:
            deliveries(engine, int(active[0]["id"]))
        active_silences(engine, now)

    out = {"overview": overview_page, "pipelines": pipelines_page, "run": run_page}
    out |= {"quality": quality_page("Trends")} | {f"quality: {x}": quality_page(x) for x in SECTIONS}
    return out | {"lineage": lineage_page, "alerts": alerts_page}


def ms(mark: float) -> float:
    return (time.perf_counter() - mark) * 1000


def measure(engine: sa.Engine, warehouse: sa.Engine, repeat: int, failures: list[str]) -> Timings:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from headwater.access import login
    from headwater.access.users import add_user

    now, user = datetime.now(UTC), f"bench{uuid.uuid4().hex[:8]}"
    add_user(engine, user, "data_analyst", PASSWORD, now)
    token = login(engine, user, PASSWORD, now)
    baseline, out = reads(engine, warehouse, token), Timings()
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["hw_token"] = token

    def timed(label: str, into: dict[str, list[float]]) -> None:
        mark = time.perf_counter()
        at.run()
        into[label].append(ms(mark))
        if at.exception:
            failures.append(f"{label}: " + " | ".join(str(e.value) for e in at.exception))
            print(f"ERROR on {label}: {failures[-1]}\n" + "\n".join(str(e.stack_trace) for e in at.exception))

    def cold_warm_reads(label: str) -> None:
        timed(label, out.cold)
        timed(label, out.warm)
        mark = time.perf_counter()
        baseline[label]()
        out.reads[label].append(ms(mark))

    timed("sign-in", defaultdict(list))
    for _ in range(repeat):
        for page in PAGES:
            st.cache_data.clear()
            at.switch_page(f"app_pages/{page}.py")
            cold_warm_reads(page)
            if page == "quality":
                for section in SECTIONS:
                    st.cache_data.clear()
                    at.radio(key="quality_section").set_value(section)
                    cold_warm_reads(f"quality: {section}")
                at.radio(key="quality_section").set_value("Trends").run()
    return out


def report(big: Timings, small: Timings, runs: int, repeat: int) -> None:
    def med(d: dict[str, list[float]]) -> dict[str, float]:
        return {k: statistics.median(v) for k, v in d.items()}

    cold, warm, rd, six = med(big.cold), med(big.warm), med(big.reads), med(small.cold)
    scale = f"{runs / 1000:g}k/6"
    cols = ["page", "cold ms", "warm ms", "reads ms", "cold/reads", "6-run ms", scale]
    print(f"\n{runs:,} runs; medians of {repeat}\n{cols[0]:<26}" + "".join(f"{c:>11}" for c in cols[1:]))
    for k in cold:
        cells = [f"{cold[k]:,.0f}", f"{warm[k]:,.0f}", f"{rd[k]:,.0f}", f"{cold[k] / rd[k]:.1f}"]
        cells += [f"{six[k]:,.0f}", f"{cold[k] / six[k]:.2f}"]
        print(f"{k:<26}" + "".join(f"{c:>11}" for c in cells))
    print("cold: cache cleared, switch_page + run; warm: run again; reads: the page's data calls alone")
    slowest = max(cold, key=lambda k: cold[k])
    verdict = "yes" if cold[slowest] < TARGET_MS else "NO"
    print(
        f"every cold render under {TARGET_MS:,.0f} ms: {verdict} (slowest {slowest}: {cold[slowest]:,.0f} ms)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the store after the copies")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of every render (median shown)")
    parser.add_argument("--keep", type=Path, help="build the store in this (new) folder and keep it")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    own_console_package()
    root = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="hw_bench_console_"))
    failures: list[str] = []
    try:
        pipelines = prepare(root)
        mark = time.perf_counter()
        run_examples(pipelines)
        print(f"example runs incl. Prefect harness start: {ms(mark) / 1000:.1f} s")
        from headwater.settings import Settings
        from headwater.store import Store

        settings = Settings.from_env()
        store, warehouse = Store(settings.database_url).migrate(), sa.create_engine(settings.warehouse_url)
        print_counts(store.engine, "store before the copies")
        small = measure(store.engine, warehouse, args.repeat, failures)
        mark, rng = time.perf_counter(), random.Random(20261101)
        replicate(store.engine, args.runs, datetime.now(UTC), rng)
        add_alerts(store.engine, datetime.now(UTC), rng)
        print(f"copies and alerts inserted in {ms(mark) / 1000:.1f} s")
        print_counts(store.engine, "store after the copies")
        big = measure(store.engine, warehouse, args.repeat, failures)
        report(big, small, args.runs, args.repeat)
        store.dispose()
        warehouse.dispose()
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    for failure in failures:
        print(f"ERROR: a page raised: {failure}")
    print(f"total runtime {time.perf_counter() - began:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    raise SystemExit(main())
