"""Upsert 3.37M flights rows into PostgreSQL through a Headwater pipeline (the real Prefect flow) and,
in the same run, through a hand-written baseline: raw COPY into a TEMP staging table + one
INSERT ... ON CONFLICT. Prints rows/s for both and the ratio headwater/baseline (target >= 0.7).

Speed is measured, never asserted: the exit code only reflects correctness (both targets hold the
same rows). Run from the repository root:

    .venv/bin/python bench/etl.py

Environment:
    HEADWATER_BENCH_PG_URL  admin URL of the PostgreSQL server (default postgres@127.0.0.1:5432); a
                            throwaway database hw_bench_<random> is created there and dropped at the end.
    PREFECT_HOME            default bench/.data/prefect_home, so the first run pays Prefect's one-off
                            database set-up (~40 s, untimed) and later runs reuse it.
    PREFECT_SERVER_ANALYTICS_ENABLED  default false (the temporary server's telemetry needs the internet).

Fairness, in order:
- a warm-up flow run (1,000 rows into flights_warmup) first, untimed: it starts Prefect's temporary
  server, imports everything and creates the table whose column types the baseline table copies
  (CREATE TABLE ... (LIKE flights_warmup INCLUDING ALL): the same frame schema, the same DDL);
- every case starts from a settled database: VACUUM (ANALYZE) and CHECKPOINT first, so no case pays
  for an earlier one's dirty pages or for an autovacuum of its rows;
- pass 1 loads into empty targets (all inserts; Headwater creates its table, as on a first load);
  pass 2 upserts the same, unchanged rows again. Pass 2 has two baselines: one that skips unchanged
  rows as Headwater does (DO UPDATE ... WHERE ROW(...) IS DISTINCT FROM ROW(...): the like-for-like
  reference for the ratio), and the plain DO UPDATE that rewrites every row, run last;
- the order of the two sides alternates (B H | H B in odd repetitions, H B | B H in even ones) and
  every case runs --repeat times (default 3); the table shows the median. The machine is shared, so
  single timings vary by tens of percent.
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import psycopg2
import sqlalchemy as sa
from flights_data import DATA_DIR, KEY, PARQUET, ROWS, prepare_flights

WARMUP_PARQUET = DATA_DIR / "flights_1k.parquet"
WARMUP_ROWS = 1_000
COPY_CHUNK_ROWS = 250_000
TARGET_RATIO = 0.7
DEFAULT_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
PIPELINE = "flights_bench"
WARMUP_PIPELINE = "flights_warmup"
HW_TABLE = "flights_bench"
BASELINE_TABLE = "flights_baseline"
WARMUP_TABLE = "flights_warmup"
SUM_COLUMNS = ("dep_delay", "arr_delay", "distance", KEY)

SPEC = """\
name: {name}
type: etl
sources:
  flights: {{kind: file, path: {path}}}
steps:
  - {{name: extract_flights, type: extract, source: flights}}
  - name: load_flights
    type: load
    depends_on: [extract_flights]
    destination: {{table: {table}, mode: upsert, primary_key: [{key}]}}
"""


@dataclass
class Case:
    """One timed case, measured once per repetition."""

    name: str
    reference: str | None = None
    """The case whose rows/s this one is compared with (the ratio column)."""
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def rate(self) -> float:
        return ROWS / self.median


# ------------------------------------------------------------------ data


def prepare_data() -> None:
    """The shared 3.37M-row parquet, and a 1,000-row head of it for the warm-up."""
    prepare_flights()
    pl.scan_parquet(PARQUET).head(WARMUP_ROWS).collect().write_parquet(WARMUP_PARQUET)


def expected_sums() -> dict[str, int]:
    return pl.scan_parquet(PARQUET).select(pl.col(c).sum() for c in SUM_COLUMNS).collect().row(0, named=True)


# ------------------------------------------------------------------ database


@contextmanager
def throwaway_database(admin_url: str) -> Iterator[sa.URL]:
    """A fresh database on the admin URL's server, dropped (WITH (FORCE)) however the bench ends."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"hw_bench_{secrets.token_hex(4)}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield sa.make_url(admin_url).set(database=name)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            print(f"dropped database {name}")
    finally:
        admin.dispose()


