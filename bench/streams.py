"""Stream processors against a hand-written drain, in one run (issue 13's acceptance line):

1. throughput: N vitals device events (headwater.streams.vitals, 5% with an out-of-range vital)
   pre-loaded into a private Redis stream, drained by 2 processes doing plain redis-py XREADGROUP
   COUNT 1000 + XACK (the baseline), then the same N events in a fresh stream through 2
   `headwater stream run` processes (consumers c1, c2: parse, validate, window, sink to a private
   PostgreSQL database with the exactly-once commit log). Events/s of both, from launching the
   processes to the last XACK (baseline) or the last commit (Headwater; the --idle-exit wait is not
   counted), and the ratio; the issue's targets: ratio >= 0.4 and >= 50,000 events/s. The loaded
   rows and dead letters are checked against N (each event once: a row or a rule dead letter).
2. latency: 10,000 events/s offered for --latency-seconds by a producer process stamping each
   event's `timestamp` with the wall clock, 2 processors running; per loaded row, the commit time of
   the batch that loaded it minus its event time: p50 / p99 / max (target p99 < 1 s).
3. alert latency: pipelines/vitals_monitor.yaml with 2 consumers at the offered rate, one impossible
   heart rate in 500 events (each for a patient of its own), the alerts sent to an HTTP receiver
   started by the bench: per critical alert, its arrival minus the event's time (target p99 < 5 s).

Commit times come from the private database: before the processors start, the bench creates
headwater_stream_commits and a deferred constraint trigger on it that copies each committed id range
with clock_timestamp() at COMMIT into bench_commit_times (the processors prune their own commit log;
the copy is kept). Every run uses its own stream keys and database and removes them at the end.
Speed is measured, never asserted: the exit code says every event was accounted for. Run from the
repository root:

    .venv/bin/python bench/streams.py [--events 500000] [--latency-seconds 30] [--rate 10000]
                                      [--spec vitals_windows|vitals_stream] [--batch-size N]
                                      [--skip-throughput] [--skip-latency] [--skip-alerts]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import polars as pl  # noqa: E402
import redis  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from headwater.streams.commits import commits  # noqa: E402
from headwater.streams.vitals import RANGES, produce, vitals_events  # noqa: E402

PG_ADMIN = os.environ.get("HEADWATER_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("HEADWATER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CONSUMERS = ("c1", "c2")
HEADWATER = Path(sys.executable).parent / "headwater"

# The commit time of each id range, taken at COMMIT by a deferred trigger (kept after the processor
# prunes headwater_stream_commits).
CAPTURE_SQL = """
CREATE TABLE bench_commit_times (first_id text NOT NULL, last_id text NOT NULL, consumer text,
                                 committed_at timestamptz NOT NULL);
CREATE FUNCTION bench_commit_time() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO bench_commit_times VALUES (NEW.first_id, NEW.last_id, NEW.consumer, clock_timestamp());
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER bench_commit_time AFTER INSERT ON headwater_stream_commits
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bench_commit_time();
"""

# The baseline consumer: what one writes with redis-py alone. Prints its count and last ack time.
DRAIN = """
import json, sys, time
import redis
url, stream, group, consumer = sys.argv[1:5]
client = redis.Redis.from_url(url)
acked, last = 0, time.time()
while True:
    reply = client.xreadgroup(group, consumer, {stream: ">"}, count=1000)
    if not reply:
        break
    ids = [entry_id for _, items in reply for entry_id, _fields in items]
    client.xack(stream, group, *ids)
    acked += len(ids)
    last = time.time()
