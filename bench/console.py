"""Every console page rendered through Streamlit's AppTest on a store with 10,000 runs, cold (reads
hit the store) and warm (st.cache_data), against a baseline measured in the same run: the page's
data reads alone. Target: every cold render under 2,000 ms. Measured, never asserted: the exit code
is nonzero only when a page raised. From the repository root:

    .venv/bin/python bench/console.py [--runs 10000] [--repeat 3] [--keep DIR]

The store (untimed; a throwaway HEADWATER_HOME, or DIR, kept): the five example pipelines run for real
through their Prefect flows (test harness), and vendor_prices once more on a malformed feed (failed);
those 6 runs copied up to --runs by executemany in chunks of 500 runs (new ids, starts spread over 90
days, durations and scores jittered, ~6% copies of the failed run, a sixth of them crashed, 3
running), each with its steps and quality checks; 300 alert instances, one delivery each. No ANALYZE.

Timed per page, --repeat times after one untimed round (imports); medians shown:
- cold: st.cache_data.clear(), then switch_page(page).run(): the router's session check, the reads
  through console/data.py, Polars, Plotly and AppTest's element tree (engines stay cached);
- warm: run() again at once, reads served from st.cache_data;
- reads (baseline): the page's calls through console/data.py made directly on the engine (views,
  alerting reads, spec loading, the router's principal()): cold/reads is the Streamlit+Plotly cost;
- 6-run: the same cold render before the copies: 10k/6 is what the store's size costs.
Quality's other sections are chosen with radio quality_section ("quality" is Trends). The file is
named console.py: it takes bench/ off sys.path so that `console` is the console package.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from headwater.access import login, principal
from headwater.access.users import add_user
from headwater.alerting.engine import active_silences, deliveries, history, mtta_mttr
from headwater.control import DeclaredSchedule, spec_schedules
from headwater.settings import Settings
from headwater.spec.loader import find_pipeline
from headwater.store import Store, tables
from headwater.views import lineage, overview, pipelines, quality, quarantine, runs
from headwater.views.health import check_all

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "console" / "streamlit_app.py")
EXAMPLES = ["flights_daily", "carrier_monthly", "flights_clean", "vendor_prices", "claims_deidentified"]
BROKEN_FEED = 'vendor_id,vendor_name,category,city,price,currency,updated_at\nV001,"Rose & Co,florist\n'
PAGES = ["overview", "pipelines", "run", "quality", "lineage", "alerts"]
SECTIONS = ["Top issues", "By source", "Recommendations", "Quarantine"]
ACTIVE = ("open", "acknowledged", "suppressed")
TARGET_MS, CHUNK, ALERTS, PASSWORD = 2000.0, 500, 300, "bench-console-Passw0rd"
COPIED = {"pe": tables.pipeline_executions, "se": tables.step_executions, "dq": tables.data_quality_checks}
COUNTED = [*(t.name for t in COPIED.values()), "alert_instances", "alert_deliveries", "data_lineage"]


Timings = dict[str, dict[str, list[float]]]
"""cold | warm | reads -> label (page, or 'quality: <section>') -> ms, one per repetition."""


def timings() -> Timings:
    return defaultdict(lambda: defaultdict(list))


def ms(mark: float) -> float:
    return (time.perf_counter() - mark) * 1000


def prepare(root: Path) -> Path:
    """The example specs and suites under `root`, a malformed feed, and the environment pointing there."""
    here = Path(__file__).resolve().parent  # `python bench/console.py` puts bench/ first on sys.path
    sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != here]
    specs = root / "pipelines"
    shutil.copytree(REPO / "pipelines", specs)
    shutil.copytree(REPO / "quality_suites", root / "quality_suites")  # specs name ../quality_suites/
    (specs / "data" / "broken_feed.csv").write_text(BROKEN_FEED)
    os.environ.update(HEADWATER_HOME=str(root / "home"), HEADWATER_PIPELINES=str(specs))
    for name in ("DATABASE_URL", "WAREHOUSE_URL", "ALERTS", "REDIS_URL", "PREFECT_API_URL"):  # no server
        os.environ.pop(name if name.startswith("PREFECT") else f"HEADWATER_{name}", None)
    os.environ.setdefault("HASH_SALT", "headwater-bench-salt-5e2d8c1a")  # the claims example's secret
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_HOME", str(REPO / "bench" / ".data" / "prefect_home"))
    return specs


def run_examples(specs: Path) -> None:
    from prefect.testing.utilities import prefect_test_harness

    from flows.pipeline import PipelineRunFailed, flow_for

    plan: list[tuple[str, dict[str, str] | None]] = [(n, None) for n in EXAMPLES]
    with prefect_test_harness(server_startup_timeout=120):
        for name, params in [*plan, ("vendor_prices", {"feed": "data/broken_feed.csv"})]:
            mark = time.perf_counter()
            try:
                kwargs = {"pipelines_dir": str(specs), "execution_type": "manual", "params": params}
                result = flow_for(name)(pipeline=name, **kwargs)
            except PipelineRunFailed as exc:
                result = exc.outcome.as_dict()
            print(f"  {name}{' (broken feed)' if params else ''}: {result['status']} ({ms(mark):,.0f} ms)")
            if (result["status"] == "failed") != bool(params):
                raise RuntimeError(f"{name} ended {result['status']}: {result}")


def moved(row: dict[str, Any], shift: timedelta, *columns: str) -> dict[str, Any]:
    return {**row, **{c: row[c] + shift for c in columns if row[c] is not None}}


def replicate(engine: sa.Engine, total: int, now: datetime, rng: random.Random) -> None:
    """Copy the real runs, with their steps and checks, until the store holds `total` runs."""
    kids: dict[str, dict[str, list[dict[str, Any]]]] = {"se": defaultdict(list), "dq": defaultdict(list)}
    with engine.connect() as conn:
        originals = [dict(r._mapping) for r in conn.execute(sa.select(tables.pipeline_executions))]
        for key in kids:
            for r in conn.execute(sa.select(COPIED[key])):
                kids[key][r.execution_id].append({k: v for k, v in r._mapping.items() if k != "id"})
    good = [r for r in originals if r["status"] != "failed"]
    bad = [r for r in originals if r["status"] == "failed"]
    copies = max(0, total - len(originals))
    for first in range(0, copies, CHUNK):
        rows: dict[str, list[dict[str, Any]]] = {"pe": [], "se": [], "dq": []}
        for i in range(first, min(copies, first + CHUNK)):
            src = rng.choice(bad) if rng.random() < 0.06 else rng.choice(good)
            ago = rng.uniform(60, 1200) if i < 3 else rng.uniform(600, 90 * 86400)
            shift = now - timedelta(seconds=ago) - src["started_at"].replace(tzinfo=UTC)
            run = moved(src, shift, "started_at", "ended_at") | {"id": str(uuid.uuid4()), "flow_run_id": None}
            if run["duration_seconds"] is not None:
                run["duration_seconds"] *= rng.uniform(0.8, 1.4)
            if run["quality_score"] is not None:
                run["quality_score"] = max(0.0, min(100.0, run["quality_score"] + rng.gauss(0, 1.5)))
            if src["status"] == "failed" and rng.random() < 1 / 6:
                run["status"] = "crashed"
            if i < 3:
                run.update(status="running", ended_at=None, duration_seconds=None)
            rows["pe"].append(run)
            new = {"execution_id": run["id"]}
            rows["se"] += [moved(s, shift, "started_at", "ended_at") | new for s in kids["se"][src["id"]]]
            rows["dq"] += [moved(c, shift, "checked_at") | new for c in kids["dq"][src["id"]]]
        with engine.begin() as conn:  # one executemany per table and chunk
            for key, table in COPIED.items():
                if rows[key]:
                    conn.execute(sa.insert(table), rows[key])


def add_alerts(engine: sa.Engine, now: datetime, rng: random.Random) -> None:
    """Alert instances over the last 90 days (mostly resolved), one delivery each."""
    pe = tables.pipeline_executions
    with engine.connect() as conn:
        run_ids = conn.execute(sa.select(pe.c.pipeline_name, pe.c.id)).all()
        first_id = (conn.execute(sa.select(sa.func.max(tables.alert_instances.c.id))).scalar() or 0) + 1
    rules = [("run-failed", "critical"), ("quarantine-high", "warning"), ("score-drop", "warning")]
    instances, sent = [], []
    for n in range(ALERTS):
        (rule, severity), (pipeline, run_id) = rng.choice(rules), rng.choice(run_ids)
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
        conn.execute(sa.insert(tables.alert_instances), instances)
        conn.execute(sa.insert(tables.alert_deliveries), sent)


def print_counts(engine: sa.Engine, label: str) -> None:
    with engine.connect() as conn:
        counts = [f"{t} {conn.execute(sa.text(f'SELECT count(*) FROM {t}')).scalar():,}" for t in COUNTED]
    print(f"{label}: " + ", ".join(counts))


def reads(engine: sa.Engine, warehouse: sa.Engine, token: str) -> dict[str, Callable[[], object]]:
    """Per label, the reads the page makes through console/data.py, made directly (no Streamlit)."""
    s, dp, dd = Settings.from_env(), tables.data_pipelines, tables.data_destinations

    def start() -> datetime:  # the router checks the session on every render
        now = datetime.now(UTC)
        principal(engine, token, now)
        return now

    def overview_page() -> object:
        now = start()
        check_all(s.database_url, s.warehouse_url, None, None)
        runs.runs(engine, statuses=["running"], limit=50)
        runs.runs(engine, statuses=["failed", "crashed"], since=now - timedelta(days=7), limit=10)
        return overview.overview(engine, now)

    def pipelines_page() -> object:
        now = start()
        table = pipelines.pipelines(engine, now)
        cols = ("name", "schedule_cron", "schedule_timezone", "schedule_interval_seconds")
        spec_schedules([DeclaredSchedule(*r) for r in table.select(cols).iter_rows()], now)
        pipelines.pipeline_detail(engine, name := table["name"][0])
        runs.runs(engine, pipeline=name, limit=60)
        return find_pipeline(s.pipelines_dir, name, reading=True)

    def run_page() -> object:
        pipelines.pipelines(engine, start())
        return runs.run_detail(engine, runs.runs(engine, limit=100)["id"][0])

    def wh(pipeline: str) -> sa.Engine:  # data.warehouse_engine: the spec names the warehouse
        find_pipeline(s.pipelines_dir, pipeline, reading=True)
        return warehouse

    def waiting() -> dict[tuple[str, str], int]:
        query = sa.select(dp.c.name, dd.c.table_name).join(dp, dp.c.id == dd.c.pipeline_id)
        with engine.connect() as conn:  # data._destinations
            targets = conn.execute(query.where(dp.c.is_active).order_by(dp.c.name, dd.c.table_name)).all()
        counts = {(p, t): quarantine.counts(wh(p), p, t) for p, t in targets}
        return {k: int(v.filter(v["status"] == "quarantined")["rows"].sum()) for k, v in counts.items()}

    def quality_page(section: str) -> Callable[[], object]:
        def go() -> object:
            now = start()
            pipelines.pipelines(engine, now)
            checks = quality.checks(engine, now - timedelta(days=30))
            if section == "Top issues":
                return quality.top_issues(checks, limit=20)
            if section == "By source":
                return quality.by_source(engine, checks)
            if section == "Recommendations":
                return quality.recommendations(engine, checks, now, waiting())
            if section == "Quarantine":
                (p, t), _ = max(waiting().items(), key=lambda kv: kv[1])
                return quarantine.rows(wh(p), p, t, status="quarantined", limit=100, offset=0)
            quality.score_trend(engine, now - timedelta(days=30))
            quality.trend_by(checks, "table_name")
            quality.trend_by(checks, "dimension")
            return quality.latest_by(checks, "dimension")

        return go

    def lineage_page() -> object:
        pipelines.pipelines(engine, start())
        graph = lineage.lineage_graph(engine, None)
        tables_ = [n for n in graph.nodes.values() if n.kind == "table"]
        chosen = min(tables_, key=lambda n: (n.label, n.dataset)).id  # the picker's first option
        graph.tables(graph.upstream(chosen))
        graph.tables(graph.downstream(chosen))
        return graph.depth(), graph.table_edges()  # what lineage.layout() reads

    def alerts_page() -> object:
        now = start()
        mtta_mttr(history(engine, since=now - timedelta(days=30)))
        active = history(engine, since=now - timedelta(days=3650), statuses=ACTIVE)
        if active:
            deliveries(engine, int(active[0]["id"]))
        return active_silences(engine, now)

    out = {"overview": overview_page, "pipelines": pipelines_page, "run": run_page}
    out |= {"quality": quality_page("Trends")} | {f"quality: {x}": quality_page(x) for x in SECTIONS}
    return out | {"lineage": lineage_page, "alerts": alerts_page}


def measure(engine: sa.Engine, warehouse: sa.Engine, repeat: int, failures: dict[str, str]) -> Timings:
    import streamlit as st
    from streamlit.logger import set_log_level
    from streamlit.testing.v1 import AppTest

    set_log_level("error")  # not "No runtime found" for every cached read
    now, user = datetime.now(UTC), f"bench{uuid.uuid4().hex[:8]}"
    add_user(engine, user, "data_analyst", PASSWORD, now)
    token = login(engine, user, PASSWORD, now)
    baseline, out = reads(engine, warehouse, token), timings()
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["hw_token"] = token

    def timed(label: str, into: dict[str, list[float]]) -> None:
        mark = time.perf_counter()
        at.run()
        into[label].append(ms(mark))
        if at.exception and label not in failures:  # loudly, once a page (Streamlit prints the trace)
            failures[label] = " | ".join(str(e.value) for e in at.exception)
            print(f"ERROR: {label} raised: {failures[label]}")

    def cold_warm_reads(label: str, into: Timings) -> None:
        st.cache_data.clear()
        timed(label, into["cold"])
        timed(label, into["warm"])
        mark = time.perf_counter()
        baseline[label]()
        into["reads"][label].append(ms(mark))

    timed("sign-in", defaultdict(list))
    for rep in range(repeat + 1):  # the first round is untimed: imports, first Plotly figures
        into = out if rep else timings()
        for page in PAGES:
            at.switch_page(f"app_pages/{page}.py")
            cold_warm_reads(page, into)
            if page == "quality":
                for section in SECTIONS:
                    at.radio(key="quality_section").set_value(section)
                    cold_warm_reads(f"quality: {section}", into)
                at.radio(key="quality_section").set_value("Trends").run()
    return out


def report(big: Timings, small: Timings, total: int, repeat: int, failures: dict[str, str]) -> None:
    def med(d: dict[str, list[float]]) -> dict[str, float]:
        return {k: statistics.median(v) for k, v in d.items()}

    cold, warm, rd, six = med(big["cold"]), med(big["warm"]), med(big["reads"]), med(small["cold"])
    cols = ["page", "cold ms", "warm ms", "reads ms", "cold/reads", "6-run ms", f"{total / 1000:g}k/6"]
    print(f"\n{total:,} runs; medians of {repeat}\n{cols[0]:<26}" + "".join(f"{c:>11}" for c in cols[1:]))
    for k in cold:
        cells = [f"{cold[k]:,.0f}", f"{warm[k]:,.0f}", f"{rd[k]:,.0f}", f"{cold[k] / rd[k]:.1f}"]
        cells += [f"{six[k]:,.0f}", f"{cold[k] / six[k]:.2f}"]
        print(f"{k:<26}" + "".join(f"{c:>11}" for c in cells) + ("  RAISED" if k in failures else ""))
    print("cold: cache cleared, switch_page + run; warm: run again; reads: the page's data calls alone")
    slowest = max(cold, key=lambda k: cold[k])
    verdict = "yes" if cold[slowest] < TARGET_MS and not failures else "NO"
    print(
        f"every cold render under {TARGET_MS:,.0f} ms: {verdict} (slowest {slowest}: {cold[slowest]:,.0f} ms)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the store after the copies")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of every render (median shown)")
    parser.add_argument("--keep", type=Path, help="build the store in this (new) folder and keep it")
    args = parser.parse_args(argv)
    began, failures = time.perf_counter(), dict[str, str]()
    root = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="hw_bench_console_"))
    try:
        specs = prepare(root)
        mark = time.perf_counter()
        run_examples(specs)
        print(f"example runs incl. Prefect harness start: {ms(mark) / 1000:.1f} s")
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
        report(big, small, args.runs, args.repeat, failures)
        store.dispose()
        warehouse.dispose()
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    for label, error in failures.items():
        print(f"ERROR: {label} raised (its times are not valid): {error}")
    print(f"total runtime {time.perf_counter() - began:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    raise SystemExit(main())
