"""10x data growth, measured: the same pipeline (a flights CSV -> upsert into PostgreSQL by flight_id)
on 1x, 3x and 10x the bench's flights (3.37M, 10.1M, 33.7M rows), each in a fresh throwaway database,
each as `headwater run` in its own process: rows/s, and the peak RSS of the process that ran the flow
(the run's own record, and the largest child process by getrusage). Targets: peak RSS under 2 GB at
10x, and rows/s at 10x at least 0.8x that at 1x (the baseline, measured in the same run).

Speed is measured, never asserted: the exit code only reflects correctness (each target holds exactly
the rows of its CSV: count and sums). Run from the repository root:

    .venv/bin/python bench/scale.py [--scales 1,3,10]

The CSVs (~0.4 GB per 1x) are written once under bench/.data/ with Polars' streaming sink.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from flights_data import DATA_DIR, KEY, PARQUET, ROWS, prepare_flights

DEFAULT_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
SPEC = """\
name: scale_{n}x
sources:
  flights: {{kind: file, path: {csv}, infer_schema_length: 10000}}
steps:
  - {{name: extract, type: extract, source: flights}}
  - name: load
    type: load
    depends_on: [extract]
    destination: {{table: flights, mode: upsert, primary_key: [{key}]}}
"""
SUMS = ("distance", KEY)


def csv_for(n: int) -> Path:
    path = DATA_DIR / f"flights_{n}x.csv"
    if path.is_file():
        return path
    started = time.perf_counter()
    parts = [pl.scan_parquet(PARQUET).with_columns(pl.col(KEY) + k * ROWS) for k in range(n)]
    tmp = path.with_suffix(".csv.tmp")
    pl.concat(parts).sink_csv(tmp)
    tmp.replace(path)
    print(
        f"wrote {path.name} ({n * ROWS:,} rows, {path.stat().st_size / 2**30:.2f} GiB) "
        f"in {time.perf_counter() - started:.0f} s"
    )
    return path


def expected(n: int) -> dict[str, int]:
    base = pl.scan_parquet(PARQUET).select(pl.col("distance").sum(), pl.col(KEY).sum()).collect().row(0)
    # flight_id + k*ROWS over k = 0..n-1: the id sum grows by ROWS * ROWS * k
    return {
        "rows": n * ROWS,
        "distance": base[0] * n,
        KEY: base[1] * n + ROWS * ROWS * (n * (n - 1) // 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", default="1,3,10")
    args = parser.parse_args()
    scales = [int(x) for x in args.scales.split(",")]
    admin_url = os.environ.get("HEADWATER_BENCH_PG_URL", DEFAULT_ADMIN_URL)
    prepare_flights()
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    results: dict[int, dict[str, float]] = {}
    ok = True
    with tempfile.TemporaryDirectory(prefix="hw_bench_scale_") as tmp:
        root = Path(tmp)
        for n in scales:
            csv = csv_for(n)
            folder = root / f"pipelines_{n}"
            folder.mkdir()
            (folder / f"scale_{n}x.yaml").write_text(SPEC.format(n=n, csv=csv, key=KEY))
            name = f"hw_bench_{secrets.token_hex(4)}"
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
            env = {
                **os.environ,
                "HEADWATER_HOME": str(root / f"home_{n}"),
                "HEADWATER_WAREHOUSE_URL": url,
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            }
            try:
                before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
                started = time.perf_counter()
                proc = subprocess.run(
                    [sys.executable, "-m", "headwater.cli", "run", f"scale_{n}x", "--pipelines", str(folder)],
                    env=env,
                    capture_output=True,
                    text=True,
                )
                wall = time.perf_counter() - started
                child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB, max so far
                from headwater.settings import Settings
                from headwater.store import Store

                store = Store(Settings.from_env(env).database_url)
                (run,) = store.runs(f"scale_{n}x", limit=1)
                steps = {s["step_name"]: s for s in store.steps(run["id"])}
                store.dispose()
                engine = sa.create_engine(url)
                with engine.connect() as conn:
                    got = conn.execute(
                        sa.text(f'SELECT count(*), sum(distance)::bigint, sum("{KEY}")::bigint FROM flights')
                    ).one()
                engine.dispose()
            finally:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            want = expected(n)
            right = proc.returncode == 0 and tuple(got) == (want["rows"], want["distance"], want[KEY])
            if not right:
                print(proc.stdout[-2000:], proc.stderr[-2000:])
                print(f"ERROR: {n}x: target holds {tuple(got)}, expected {tuple(want.values())}")
                ok = False
            flow = float(run["duration_seconds"] or wall)
            results[n] = {
                "rows": want["rows"],
                "wall": wall,
                "flow": flow,
                "rate": want["rows"] / flow,
                "run_peak_mb": float(run["peak_memory_mb"] or 0),
                "child_peak_mb": max(child_peak, before) / 1024,
                "streamed": float(bool((steps.get("load") or {}).get("metrics", {}).get("streamed"))),
            }
            r = results[n]
            print(
                f"{n:>3}x: {r['rows']:>12,} rows  run {r['flow']:7.1f} s  {r['rate']:>10,.0f} rows/s  "
                f"peak RSS {r['run_peak_mb']:7.0f} MB (largest process so far {r['child_peak_mb']:.0f} MB)  "
                f"streamed: {bool(r['streamed'])}",
                flush=True,
            )
    admin.dispose()
    base = results.get(1)
    print(f"\n{'scale':>5}  {'rows':>12}  {'run s':>7}  {'rows/s':>10}  {'vs 1x':>5}  {'peak RSS MB':>11}")
    for n, r in results.items():
        ratio = f"{r['rate'] / base['rate']:5.2f}" if base else "    -"
        line = f"{n:>4}x  {r['rows']:>12,}  {r['flow']:>7.1f}  {r['rate']:>10,.0f}  {ratio}"
        print(f"{line}  {r['run_peak_mb']:>11.0f}")
    print("targets: peak RSS < 2048 MB at 10x; rows/s at 10x >= 0.8 x rows/s at 1x")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