print(json.dumps({"acked": acked, "last": last}))
"""


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_good(event: dict[str, Any]) -> bool:
    m = event["measurements"]
    values = {"heart_rate": m["heart_rate"], "systolic": m["blood_pressure"]["systolic"]}
    values["temperature"] = m["temperature"]
    return all(RANGES[k][0] <= v <= RANGES[k][1] for k, v in values.items())


def nearest_rank(values: pl.Series, q: float) -> float:
    """The smallest value with at least q of the values at or below it."""
    ordered = values.sort()
    return float(ordered[max(math.ceil(q * len(ordered)) - 1, 0)])


@contextmanager
def private_database() -> Iterator[str]:
    """A throwaway PostgreSQL database with the commit-time capture installed; dropped at the end."""
    name = f"hw_bench_streams_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    try:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            commits.create(conn)  # the processors' CommitLog.ensure finds it (checkfirst)
            conn.exec_driver_sql(CAPTURE_SQL)
        engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def private_stream(client: redis.Redis, label: str) -> Iterator[str]:
    """A fresh stream key; the stream, its dead-letter stream and the dead-letter id hash are
    deleted at the end."""
    key = f"hw_bench:{label}:{uuid.uuid4().hex[:8]}"
    try:
        yield key
    finally:
        client.delete(key, f"{key}:dead", f"{key}:dead:late_ids")


@dataclass
class Preloaded:
    count: int
    good: int
    seconds: float


def preload(client: redis.Redis, key: str, count: int) -> Preloaded:
    """`count` vitals events into `key` as fast as Redis takes them (pipelined by produce)."""
    good = [0]

    def counted() -> Iterator[dict[str, Any]]:
        for event in vitals_events(count):
            good[0] += is_good(event)
            yield event

    start = time.perf_counter()
    written = produce(client, key, counted(), chunk=5000)
    return Preloaded(written, good[0], time.perf_counter() - start)


# ---- 1a. the baseline: 2 processes of redis-py XREADGROUP + XACK ----


def baseline(client: redis.Redis, count: int) -> tuple[float, int]:
    """Seconds from launching 2 drain processes to the last XACK, and the entries acknowledged."""
    with private_stream(client, "raw") as key:
        loaded = preload(client, key, count)
        client.xgroup_create(key, "raw", id="0")
        start = time.time()
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", DRAIN, REDIS_URL, key, "raw", consumer],
                stdout=subprocess.PIPE,
                text=True,
            )
            for consumer in CONSUMERS
        ]
        results = [json.loads(p.communicate(timeout=600)[0]) for p in procs]
        acked = sum(r["acked"] for r in results)
        assert acked == loaded.count, f"the baseline acknowledged {acked} of {loaded.count}"
        return max(r["last"] for r in results) - start, acked


# ---- 1b and 2. Headwater: 2 `headwater stream run` processes ----


@dataclass
class Processors:
    """Consumer processes of one spec against one private stream and database."""

    spec: str
    key: str
    warehouse: str
    home: Path
    batch_size: int | None = None
    idle_exit: float = 2.0
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    launched: float = 0.0
    extra_env: dict[str, str] = field(default_factory=dict)

    def write_spec(self) -> int:
        """A copy of pipelines/<spec>.yaml reading the private stream with its own group and
        dead-letter stream; the batch size it runs with."""
        text = (REPO / "pipelines" / f"{self.spec}.yaml").read_text()
        text = re.sub(r"(?m)^(\s+stream:) \S+$", rf"\1 {self.key}", text, count=1)  # the source's
        text = text.replace('stream: "vitals:30s"', f'stream: "{self.key}:30s"')  # vitals_monitor's publish
        text = re.sub(r"(?m)^(\s+group:) \S+$", r"\1 bench", text)
        text = re.sub(r"(?m)^(\s+dead_letter:) \S+$", rf"\1 {self.key}:dead", text)
        if self.batch_size is not None:
            text = re.sub(r"(?m)^(\s+batch_size:) \d+$", rf"\1 {self.batch_size}", text)
        found = re.search(r"(?m)^\s+batch_size: (\d+)$", text)
        folder = self.home / "pipelines"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{self.spec}.yaml").write_text(text)
        return int(found.group(1)) if found else 1000

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
        env.update(
            HEADWATER_HOME=str(self.home / "home"),
            HEADWATER_WAREHOUSE_URL=self.warehouse,
            HEADWATER_REDIS_URL=REDIS_URL,
            HEADWATER_PIPELINES=str(self.home / "pipelines"),
        )
        env.setdefault("HASH_SALT", "bench-salt-0123456789abcdef")  # vitals_monitor's pseudonyms
        env.update(self.extra_env)
        return env

    def migrate_store(self) -> None:
        """The store's tables made once here, not by two processes racing on one SQLite file."""
        from headwater.settings import Settings
        from headwater.store import Store

        settings = Settings.from_env(self.env())
        settings.ensure_home()
        Store(settings.database_url).migrate().dispose()

    def launch(self) -> None:
        self.launched = time.time()
        for consumer in CONSUMERS:
            log = (self.home / f"{consumer}.log").open("wb")
            command = [str(HEADWATER), "stream", "run", self.spec, "--consumer", consumer]
            command += ["--idle-exit", str(self.idle_exit), "--pipelines", str(self.home / "pipelines")]
            self.procs.append(
                subprocess.Popen(command, env=self.env(), stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
            )

    def wait(self, timeout: float) -> list[str]:
        """Wait for both to exit (SIGTERM after `timeout`); a line per failed process."""
        deadline = time.time() + timeout
        failures = []
        for consumer, proc in zip(CONSUMERS, self.procs, strict=True):
            try:
                proc.wait(timeout=max(deadline - time.time(), 1))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
            if proc.returncode != 0:
                tail = (self.home / f"{consumer}.log").read_text(errors="replace").strip().splitlines()
                failures.append(f"{consumer} exited {proc.returncode}: {' | '.join(tail[-3:])}")
        return failures

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                with suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=60)


