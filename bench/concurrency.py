"""50 pipeline runs at once on a real Prefect server with 2 process workers (`headwater up` on a
throwaway home): how long a run waits from its scheduled time to running and to completion (p50,
p95), the overhead of a run against the flow's own duration, that the work pool's and the
deployment's concurrency limits held (the most runs seen running at once), and that every run is
recorded exactly once. Then the wall time of `headwater run` with the server up, against the same
command with no server (a temporary one).

Speed is measured, never asserted: the exit code only reflects correctness (every run completed and
recorded once, limits held). Run from the repository root:

    .venv/bin/python bench/concurrency.py [--runs 50] [--workers 2] [--pool-limit 4] [--deployment-limit 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SPEC = """\
name: bench_small
description: 12 vendor prices, the smallest real pipeline.
concurrency: {limit}
sources:
  feed: {{kind: file, path: data/vendor_prices.csv}}
steps:
  - {{name: extract, type: extract, source: feed}}
  - name: load
    type: load
    depends_on: [extract]
    destination: {{table: bench_small, mode: append}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    edges = sorted(
        [(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1])
    )
    now = peak = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


def headwater(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "headwater.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


CHAIN = """\
name: bench_chain_{n}
sources:
  feed: {{kind: file, path: data/vendor_prices.csv}}
steps:
  - {{name: extract, type: extract, source: feed}}
{transforms}  - name: load
    type: load
    depends_on: [{last}]
    destination: {{table: bench_chain_{n}, mode: overwrite}}
"""


def chain_spec(n: int) -> str:
    """extract -> n trivial transforms in a chain -> load."""
    lines, last = [], "extract"
    for i in range(1, n + 1):
        lines.append(
            f"  - {{name: t{i}, type: transform, depends_on: [{last}], ops: [{{derive: {{c{i}: '1'}}}}]}}\n"
        )
        last = f"t{i}"
    return CHAIN.format(n=n, transforms="".join(lines), last=last)


def per_step_overhead(env: dict[str, str], folder: Path, home: Path) -> bool:
    """The same pipeline with 0 and 20 extra trivial steps, 5 runs each with the server up: what one
    more step costs a run (the median difference of the runs' recorded durations, / 20), against the
    steps' own recorded work."""
    from headwater.settings import Settings
    from headwater.store import Store

    for n in (0, 20):
        (folder / f"bench_chain_{n}.yaml").write_text(chain_spec(n))
    store = Store(Settings.from_env({"HEADWATER_HOME": str(home)}).database_url)
    durations: dict[int, list[float]] = {0: [], 20: []}
    own: list[float] = []
    try:
        for _ in range(5):
            for n in (0, 20):
                if headwater(env, "run", f"bench_chain_{n}", "--pipelines", str(folder)).returncode != 0:
                    print(f"ERROR: bench_chain_{n} failed")
                    return False
                (run,) = store.runs(f"bench_chain_{n}", limit=1)
                durations[n].append(float(run["duration_seconds"]))
                if n == 20:
                    own += [
                        float(s["duration_seconds"] or 0)
                        for s in store.steps(run["id"])
                        if s["step_name"].startswith("t")
                    ]
    finally:
        store.dispose()
    step = (statistics.median(durations[20]) - statistics.median(durations[0])) / 20
    print(
        f"per-step cost with the server up: {step * 1000:.0f} ms per extra step "
        f"(runs of 2 steps: median {statistics.median(durations[0]):.2f} s; of 22 steps: "
        f"{statistics.median(durations[20]):.2f} s); a trivial step's own recorded work: median "
        f"{statistics.median(own) * 1000:.0f} ms, so the overhead is "
        f"{(step - statistics.median(own)) * 1000:.0f} ms"
    )
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool-limit", type=int, default=4, help="the work pool's concurrency limit")
    parser.add_argument("--deployment-limit", type=int, default=3, help="the spec's concurrency")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="hw_bench_conc_"))
    home, folder = root / "home", root / "pipelines"
    (folder / "data").mkdir(parents=True)
    shutil.copy(REPO / "pipelines" / "data" / "vendor_prices.csv", folder / "data")
    (folder / "bench_small.yaml").write_text(SPEC.format(limit=args.deployment_limit))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_URL", "HEADWATER_"))}
    env.update(HEADWATER_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    ok = True
    started = time.perf_counter()
    up = headwater(
        env,
        "up",
        "--workers",
        str(args.workers),
        "--no-console",
        "--port",
        str(free_port()),
        "--pipelines",
        str(folder),
    )
    if up.returncode != 0:
        print(up.stdout, up.stderr)
        return 1
    print(f"headwater up: {time.perf_counter() - started:.1f} s (fresh home: Prefect's database set up)")
    state = json.loads((home / "run" / "up.json").read_text())
    os.environ["PREFECT_API_URL"] = env["PREFECT_API_URL"] = state["api_url"]
    try:
        from prefect import get_client
        from prefect.client.schemas.actions import WorkPoolUpdate
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        with get_client(sync_client=True) as client:
            client.update_work_pool("headwater", WorkPoolUpdate(concurrency_limit=args.pool_limit))
            deployment = client.read_deployment_by_name("bench_small/bench_small")
            run_ids = [str(uuid.uuid4()) for _ in range(args.runs)]
            submitted = time.perf_counter()
            flow_runs = [
                client.create_flow_run_from_deployment(
                    deployment.id, parameters={"pipeline": "bench_small", "run_id": run_id}
                )
                for run_id in run_ids
            ]
            print(f"submitted {args.runs} flow runs in {time.perf_counter() - submitted:.1f} s")
            ids = [f.id for f in flow_runs]
            deadline = time.monotonic() + 1800
            while time.monotonic() < deadline:
                runs = client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=200
                )
                final = [
                    r
                    for r in runs
                    if r.state_type and r.state_type.value in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
                ]
                if len(final) == len(ids):
                    break
                time.sleep(2)
        all_done = time.perf_counter() - submitted

        from headwater.settings import Settings
        from headwater.store import Store

        store = Store(Settings.from_env({"HEADWATER_HOME": str(home)}).database_url)
        records = [r for r in store.runs("bench_small", limit=10_000)]
        store.dispose()
        by_id: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            by_id.setdefault(record["id"], []).append(record)
        states = [r.state_type.value for r in runs]
        completed = states.count("COMPLETED")
        recorded_once = sum(1 for i in run_ids if len(by_id.get(i, [])) == 1)
        run_of = {f.id: run_id for f, run_id in zip(flow_runs, run_ids, strict=True)}
        to_running, to_done, overhead, flow_seconds, own = [], [], [], [], []
        for r in runs:
            if not (r.start_time and r.end_time and r.expected_start_time):
                continue
            to_running.append((r.start_time - r.expected_start_time).total_seconds())
            to_done.append((r.end_time - r.expected_start_time).total_seconds())
            flow_seconds.append((r.end_time - r.start_time).total_seconds())
            record = by_id.get(run_of[r.id], [{}])[0]
            if record.get("duration_seconds") is not None:
                own.append(float(record["duration_seconds"]))
                overhead.append(flow_seconds[-1] - own[-1])
        peak = most_at_once([(r.start_time, r.end_time) for r in runs if r.start_time and r.end_time])
        limit = min(args.pool_limit, args.deployment_limit)

        def show(label: str, text: str) -> None:
            print(f"{label:<32}{text}")

        def spread(values: list[float], digits: int = 1) -> str:
            return f"p50 {pct(values, 0.5):6.{digits}f} s   p95 {pct(values, 0.95):6.{digits}f} s"

        print(
            f"\n{args.runs} runs on {args.workers} process workers; pool limit {args.pool_limit}, "
            f"deployment limit {args.deployment_limit}"
        )
        kinds = ", ".join(f"{s} {states.count(s)}" for s in sorted(set(states)))
        show("completed", f"{completed}/{args.runs}   (states: {kinds})")
        show("recorded exactly once", f"{recorded_once}/{args.runs}   (store rows: {len(records)})")
        show("most running at once", f"{peak}   (limit {limit})")
        show(f"all {args.runs} done after", f"{all_done:.1f} s  ({args.runs / all_done:.2f} runs/s)")
        show("scheduled -> running", spread(to_running))
        show("scheduled -> completed", spread(to_done))
        show("flow run, running -> completed", spread(flow_seconds, 2))
        show("the run's own work (store)", spread(own, 2))
        show("per-run overhead (flow - own)", spread(overhead, 2))
        if completed != args.runs or recorded_once != args.runs or peak > limit:
            print("ERROR: not every run completed and was recorded once, or a limit was exceeded")
            ok = False

        walls = []
        for _ in range(5):
            mark = time.perf_counter()
            done = headwater(env, "run", "bench_small", "--pipelines", str(folder))
            walls.append(time.perf_counter() - mark)
            ok = ok and done.returncode == 0
        print(
            f"\nheadwater run with the server up: median {statistics.median(walls):.2f} s "
            f"(min {min(walls):.2f}, max {max(walls):.2f}) over {len(walls)} runs"
        )
        ok = per_step_overhead(env, folder, home) and ok
    finally:
        down = headwater(env, "down")
        print(down.stdout.strip())
    cold_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    mark = time.perf_counter()
    cold = headwater(cold_env, "run", "bench_small", "--pipelines", str(folder))
    print(
        f"headwater run with no server (a temporary one): {time.perf_counter() - mark:.2f} s "
        f"(exit {cold.returncode})"
    )
    shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