def dsn(url: sa.URL) -> str:
    """A libpq URI for psycopg2 from a SQLAlchemy URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def settle(database_dsn: str, tables: list[str]) -> None:
    """VACUUM (ANALYZE) the tables and CHECKPOINT: no timed case pays for the one before."""
    conn = psycopg2.connect(database_dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            for table in tables:
                cur.execute("SELECT to_regclass(%s)", (table,))
                if cur.fetchone()[0] is not None:
                    cur.execute(f'VACUUM (ANALYZE) "{table}"')
            cur.execute("CHECKPOINT")
    finally:
        conn.close()


def table_facts(database_dsn: str, table: str) -> dict[str, Any]:
    """Row count, sums of SUM_COLUMNS, and the column types (name, type, nullable) in order."""
    conn = psycopg2.connect(database_dsn)
    try:
        with conn.cursor() as cur:
            sums = ", ".join(f'sum("{c}")::bigint' for c in SUM_COLUMNS)
            cur.execute(f'SELECT count(*), {sums} FROM "{table}"')
            count, *values = cur.fetchone()
            cur.execute(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                "WHERE table_name = %s ORDER BY ordinal_position",
                (table,),
            )
            columns = cur.fetchall()
        return {"rows": count, "sums": dict(zip(SUM_COLUMNS, values, strict=True)), "columns": columns}
    finally:
        conn.close()


# ------------------------------------------------------------------ baseline


def baseline_upsert(database_dsn: str, table: str, *, skip_unchanged: bool) -> dict[str, float]:
    """Parquet -> Polars -> CSV chunks -> COPY into a TEMP staging table -> one INSERT ... ON CONFLICT
    -> commit. Returns the seconds of each phase and the total."""
    times: dict[str, float] = {}
    started = time.perf_counter()
    frame = pl.read_parquet(PARQUET)
    times["read"] = time.perf_counter() - started
    cols = ", ".join(f'"{c}"' for c in frame.columns)
    others = [c for c in frame.columns if c != KEY]
    sets = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in others)
    guard = ""
    if skip_unchanged:
        old = ", ".join(f't."{c}"' for c in others)
        new = ", ".join(f'EXCLUDED."{c}"' for c in others)
        guard = f" WHERE ROW({old}) IS DISTINCT FROM ROW({new})"
    conn = psycopg2.connect(database_dsn)
    try:
        with conn.cursor() as cur:
            mark = time.perf_counter()
            cur.execute(f'CREATE TEMPORARY TABLE bench_stage (LIKE "{table}") ON COMMIT DROP')
            copy_sql = f"COPY bench_stage ({cols}) FROM STDIN WITH (FORMAT csv)"
            for offset in range(0, frame.height, COPY_CHUNK_ROWS):
                buf = io.BytesIO()
                frame.slice(offset, COPY_CHUNK_ROWS).write_csv(buf, include_header=False)
                buf.seek(0)
                cur.copy_expert(copy_sql, buf)
            times["copy"] = time.perf_counter() - mark
            mark = time.perf_counter()
            cur.execute(
                f'INSERT INTO "{table}" AS t ({cols}) SELECT {cols} FROM bench_stage '
                f'ON CONFLICT ("{KEY}") DO UPDATE SET {sets}{guard}'
            )
            times["insert"] = time.perf_counter() - mark
        mark = time.perf_counter()
        conn.commit()
        times["commit"] = time.perf_counter() - mark
    finally:
        conn.close()
    times["total"] = time.perf_counter() - started
    return times


# ------------------------------------------------------------------ headwater


def write_spec(folder: Path, name: str, parquet: Path, table: str) -> None:
    (folder / f"{name}.yaml").write_text(SPEC.format(name=name, path=parquet, table=table, key=KEY))


Steps = dict[str, dict[str, Any]]


def run_headwater(pipeline: str, spec_folder: Path) -> tuple[float, dict[str, Any], Steps]:
    """(wall seconds of the flow call, the flow's result, the run's steps by name from the store)."""
    from flows.pipeline import flow_for
    from headwater.store import Store

    started = time.perf_counter()
    result: dict[str, Any] = flow_for(pipeline)(pipeline=pipeline, pipelines_dir=str(spec_folder))
    seconds = time.perf_counter() - started
    store = Store(os.environ["HEADWATER_DATABASE_URL"])
    try:
        steps = {s["step_name"]: s for s in store.steps(result["run_id"])}
    finally:
        store.dispose()
    if result["status"] != "completed":
        raise RuntimeError(f"pipeline {pipeline} ended {result['status']}: {result}")
    return seconds, result, steps


def describe_run(label: str, seconds: float, result: dict[str, Any], steps: Steps) -> None:
    parts = [f"{name} {s['duration_seconds']:.2f} s" for name, s in steps.items()]
    print(
        f"{label}: flow {seconds:.2f} s ({', '.join(parts)}); inserted {result['records_inserted']:,}, "
        f"updated {result['records_updated']:,}, loaded {result['records_loaded']:,}"
    )


# ------------------------------------------------------------------ report


def print_table(cases: dict[str, Case]) -> None:
    width = max(len(name) for name in cases)
    print(f"\n{'case':<{width}}  {'rows':>10}  {'median s':>8}  {'min s':>7}  {'rows/s':>10}  {'ratio':>5}")
    for case in cases.values():
        ratio = f"{case.rate / cases[case.reference].rate:5.2f}" if case.reference else " " * 5
        print(
            f"{case.name:<{width}}  {ROWS:>10,}  {case.median:>8.2f}  {min(case.seconds):>7.2f}  "
            f"{case.rate:>10,.0f}  {ratio}"
        )
    print(
        f"median of {len(next(iter(cases.values())).seconds)} repetition(s); ratio = rows/s of the case / "
        f"rows/s of the baseline of the same pass (target >= {TARGET_RATIO})"
    )


def check_facts(expected: dict[str, int], facts: dict[str, dict[str, Any]]) -> bool:
    ok = True
    print(
        f"\nexpected (parquet): rows {ROWS:,}; " + ", ".join(f"sum({k}) {v:,}" for k, v in expected.items())
    )
    for table, fact in facts.items():
        print(
            f"{table:<17} rows {fact['rows']:,}; "
            + ", ".join(f"sum({k}) {v:,}" for k, v in fact["sums"].items())
        )
        if fact["rows"] != ROWS or fact["sums"] != expected:
            print(f"ERROR: {table} does not hold the expected rows")
            ok = False
    if facts[HW_TABLE]["columns"] != facts[BASELINE_TABLE]["columns"]:
        print(
            f"ERROR: column types differ: {facts[HW_TABLE]['columns']} vs {facts[BASELINE_TABLE]['columns']}"
        )
        ok = False
    return ok


# ------------------------------------------------------------------ main

B1 = "1 empty: baseline"
H1 = "1 empty: headwater flow"
H1_LOAD = "1 empty: headwater load step"
B2 = "2 unchanged: baseline skip-same"
H2 = "2 unchanged: headwater flow"
H2_LOAD = "2 unchanged: headwater load step"
B2_ALL = "2 unchanged: baseline update-all"


class Bench:
    """The timed cases against one throwaway database; every case starts from a settled database."""

    def __init__(self, database_dsn: str, spec_folder: Path) -> None:
        self.dsn, self.spec_folder = database_dsn, spec_folder
        self.cases = {
            c.name: c
            for c in (
                Case(B1),
                Case(H1, B1),
                Case(H1_LOAD, B1),
                Case(B2),
                Case(H2, B2),
                Case(H2_LOAD, B2),
                Case(B2_ALL),
            )
        }
        self.failures: list[str] = []

    def reset(self) -> None:
        """Pass 1 starts without flights_bench (Headwater creates it, as on a first load) and with an
        empty flights_baseline of the same column types."""
        conn = psycopg2.connect(self.dsn)
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP TABLE IF EXISTS "{HW_TABLE}", "{BASELINE_TABLE}"')
                cur.execute(f'CREATE TABLE "{BASELINE_TABLE}" (LIKE "{WARMUP_TABLE}" INCLUDING ALL)')
            conn.commit()
        finally:
            conn.close()

    def baseline(self, case: str, *, skip_unchanged: bool) -> None:
        settle(self.dsn, [HW_TABLE, BASELINE_TABLE])
        times = baseline_upsert(self.dsn, BASELINE_TABLE, skip_unchanged=skip_unchanged)
        self.cases[case].seconds.append(times["total"])
        print(f"  {case}: " + ", ".join(f"{k} {v:.2f} s" for k, v in times.items()))

    def headwater(self, case: str, load_case: str, *, inserted: int) -> None:
        settle(self.dsn, [HW_TABLE, BASELINE_TABLE])
        seconds, result, steps = run_headwater(PIPELINE, self.spec_folder)
        self.cases[case].seconds.append(seconds)
        self.cases[load_case].seconds.append(steps["load_flights"]["duration_seconds"])
        describe_run(f"  {case}", seconds, result, steps)
        if (result["records_inserted"], result["records_updated"]) != (inserted, 0):
            self.failures.append(
                f"{case}: inserted {result['records_inserted']:,}, updated "
                f"{result['records_updated']:,}; expected {inserted:,} and 0"
            )

    def repetition(self, index: int) -> None:
        """Pass 1 (empty targets) then pass 2 (the same rows again); the order of the two sides
        alternates between repetitions and between the passes of one repetition."""
        print(f"repetition {index + 1}")
        self.reset()
        first = [
            lambda: self.baseline(B1, skip_unchanged=False),
            lambda: self.headwater(H1, H1_LOAD, inserted=ROWS),
        ]
        second = [
            lambda: self.headwater(H2, H2_LOAD, inserted=0),
            lambda: self.baseline(B2, skip_unchanged=True),
        ]
        if index % 2:
            first.reverse()
            second.reverse()
        for case in first + second:
            case()
        # last: it rewrites every row, which would leave the tables unequal for the cases above
        self.baseline(B2_ALL, skip_unchanged=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of every case (median shown)")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    admin_url = os.environ.get("HEADWATER_BENCH_PG_URL") or DEFAULT_ADMIN_URL
    os.environ.setdefault("PREFECT_HOME", str(DATA_DIR / "prefect_home"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no telemetry calls (offline)
    prepare_data()
    expected = expected_sums()
    with tempfile.TemporaryDirectory(prefix="hw_bench_") as tmp, throwaway_database(admin_url) as url:
        home = Path(tmp)
        spec_folder = home / "pipelines"
        spec_folder.mkdir()
        write_spec(spec_folder, PIPELINE, PARQUET, HW_TABLE)
        write_spec(spec_folder, WARMUP_PIPELINE, WARMUP_PARQUET, WARMUP_TABLE)
        os.environ["HEADWATER_HOME"] = str(home)
        os.environ["HEADWATER_DATABASE_URL"] = f"sqlite:///{home / 'store.db'}"
        os.environ["HEADWATER_WAREHOUSE_URL"] = url.render_as_string(hide_password=False)
        database_dsn = dsn(url)
        print(f"database {url.database}; PREFECT_HOME {os.environ['PREFECT_HOME']}")

        # warm-up (untimed): Prefect's temporary server, imports, and flights_warmup, whose column
        # types the baseline table copies (the same frame schema Headwater derives for flights_bench)
        mark = time.perf_counter()
        seconds, result, steps = run_headwater(WARMUP_PIPELINE, spec_folder)
        print(f"warm-up incl. Prefect server start: {time.perf_counter() - mark:.1f} s")
        describe_run("warm-up", seconds, result, steps)

        bench = Bench(database_dsn, spec_folder)
        for index in range(args.repeat):
            bench.repetition(index)
        facts = {t: table_facts(database_dsn, t) for t in (HW_TABLE, BASELINE_TABLE)}
    print_table(bench.cases)
    print(
        f"pass 2 headwater flow vs baseline update-all: {bench.cases[H2].rate / bench.cases[B2_ALL].rate:.2f}"
    )
    ok = check_facts(expected, facts)
    for failure in bench.failures:
        print(f"ERROR: {failure}")
    print(f"total runtime {time.perf_counter() - began:.1f} s")
    return 0 if ok and not bench.failures else 1


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    raise SystemExit(main())