def commit_times(engine: sa.Engine) -> pl.DataFrame:
    """The captured ranges as integer keys (ms * 1e6 + seq) with their commit time (epoch s)."""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT first_id, last_id, extract(epoch FROM committed_at)::float8 FROM bench_commit_times"
        ).all()
    schema = {"first_id": pl.String, "last_id": pl.String, "committed": pl.Float64}
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    return frame.with_columns(first=_id_number(pl.col("first_id")), last=_id_number(pl.col("last_id"))).sort(
        "first"
    )


def _id_number(col: pl.Expr) -> pl.Expr:
    """An entry id ("1700000000000-3", or the commit log's zero-padded form) as one sortable Int64."""
    parts = col.str.split_exact("-", 1)
    return parts.struct.field("field_0").cast(pl.Int64) * 1_000_000 + parts.struct.field("field_1").cast(
        pl.Int64
    )


def table_exists(engine: sa.Engine, table: str) -> bool:
    return sa.inspect(engine).has_table(table)


def dead_letters(client: redis.Redis, key: str) -> tuple[dict[str, int], int]:
    """The dead-letter stream's entries by reason, and how many repeat a source id already there."""
    reasons: dict[str, int] = {}
    sources: set[bytes] = set()
    repeated = 0
    after = "-"
    while True:
        batch: Any = client.xrange(f"{key}:dead", min=after, max="+", count=10_000)
        for _, fields in batch:
            reason = fields[b"reason"].decode()
            reasons[reason] = reasons.get(reason, 0) + 1
            repeated += fields[b"source_id"] in sources
            sources.add(fields[b"source_id"])
        if len(batch) < 10_000:
            return reasons, repeated
        after = "(" + batch[-1][0].decode()  # exclusive start


def overlapping(times: pl.DataFrame) -> int:
    """Committed ranges that overlap the one before (an entry committed twice); 0 when exactly once."""
    return times.sort("first").select((pl.col("first") <= pl.col("last").shift(1).cum_max()).sum()).item()


@dataclass
class Throughput:
    seconds: float
    startup: float
    rows: int
    distinct: int
    expected_good: int
    dead: dict[str, int]
    dead_repeated: int
    overlapping: int
    windows: int | None
    pending: int
    failures: list[str]

    def accounted(self, count: int) -> bool:
        """Each event once: a loaded row or a rule dead letter (late ones are loaded as rows too)."""
        rejected = sum(v for k, v in self.dead.items() if k != "late")
        return (
            not self.failures
            and self.rows == self.distinct == self.expected_good
            and self.rows + rejected == count
            and self.pending == 0
            and self.dead_repeated == self.overlapping == 0
        )


