"""The HTTP API under load: 50 concurrent clients against a store holding 10,000 runs (the example
pipelines run once for real by `headwater demo`, then their runs, steps and quality checks copied
with new ids over the last 30 days, one in eight failed). Two phases: 50 dashboard users who
pause about a second between requests, then 50 clients firing back to back (the most one API
process serves here). Each client walks the endpoints a dashboard reads (pipelines, a pipeline's
executions with stats, one execution in detail, the quality dashboard, lineage); per endpoint:
requests, errors, p50 / p95 / p99 latency, and the ratio of its p50 to the p50 of `GET /health`
measured under the same load (the cost of FastAPI, uvicorn and the network here, with no store
read). The seed's target: p95 under 200 ms.

Speed is measured, never asserted: the exit code only says every answer was a 200. Run from the
repository root:

    .venv/bin/python bench/api.py [--runs 10000] [--clients 50] [--requests 24] [--think 1]
                                  [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def fill(database_url: str, runs: int) -> int:
    """Copy the demo's runs (with their steps and checks) until the store holds `runs` runs."""
    import sqlalchemy as sa

    from headwater.store.tables import data_quality_checks, pipeline_executions, step_executions

    engine = sa.create_engine(database_url)
    rng = random.Random(7)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        seeds = [dict(r._mapping) for r in conn.execute(sa.select(pipeline_executions)).all()]
        steps = defaultdict(list)
        for r in conn.execute(sa.select(step_executions)).all():
            steps[r.execution_id].append({k: v for k, v in r._mapping.items() if k != "id"})
        checks = defaultdict(list)
        for r in conn.execute(sa.select(data_quality_checks)).all():
            checks[r.execution_id].append({k: v for k, v in r._mapping.items() if k != "id"})
        have = len(seeds)
        batch_runs: list[dict[str, Any]] = []
        batch_steps: list[dict[str, Any]] = []
        batch_checks: list[dict[str, Any]] = []
        for _ in range(runs - have):
            seed = rng.choice(seeds)
            new_id = str(uuid.uuid4())
            started = now - timedelta(seconds=rng.uniform(60, 30 * 86400))
            shift = started - seed["started_at"].replace(tzinfo=UTC)
            failed = rng.random() < 0.125
            run = {
                **seed,
                "id": new_id,
                "started_at": started,
                "ended_at": started + timedelta(seconds=seed["duration_seconds"] or 1),
                "status": "failed" if failed else seed["status"],
                "error_type": "TransientError" if failed else seed["error_type"],
                "error_message": "the source did not answer (copied run)"
                if failed
                else seed["error_message"],
            }
            batch_runs.append(run)
            for s in steps[seed["id"]]:
                batch_steps.append(
                    {
                        **s,
                        "execution_id": new_id,
                        "started_at": s["started_at"] and s["started_at"].replace(tzinfo=UTC) + shift,
                        "ended_at": s["ended_at"] and s["ended_at"].replace(tzinfo=UTC) + shift,
                    }
                )
            for c in checks[seed["id"]]:
                batch_checks.append(
                    {**c, "execution_id": new_id, "checked_at": c["checked_at"].replace(tzinfo=UTC) + shift}
                )
        conn.execute(sa.insert(pipeline_executions), batch_runs)
        if batch_steps:
            conn.execute(sa.insert(step_executions), batch_steps)
        if batch_checks:
            conn.execute(sa.insert(data_quality_checks), batch_checks)
    with engine.connect() as conn:
        total = int(conn.execute(sa.select(sa.func.count()).select_from(pipeline_executions)).scalar_one())
    engine.dispose()
    return total


async def client(
    url: str,
    token: str,
    paths: list[str],
    requests: int,
    think: float,
    out: dict[str, list[float]],
    errors: dict[str, int],
) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as http:
        for i in range(requests):
            path = paths[i % len(paths)]
            start = time.perf_counter()
            response = await http.get(path)
            elapsed = (time.perf_counter() - start) * 1000
            key = path.split("?")[0]
            out[key].append(elapsed)
            if response.status_code != 200:
                errors[key] += 1
            if think:
                await asyncio.sleep(think * random.uniform(0.5, 1.5))


