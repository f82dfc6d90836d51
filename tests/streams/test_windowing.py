"""Windows inside the stream processor, against the real Redis and the real PostgreSQL warehouse: the
vitals_windows example's 30-second per-patient windows (vitals_30s) equal a plain-Python computation with the
same event-time rules over the events the stream holds, out-of-order and late ones included; the late
events (and those without an event time) are exactly the dead letters with reason late /
no_event_time; the same after `headwater stream run` is SIGKILLed several times mid-stream and
restarted (the window state is committed with the rows and the last id, so no window is
double-counted or lost); bad window specs are refused at load with file:line and the fix."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from headwater.errors import SpecError
from headwater.settings import Settings
from headwater.spec.loader import load_pipeline
from headwater.streams.plan import StreamPlan
from headwater.streams.processor import StreamProcessor
from headwater.streams.vitals import RANGES
from tests.streams.redis_keys import REDIS_URL, rds_fixture, stream_key_fixture  # noqa: F401
from tests.streams.test_processor import REPO, broker, dead_letters
from tests.streams.test_stream_cli import _cli, _env

SIZE_US, LATENESS_US = 30_000_000, 10_000_000  # the vitals example: tumbling 30s, allowed_lateness 10s
T0 = datetime(2026, 12, 1, tzinfo=UTC)
FIGURES_6000 = (237, 251, 61)  # (closed windows, late, no event time) of disordered_vitals(6000, seed=11)
KILLS = 4
HOPPING_4000 = (465, 188, 46)  # the same, of disordered_vitals(4000, seed=23) with a 10 s hop


def windows_spec(tmp_path: Path, stream: str, batch_size: int) -> Path:
    """The vitals_windows example, reading `stream`, dead-lettering to `<stream>:dead`."""
    text = (REPO / "pipelines" / "vitals_windows.yaml").read_text()
    text = text.replace("stream: vitals\n", f"stream: {stream}\n").replace(
        "batch_size: 1000", f"batch_size: {batch_size}"
    )
    path = tmp_path / "vitals_windows.yaml"
    path.write_text(text.replace("dead_letter: vitals_windows:dead", f"dead_letter: {stream}:dead"))
    return path


def disordered_vitals(count: int, seed: int, patients: int = 12) -> list[dict[str, Any]]:
    """Device events 100 ms apart in arrival order, with event times moved back: most by < 2 s (out
    of order), 8% by 5-15 s (out of order, some past a window's lateness), 3% by 40-120 s (late),
    1% without a time; 4% break a range."""
    rng = random.Random(seed)
    events = []
    for i in range(count):
        patient = rng.randrange(patients)
        r = rng.random()
        back = rng.uniform(0, 2) if r < 0.88 else rng.uniform(5, 15) if r < 0.96 else rng.uniform(40, 120)
        moment = T0 + timedelta(milliseconds=100 * i) - timedelta(milliseconds=round(back * 1000))
        stamp = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        heart_rate = rng.randint(55, 120) if rng.random() >= 0.04 else 250
        events.append(
            {
                "patient_id": f"P{patient:05d}",
                "device_id": f"D{patient:05d}",
                "timestamp": None if rng.random() < 0.01 else stamp,
                "measurements": {
                    "heart_rate": heart_rate,
                    "blood_pressure": {"systolic": rng.randint(95, 160), "diastolic": rng.randint(60, 95)},
                    "temperature": round(rng.uniform(96.5, 100.5), 1),
                },
                "location": {"ward": f"W{patient % 3}", "bed": patient},
            }
        )
    return events


def write(rds: redis.Redis, stream: str, events: list[dict[str, Any]]) -> None:
    pipe = rds.pipeline(transaction=False)
    for event in events:
        pipe.xadd(stream, {"payload": json.dumps(event)})
    pipe.execute()


def expected_windows(
    rds: redis.Redis, stream: str, hop_us: int = SIZE_US
) -> tuple[dict[tuple[str, datetime], tuple[Any, ...]], dict[str, str]]:
    """Independently of the processor, in stream (arrival) order: the closed windows by (patient,
    window_start) -> (count, mean hr, max hr, max systolic, min temp, max temp), and the events the
    windows refuse by entry id -> reason. Rule-breaking events never reach the windows. Windows of
    30 s every `hop_us` (tumbling: every 30 s); an event late for any of its windows is refused."""
    windows: dict[tuple[str, int], list[tuple[int, int, float]]] = defaultdict(list)
    refused: dict[str, str] = {}
    watermark: int | None = None
    for entry_id, fields in rds.xrange(stream):
        event = json.loads(fields["payload"])
        m = event["measurements"]
        values = {"heart_rate": m["heart_rate"], "systolic": m["blood_pressure"]["systolic"]}
        values["temperature"] = m["temperature"]
        if any(not lo <= values[k] <= hi for k, (lo, hi) in RANGES.items()):
            continue
        if event["timestamp"] is None:
            refused[entry_id] = "no_event_time"
            continue
        t = datetime.fromisoformat(event["timestamp"])
        us = (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        for j in range(SIZE_US // hop_us):
            start = us // hop_us * hop_us - j * hop_us
            if watermark is not None and start + SIZE_US + LATENESS_US <= watermark:
                refused[entry_id] = "late"
            else:
                windows[(event["patient_id"], start)].append(
                    (values["heart_rate"], values["systolic"], values["temperature"])
                )
        watermark = us if watermark is None else max(watermark, us)
    assert watermark is not None
    closed = {}
    for (patient, start), rows in windows.items():
        if start + SIZE_US + LATENESS_US <= watermark:
            hr = [r[0] for r in rows]
            closed[(patient, datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=start))] = (
                len(rows),
                round(sum(hr) / len(hr), 9),
                max(hr),
                max(r[1] for r in rows),
                min(r[2] for r in rows),
                max(r[2] for r in rows),
            )
    return closed, refused


def loaded_windows(engine: sa.Engine) -> dict[tuple[str, datetime], tuple[Any, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT patient_id, window_start, window_end, event_count, heart_rate_mean, heart_rate_max, "
                "systolic_max, temperature_min, temperature_max FROM vitals_30s"
            )
        ).all()
    out = {}
    for r in rows:
        assert r.window_end - r.window_start == timedelta(seconds=30)
        out[(r.patient_id, r.window_start)] = (
            r.event_count,
            round(r.heart_rate_mean, 9),
            r.heart_rate_max,
            r.systolic_max,
            r.temperature_min,
            r.temperature_max,
        )
    assert len(out) == len(rows)
    return out


def refused_letters(rds: redis.Redis, stream: str) -> dict[str, str]:
    return {k: f["reason"] for k, f in dead_letters(rds, stream).items() if f["reason"] != "rules"}


@pytest.mark.redis
@pytest.mark.postgres
def test_windows_equal_an_independent_computation_with_late_events_dead_lettered(
    tmp_path: Path, pg_url: str, rds: redis.Redis, stream_key: str
) -> None:
    write(rds, stream_key, disordered_vitals(6000, seed=11))
    closed, refused = expected_windows(rds, stream_key)
    late = sum(r == "late" for r in refused.values())
    untimed = sum(r == "no_event_time" for r in refused.values())
    assert (len(closed), late, untimed) == FIGURES_6000
    plan = StreamPlan.of(load_pipeline(windows_spec(tmp_path, stream_key, batch_size=450)))
    engine = sa.create_engine(pg_url)
    first = StreamProcessor(plan, broker(plan, "c1"), engine).run(lambda: False, max_events=2500)
    assert first.events_read == 2500
    # a second processor (a restart) resumes from the window state committed with the last id
    stats = StreamProcessor(plan, broker(plan, "c1"), engine).run(lambda: False, idle_exit=0.5)
    assert first.events_read + stats.events_read == 6000
    assert loaded_windows(engine) == closed
    assert refused_letters(rds, stream_key) == refused
    some = dead_letters(rds, stream_key)[next(k for k, r in refused.items() if r == "late")]
    values = json.loads(some["values"])
    assert values["patient_id"][0] == "P" and set(values["patient_id"][1:-1]) == {"*"}  # pii: masked
    assert values["window_start"] and values["watermark"]
    with engine.connect() as conn:  # late events are still measurements: they are in vitals
        ids = {r[0] for r in conn.execute(sa.text("SELECT _entry_id FROM vitals"))}
    assert set(refused) <= ids
    engine.dispose()


def _windows_loaded(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("vitals_30s"):
            return 0
        return int(conn.execute(sa.text("SELECT count(*) FROM vitals_30s")).scalar_one())


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
def test_sigkilled_processor_counts_every_window_once(
    tmp_path: Path, hw_env: Settings, pg_url: str, rds: redis.Redis, stream_key: str
) -> None:
    write(rds, stream_key, disordered_vitals(40_000, seed=5, patients=40))
    closed, refused = expected_windows(rds, stream_key)
    env = _env(hw_env, pg_url)
    spec = windows_spec(tmp_path, stream_key, batch_size=200)
    engine = sa.create_engine(pg_url)
    run = _cli("stream", "run", "vitals_windows", "--pipelines", str(spec.parent), "--consumer", "c1")
    rng = random.Random(17)
    progress = []
    for _ in range(KILLS):
        proc = subprocess.Popen(run, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        before, deadline = _windows_loaded(engine), time.monotonic() + 60
        while _windows_loaded(engine) == before and time.monotonic() < deadline:  # until it is loading
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))  # then a random moment of its work
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        progress.append(_windows_loaded(engine))
    assert progress == sorted(set(progress)) and progress[-1] < len(closed), progress
    late = sum(r == "late" for r in refused.values())
    print(
        f"windows loaded at the {KILLS} kills: {progress} of {len(closed)}; "
        f"late {late}, no time {len(refused) - late}"
    )
    final = subprocess.run([*run, "--idle-exit", "2"], env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert loaded_windows(engine) == closed
    assert refused_letters(rds, stream_key) == refused
    assert rds.xpending(stream_key, "vitals_windows")["pending"] == 0
    engine.dispose()


BAD = """\
name: s
type: {type}
sources:
  events: {{kind: redis_stream, stream: k, group: g, payload: payload, columns: {{ts: {ts}}}}}
steps:
  - {{name: read, type: extract, source: events}}
  - name: per_minute
    type: window
    depends_on: [read]
    window: {window}
  - name: store
    type: load
    depends_on: [read]
    destination: {{table: t, mode: upsert, primary_key: [_entry_id]}}
  - name: store_windows
    type: load
    depends_on: [per_minute]
    destination: {destination}
"""
GOOD_WINDOW = "{kind: tumbling, size: 60s, time_column: ts, keys: [k], aggregations: {x: max}}"
GOOD_DEST = "{table: w, mode: upsert, primary_key: [k, window_start]}"


def _refusals(tmp_path: Path, **kw: str) -> list[str]:
    values = {"type": "streaming", "ts": "timestamptz", "window": GOOD_WINDOW, "destination": GOOD_DEST, **kw}
    path = tmp_path / "s.yaml"
    path.write_text(BAD.format(**values))
    with pytest.raises(SpecError) as exc:
        load_pipeline(path)
    return [
        f"{Path(p.file).name}:{p.line}: {p.field}: {p.message} (fix: {p.hint})" for p in exc.value.problems
    ]


def test_the_good_window_spec_loads(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(BAD.format(type="streaming", ts="timestamptz", window=GOOD_WINDOW, destination=GOOD_DEST))
    plan = StreamPlan.of(load_pipeline(path))
    assert plan.window is not None and plan.window_load is not None
    assert (plan.load.name, plan.window_load.name, plan.window.window.us("size")) == (
        "store",
        "store_windows",
        60_000_000,
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"window": "{kind: hopping, size: 60s, hop: 25s, time_column: ts}"},
            "s.yaml:10: steps[1].window: ",
        ),
        ({"window": "{kind: tumbling, size: 60s, time_column: ts, aggregations: {x: median}}"}, "s.yaml:10:"),
        (
            {"destination": "{table: w, mode: upsert, primary_key: [window_start]}"},
            "s.yaml:18: steps[3].destination.primary_key",
        ),
        ({"destination": "{table: w, mode: overwrite}"}, "s.yaml:18: steps[3].destination.mode"),
        ({"ts": "string"}, "s.yaml:10: steps[1].window.time_column"),
        ({"type": "etl"}, "s.yaml:8: steps[1].type"),
        ({"window": "{kind: session, gap: 5m, time_column: ts, keys: [ts]}"}, "s.yaml:10: steps[1].window: "),
    ],
)
def test_bad_window_specs_are_refused_with_file_line_and_fix(
    tmp_path: Path, change: dict[str, str], expected: str
) -> None:
    problems = _refusals(tmp_path, **change)
    assert any(p.startswith(expected) for p in problems), problems
    assert all("(fix: " in p and "(fix: None)" not in p for p in problems), problems


@pytest.mark.redis
@pytest.mark.postgres
def test_two_consumers_taking_turns_share_one_window_state(
    tmp_path: Path, pg_url: str, rds: redis.Redis, stream_key: str
) -> None:
    """The window state is read under the group's commit lock: two consumers of one group each
    advance the windows the other committed (batches apply in commit order; here, stream order)."""
    write(rds, stream_key, disordered_vitals(6000, seed=11))
    closed, refused = expected_windows(rds, stream_key)
    plan = StreamPlan.of(load_pipeline(windows_spec(tmp_path, stream_key, batch_size=450)))
    engine = sa.create_engine(pg_url)
    one = StreamProcessor(plan, broker(plan, "c1"), engine)
    two = StreamProcessor(plan, broker(plan, "c2"), engine)
    one.start()
    two.start()
    reads = [p.step() for _ in range(7) for p in (one, two)]
    assert sum(reads) == 6000 and one.stats.batches == two.stats.batches == 7
    assert one.step() == 0
    assert loaded_windows(engine) == closed
    assert refused_letters(rds, stream_key) == refused
    engine.dispose()


@pytest.mark.redis
@pytest.mark.postgres
def test_hopping_windows_equal_an_independent_computation(
    tmp_path: Path, pg_url: str, rds: redis.Redis, stream_key: str
) -> None:
    write(rds, stream_key, disordered_vitals(4000, seed=23))
    closed, refused = expected_windows(rds, stream_key, hop_us=10_000_000)
    late = sum(r == "late" for r in refused.values())
    assert (len(closed), late, len(refused) - late) == HOPPING_4000
    path = windows_spec(tmp_path, stream_key, batch_size=333)
    path.write_text(path.read_text().replace("kind: tumbling\n", "kind: hopping\n      hop: 10s\n"))
    plan = StreamPlan.of(load_pipeline(path))
    engine = sa.create_engine(pg_url)
    StreamProcessor(plan, broker(plan, "c1"), engine).run(lambda: False, max_events=1700)
    StreamProcessor(plan, broker(plan, "c1"), engine).run(lambda: False, idle_exit=0.5)  # a restart
    assert loaded_windows(engine) == closed
    assert refused_letters(rds, stream_key) == refused  # once per event, however many windows it missed
    engine.dispose()