def headwater_throughput(client: redis.Redis, args: argparse.Namespace) -> tuple[Throughput, int]:
    with (
        private_stream(client, "hw") as key,
        private_database() as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        loaded = preload(client, key, args.events)
        run = Processors(args.spec, key, url, Path(tmp), args.batch_size, idle_exit=2.0)
        batch_size = run.write_spec()
        run.migrate_store()
        try:
            run.launch()
            failures = run.wait(timeout=600)
        finally:
            run.stop()
        engine = sa.create_engine(url)
        try:
            times = commit_times(engine)
            table = "vitals"
            with engine.connect() as conn:
                rows, distinct = (0, 0)
                if table_exists(engine, table):
                    rows, distinct = conn.exec_driver_sql(
                        f"SELECT count(*), count(DISTINCT _entry_id) FROM {table}"
                    ).one()
                windows = None
                if table_exists(engine, "vitals_30s"):
                    windows = conn.exec_driver_sql("SELECT count(*) FROM vitals_30s").scalar_one()
        finally:
            engine.dispose()
        try:
            pending = int(client.xpending(key, "bench")["pending"])
        except redis.ResponseError:  # no group: the processors failed before creating it
            pending = -1
        last = float(times["committed"].max()) if times.height else float("nan")  # type: ignore[arg-type]
        first = float(times["committed"].min()) if times.height else float("nan")  # type: ignore[arg-type]
        dead, repeated = dead_letters(client, key)
        result = Throughput(
            seconds=last - run.launched,
            startup=first - run.launched,
            rows=rows,
            distinct=distinct,
            expected_good=loaded.good,
            dead=dead,
            dead_repeated=repeated,
            overlapping=overlapping(times),
            windows=windows,
            pending=pending,
            failures=failures,
        )
        return result, batch_size


# ---- 2. latency at an offered rate ----


def offer(url: str, key: str, rate: float, seconds: float, out: Any) -> None:
    """A device fleet: `rate` events/s for `seconds`, each stamped with the wall clock when made,
    written in small pipelined chunks (every ~5 ms). Sends (started, finished, sent) to `out`."""
    client = redis.Redis.from_url(url)
    total = int(rate * seconds)
    events = vitals_events(total, seed=1)
    pipe = client.pipeline(transaction=False)
    began = time.time()
    sent = 0
    while sent < total:
        now = time.time()
        due = min(total, int((now - began) * rate) + 1)
        if due > sent:
            stamp = iso(now)
            for _ in range(due - sent):
                event = next(events)
                event["timestamp"] = stamp
                pipe.xadd(key, {"payload": json.dumps(event, separators=(",", ":"))})
            pipe.execute()
            sent = due
        time.sleep(max(0.0, 0.005 - (time.time() - now)))
    out.send((began, time.time(), sent))


@dataclass
class Latency:
    offered: float
    achieved: float
    sent: int
    measured: int
    rows: int
    p50: float
    p99: float
    worst: float
    failures: list[str]


def latency(client: redis.Redis, args: argparse.Namespace) -> Latency:
    with (
        private_stream(client, "lat") as key,
        private_database() as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        run = Processors(args.spec, key, url, Path(tmp), args.batch_size, idle_exit=5.0)
        run.write_spec()
        run.migrate_store()
        engine = sa.create_engine(url)
        try:
            run.launch()
            # warm up: 200 events stamped now, until committed (processes started, tables created)
            warm = list(vitals_events(200, seed=2))
            for event in warm:
                event["timestamp"] = iso(time.time())
            produce(client, key, iter(warm))
            deadline = time.time() + 120
            while time.time() < deadline:
                with engine.connect() as conn:
                    done = conn.exec_driver_sql("SELECT count(*) FROM bench_commit_times").scalar_one()
                if done or any(p.poll() is not None for p in run.procs):
                    break
                time.sleep(0.1)
            context = multiprocessing.get_context("spawn")
            receive, send = context.Pipe(duplex=False)
            producer = context.Process(
                target=offer, args=(REDIS_URL, key, args.rate, args.latency_seconds, send)
            )
            producer.start()
            began, finished, sent = receive.recv()
            producer.join()
            failures = run.wait(timeout=args.latency_seconds + 300)
        finally:
            run.stop()
        try:
            times = commit_times(engine)
            found: Any = []
            if table_exists(engine, "vitals"):
                with engine.connect() as conn:
                    found = conn.exec_driver_sql(
                        'SELECT _entry_id, extract(epoch FROM "timestamp")::float8 FROM vitals '
                        'WHERE "timestamp" >= to_timestamp(%(began)s)',
                        {"began": began - 0.001},
                    ).all()
            rows = pl.DataFrame(
                found, schema={"_entry_id": pl.String, "event_time": pl.Float64}, orient="row"
            )
        finally:
            engine.dispose()
    joined = (
        rows.with_columns(id=_id_number(pl.col("_entry_id")))
        .sort("id")
        .join_asof(times.select("first", "last", "committed"), left_on="id", right_on="first")
        .filter(pl.col("id") <= pl.col("last"))
        .with_columns(latency=pl.col("committed") - pl.col("event_time"))
    )
    lat = joined["latency"]
    nan = float("nan")
    return Latency(
        offered=args.rate,
        achieved=sent / (finished - began),
        sent=sent,
        measured=joined.height,
        rows=rows.height,
        p50=nearest_rank(lat, 0.50) if len(lat) else nan,
        p99=nearest_rank(lat, 0.99) if len(lat) else nan,
        worst=float(lat.max()) if len(lat) else nan,  # type: ignore[arg-type]
        failures=failures,
    )


# ---- 3. alert latency: an out-of-range vital to the message at a local webhook receiver ----


def offer_with_alerts(url: str, key: str, rate: float, seconds: float, every: int, out: Any) -> None:
    """As `offer`, and every `every`-th event an impossible heart rate (250) for a patient of its
    own (ALERT<n>), so that each opens an alert of its own (a repeat for one patient would re-fire the
    open alert without a message). Sends (started, finished, sent, bad) to `out`."""
    client = redis.Redis.from_url(url)
    total = int(rate * seconds)
    events = vitals_events(total, seed=3, bad_share=0.0)
    pipe = client.pipeline(transaction=False)
    began = time.time()
    sent = bad = 0
    while sent < total:
        now = time.time()
        due = min(total, int((now - began) * rate) + 1)
        if due > sent:
            stamp = iso(now)
            for i in range(sent, due):
                event = next(events)
                event["timestamp"] = stamp
                if i % every == every - 1:
                    event["patient_id"] = f"ALERT{i}"
                    event["measurements"]["heart_rate"] = 250
                    bad += 1
                pipe.xadd(key, {"payload": json.dumps(event, separators=(",", ":"))})
            pipe.execute()
            sent = due
        time.sleep(max(0.0, 0.005 - (time.time() - now)))
    out.send((began, time.time(), sent, bad))


@contextmanager
def receiver() -> Iterator[tuple[str, list[tuple[float, dict[str, Any]]]]]:
    """A local HTTP server taking apprise's json:// posts: (its json:// URL, [(arrival, body)])."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    posts: list[tuple[float, dict[str, Any]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            posts.append((time.time(), json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"json://127.0.0.1:{server.server_address[1]}/hook", posts
    finally:
        server.shutdown()
        server.server_close()


_FIRED = re.compile(r"\[critical\] heart_rate_out_of_range \(patient_id [^)]*\) at (\S+): ")


def alert_latency(client: redis.Redis, args: argparse.Namespace) -> str | None:
    """pipelines/vitals_monitor.yaml (pseudonymise, alert on every event, ranges, anomaly scores,
    30 s windows, publish) with 2 consumers and its alerts sent to a receiver started here, at the
    offered rate with one impossible heart rate in 500 events, each for a patient of its own: per
    critical alert, its arrival at the receiver minus the event's time (in the message)."""
    seconds = min(args.latency_seconds, 20.0)
    with (
        private_stream(client, "alerts") as key,
        private_database() as url,
        tempfile.TemporaryDirectory() as tmp,
        receiver() as (hook, posts),
    ):
        folder = Path(tmp) / "alerts"
        folder.mkdir()
        (folder / "channels.yaml").write_text(f"channels:\n  hook: {{url: '{hook}'}}\n")
        (folder / "rules.yaml").write_text(
            "severity_channels: {critical: [hook], warning: [hook], info: [hook]}\nrules: []\n"
        )
        extra = {"HEADWATER_ALERTS": str(folder), "HASH_SALT": "bench-salt-0123456789abcdef"}
        run = Processors("vitals_monitor", key, url, Path(tmp), args.batch_size, 5.0, extra_env=extra)
        run.write_spec()
        run.migrate_store()
        try:
            run.launch()
            warm = list(vitals_events(200, seed=2, bad_share=0.0))
            for event in warm:
                event["timestamp"] = iso(time.time())
            produce(client, key, iter(warm))
            engine = sa.create_engine(url)
            deadline = time.time() + 120
            while time.time() < deadline and not table_exists(engine, "vitals_monitored"):
                if any(p.poll() is not None for p in run.procs):
                    break
                time.sleep(0.1)
            engine.dispose()
            context = multiprocessing.get_context("spawn")
            receive, send = context.Pipe(duplex=False)
            producer = context.Process(
                target=offer_with_alerts, args=(REDIS_URL, key, args.rate, seconds, 500, send)
            )
            producer.start()
            began, finished, sent, bad = receive.recv()
            producer.join()
            failures = run.wait(timeout=seconds + 300)
        finally:
            run.stop()
            client.delete(f"{key}:30s", f"{key}:30s:published")
        latencies = []
        for arrived, body in list(posts):
            for stamp in _FIRED.findall(str(body.get("message", ""))):
                latencies.append(arrived - datetime.fromisoformat(stamp).timestamp())
    if failures:
        return "FAILED " + "; ".join(failures)
    lat = pl.Series(latencies, dtype=pl.Float64)
    if not len(lat):
        return f"no critical alert arrived of {bad} sent"
    return (
        f"{len(lat)} of {bad} critical alerts arrived ({sent / (finished - began):,.0f} events/s offered "
        f"for {seconds:g} s, vitals_monitor, 2 consumers): event time -> receiver p50 "
        f"{nearest_rank(lat, 0.5) * 1000:,.0f} ms  p99 {nearest_rank(lat, 0.99) * 1000:,.0f} ms  "
        f"max {float(lat.max()) * 1000:,.0f} ms   target p99 < 5 s: "  # type: ignore[arg-type]
        f"{'yes' if nearest_rank(lat, 0.99) < 5 else 'NO'}"
    )


# ---- the run ----


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000, help="events for the throughput runs")
    parser.add_argument("--latency-seconds", type=float, default=30.0, help="how long the rate is offered")
    parser.add_argument("--rate", type=float, default=10_000.0, help="events/s offered in the latency run")
    parser.add_argument(
        "--spec",
        choices=["vitals_windows", "vitals_stream", "vitals_monitor"],
        default="vitals_windows",
        help="the shipped spec the processors run (vitals_stream: no window step)",
    )
    parser.add_argument("--batch-size", type=int, help="override the spec's batch_size")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-alerts", action="store_true")
    args = parser.parse_args()
    client = redis.Redis.from_url(REDIS_URL)
    ok = True
    print(
        f"Stream processors: vitals device JSON ({args.spec}), {len(CONSUMERS)} consumer processes each, "
        f"2 cores shared with Redis and PostgreSQL"
    )
    if not args.skip_throughput:
        raw_seconds, _ = baseline(client, args.events)
        ours, batch_size = headwater_throughput(client, args)
        raw_rate, our_rate = args.events / raw_seconds, args.events / ours.seconds
        ratio = our_rate / raw_rate
        print(f"  throughput, {args.events:,} events pre-loaded")
        print(
            f"    raw redis-py XREADGROUP COUNT 1000 + XACK   {raw_seconds:7.2f} s  "
            f"{raw_rate:>10,.0f} events/s"
        )
        print(
            f"    headwater stream run (batch_size {batch_size})    {ours.seconds:7.2f} s  "
            f"{our_rate:>10,.0f} events/s"
        )
        print(
            f"    ratio headwater / raw                        {ratio:7.2f}   "
            f"target >= 0.4: {'yes' if ratio >= 0.4 else 'NO'}; "
            f">= 50,000 events/s: {'yes' if our_rate >= 50_000 else 'NO'}"
        )
        print(
            f"      of which launch to first commit {ours.startup:.2f} s (imports, connections); "
            f"first to last commit: {args.events / (ours.seconds - ours.startup):,.0f} events/s"
        )
        dead = ", ".join(
            f"{k} {v:,}" + (" (also loaded as rows)" if k == "late" else "")
            for k, v in sorted(ours.dead.items())
        )
        windows = "" if ours.windows is None else f", {ours.windows:,} windows in vitals_30s"
        good = ours.accounted(args.events)
        print(
            f"    correctness: {ours.rows:,} rows ({ours.distinct:,} distinct ids, {ours.expected_good:,} "
            f"expected) + dead letters ({dead or 'none'}){windows}; pending {ours.pending}; "
            f"entries committed twice {ours.overlapping}, dead-lettered twice {ours.dead_repeated}: "
            f"{'each event once' if good else 'MISMATCH'}"
        )
        for failure in ours.failures:
            print(f"    FAILED {failure}")
        ok &= good
    if not args.skip_latency:
        lat = latency(client, args)
        print(
            f"  latency, {lat.offered:,.0f} events/s offered for {args.latency_seconds:g} s "
            f"(achieved {lat.achieved:,.0f}/s, {lat.sent:,} sent)"
        )
        print(
            f"    event time -> warehouse commit over {lat.measured:,} loaded rows: "
            f"p50 {lat.p50 * 1000:,.0f} ms  p99 {lat.p99 * 1000:,.0f} ms  max {lat.worst * 1000:,.0f} ms   "
            f"target p99 < 1 s: "
            f"{'yes' if lat.p99 < 1 else 'NO'}"
        )
        for failure in lat.failures:
            print(f"    FAILED {failure}")
        ok &= not lat.failures and lat.measured == lat.rows > 0
    if args.skip_alerts:
        print("  alert latency: skipped")
    else:
        measured = alert_latency(client, args)
        print(f"  alert latency: {measured or 'not measured'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