async def load(
    url: str, token: str, paths: list[str], clients: int, requests: int, think: float
) -> tuple[Any, Any, float]:
    out: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    start = time.perf_counter()
    await asyncio.gather(
        *(
            client(
                url, token, paths[i % len(paths) :] + paths[: i % len(paths)], requests, think, out, errors
            )
            for i in range(clients)
        )
    )
    return out, errors, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the store (default 10000)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--requests", type=int, default=24, help="requests per client (default 24)")
    parser.add_argument(
        "--think", type=float, default=1.0, help="seconds a dashboard user pauses (default 1)"
    )
    parser.add_argument(
        "--database-url", help="a PostgreSQL database for the store (default: embedded SQLite)"
    )
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="hw_bench_api_"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEADWATER_", "PREFECT_API_URL"))}
    env["HEADWATER_HOME"] = str(home)
    if args.database_url:
        env["HEADWATER_DATABASE_URL"] = args.database_url
    headwater = [sys.executable, "-m", "headwater.cli"]
    print(f"filling a store in {home} (headwater demo, then copies of its runs) ...", flush=True)
    demo = subprocess.run([*headwater, "demo"], env=env, capture_output=True, text=True, cwd=REPO)
    if demo.returncode != 0:
        print(demo.stdout[-2000:], demo.stderr[-2000:])
        return 1
    database_url = args.database_url or f"sqlite:///{home / 'headwater.db'}"
    total = fill(database_url, args.runs)
    made = subprocess.run(
        [*headwater, "tokens", "create", "--name", "bench", "--json"], env=env, capture_output=True, text=True
    )
    token = json.loads(made.stdout)["token"]
    port = free_port()
    api = subprocess.Popen(
        [*headwater, "api", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        headers = {"Authorization": f"Bearer {token}"}
        run_id = httpx.get(
            f"{url}/api/data-pipelines/flights_clean/executions?limit=1", headers=headers
        ).json()["executions"][0]["id"]
        paths = [
            "/health",
            "/api/data-pipelines",
            "/api/data-pipelines/flights_clean/executions?limit=50",
            f"/api/executions/{run_id}",
            "/api/data-quality/dashboard?days=7",
            "/api/lineage/carrier_monthly",
        ]
        for path in paths:  # warm: caches, connection pools
            httpx.get(f"{url}{path}", headers=headers, timeout=120)
        phases = [
            (f"{args.clients} dashboard users (each pauses ~{args.think:g} s between requests)", args.think),
            (f"{args.clients} clients back to back (no pause: the most this process serves)", 0.0),
        ]
        results = [
            (title, *asyncio.run(load(url, token, paths, args.clients, args.requests, think)))
            for title, think in phases
        ]
    finally:
        api.terminate()
        api.wait(timeout=30)
    store = "PostgreSQL" if args.database_url else "embedded SQLite"
    failed = False
    print(f"\n{total:,} runs in the store ({store}); one API process (uvicorn)")
    for title, out, errors, wall in results:
        n = sum(len(v) for v in out.values())
        print(f"\n{title}: {n} requests in {wall:.1f} s ({n / wall:.0f}/s)")
        base = pct(out["/health"], 0.5)
        print(
            f"{'endpoint':<48}{'n':>6}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'p50/health':>12}"
        )
        for path, values in out.items():
            shown = path if len(path) < 46 else path[:44] + "…"
            print(
                f"{shown:<48}{len(values):>6}{errors.get(path, 0):>8}{pct(values, 0.5):>9.1f}"
                f"{pct(values, 0.95):>9.1f}{pct(values, 0.99):>9.1f}{pct(values, 0.5) / base:>11.1f}x"
            )
        all_values = [v for k, vs in out.items() if k != "/health" for v in vs]
        print(f"all /api requests: p95 {pct(all_values, 0.95):.1f} ms (seed target: p95 < 200 ms)")
        failed = failed or any(errors.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
