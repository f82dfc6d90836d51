"""The capstone's bedside monitor (pipelines/vitals_monitor.yaml) end to end, against the real Redis,
the real PostgreSQL warehouse and a real HTTP receiver for the alerts: the patient id is pseudonymised
everywhere (rows, windows, alerts, the published stream); out-of-range vitals open one critical alert
per rule and patient, delivered at once; each reading's z-score equals DuckDB's over the raw events
(the same patient's 10-second buckets in the 300 s before the reading's); a window condition alerts
only once it has held 5 minutes; windows are published to the next stream once each; a restart
between batches changes none of it."""

from __future__ import annotations

import json
import math
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import redis
import sqlalchemy as sa

from headwater.settings import Settings
from headwater.spec.loader import load_pipeline
from headwater.store.tables import alert_deliveries, alert_instances
from headwater.streams.run import run_stream
from tests.alerting.conftest import Webhook, serve_webhook
from tests.streams.redis_keys import REDIS_URL, rds_fixture, stream_key_fixture  # noqa: F401
from tests.streams.test_processor import REPO

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
SALT = "a-test-salt-of-enough-length"
SECONDS = 600  # ten minutes of readings, one per patient per second


def readings(seed: int = 5) -> list[dict[str, Any]]:
    """A: normal (~72 bpm) with a spike to 150 at 400 s and two impossible readings (250 bpm);
    B: tachycardic (~130 bpm) throughout; C: tachycardic for 240 s, then normal, one impossible
    temperature (90 F) at 300 s."""
    rng = random.Random(seed)
    out = []
    for second in range(SECONDS):
        for patient in ("A", "B", "C"):
            hr = rng.gauss(72, 3)
            if patient == "B" or (patient == "C" and second < 240):
                hr = rng.gauss(130, 3)
            temperature = round(rng.uniform(97.5, 99.0), 1)
            if patient == "A" and second == 400:
                hr = 150
            if patient == "A" and second in (100, 500):
                hr = 250
            if patient == "C" and second == 300:
                temperature = 90.0
            moment = T0 + timedelta(seconds=second)
            out.append(
                {
                    "patient_id": f"MRN-{patient}",
                    "device_id": f"D-{patient}",
                    "timestamp": moment.isoformat().replace("+00:00", "Z"),
                    "measurements": {
                        "heart_rate": round(hr),
                        "blood_pressure": {"systolic": rng.randint(110, 130), "diastolic": 80},
                        "temperature": temperature,
                    },
                    "location": {"ward": "W1", "bed": 3},
                }
            )
    return out


@pytest.fixture
def alerts_dir(tmp_path: Path) -> Iterator[tuple[Path, Webhook]]:
    with serve_webhook() as hook:
        folder = tmp_path / "alerts"
        folder.mkdir()
        (folder / "channels.yaml").write_text(f"channels:\n  ward: {{url: '{hook.url('ward')}'}}\n")
        (folder / "rules.yaml").write_text(
            "severity_channels: {critical: [ward], warning: [ward], info: [ward]}\nrules: []\n"
        )
        yield folder, hook


def monitor_spec(tmp_path: Path, stream: str) -> Path:
    text = (REPO / "pipelines" / "vitals_monitor.yaml").read_text()
    text = text.replace("stream: vitals\n", f"stream: {stream}\n")
    text = text.replace("dead_letter: vitals_monitor:dead", f"dead_letter: {stream}:dead")
    text = text.replace('stream: "vitals:30s"', f'stream: "{stream}:30s"')
    text = text.replace("batch_size: 5000 ", "batch_size: 250 ")
    path = tmp_path / "pipelines" / "vitals_monitor.yaml"
    path.parent.mkdir()
    path.write_text(text)
    return path


def expected_zscores(events: list[dict[str, Any]]) -> dict[tuple[str, str], float | None]:
    """DuckDB over the raw readings within the ranges: (raw patient, timestamp) -> heart-rate z."""
    good = [
        (e["patient_id"], e["timestamp"], e["measurements"]["heart_rate"])
        for e in events
        if 40 <= e["measurements"]["heart_rate"] <= 200 and 95 <= e["measurements"]["temperature"] <= 110
    ]
    con = duckdb.connect()
    con.execute("CREATE TABLE r (p VARCHAR, ts VARCHAR, x DOUBLE)")
    con.executemany("INSERT INTO r VALUES (?, ?, ?)", good)
    rows = con.execute(
        """
        WITH b AS (
            SELECT p, ts, x, (epoch_us(CAST(ts AS TIMESTAMPTZ)) // 10000000) * 10000000 AS bucket FROM r
        ),
        base AS (
            SELECT e.p, e.ts, e.x, count(h.x) AS n, sum(h.x) AS s, sum(h.x * h.x) AS ss
            FROM b e LEFT JOIN b h
              ON h.p = e.p AND h.bucket >= e.bucket - 300000000 AND h.bucket < e.bucket
            GROUP BY e.p, e.ts, e.x
        )
        SELECT p, ts, x, n, s, ss FROM base
        """
    ).fetchall()
    out: dict[tuple[str, str], float | None] = {}
    for p, ts, x, n, s, ss in rows:
        z = None
        if n >= 10:
            mean = s / n
            var = ss / n - mean * mean
            if var > 1e-12:
                z = (x - mean) / math.sqrt(var)
        out[(p, ts)] = z
    return out


@pytest.fixture
def monitor(
    tmp_path: Path,
    pg_url: str,
    rds: redis.Redis,
    stream_key: str,
    alerts_dir: tuple[Path, Webhook],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Path, Settings, list[dict[str, Any]]]]:
    """The readings in a private stream; the spec reading it; settings with a private warehouse,
    store and alerts folder (also in the environment, for subprocesses)."""
    folder, _ = alerts_dir
    events = readings()
    pipe = rds.pipeline(transaction=False)
    for event in events:
        pipe.xadd(stream_key, {"payload": json.dumps(event)})
    pipe.execute()
    monkeypatch.setenv("HASH_SALT", SALT)
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HEADWATER_WAREHOUSE_URL", pg_url)
    monkeypatch.setenv("HEADWATER_ALERTS", str(folder))
    monkeypatch.delenv("HEADWATER_DATABASE_URL", raising=False)
    monkeypatch.setenv("HEADWATER_REDIS_URL", REDIS_URL)
    yield monitor_spec(tmp_path, stream_key), Settings.from_env(), events
    rds.delete(f"{stream_key}:30s", f"{stream_key}:30s:published")


def test_the_bedside_monitor_pseudonymises_scores_windows_and_alerts(
    monitor: tuple[Path, Settings, list[dict[str, Any]]],
    pg_url: str,
    rds: redis.Redis,
    stream_key: str,
    alerts_dir: tuple[Path, Webhook],
) -> None:
    spec, settings, events = monitor
    loaded = load_pipeline(spec)
    first = run_stream(loaded, settings, consumer="c1", max_events=1000)
    rest = run_stream(loaded, settings, consumer="c1", idle_exit=1.0)  # a restart in between
    assert first.stats.events_read + rest.stats.events_read == len(events) == 1800
    check_outcome(pg_url, settings, rds, stream_key, alerts_dir[1], events)


@pytest.mark.slow
def test_sigkilled_monitor_alerts_and_publishes_each_once(
    monitor: tuple[Path, Settings, list[dict[str, Any]]],
    pg_url: str,
    rds: redis.Redis,
    stream_key: str,
    alerts_dir: tuple[Path, Webhook],
) -> None:
    """Killed at random moments (batches of 50: mid-batch, between the publish and the commit, between
    the commit and the sending), restarted each time: the same rows, alerts and windows as above."""
    spec, settings, events = monitor
    spec.write_text(spec.read_text().replace("batch_size: 250", "batch_size: 50"))
    run = [sys.executable, "-m", "headwater.cli", "stream", "run", "vitals_monitor"]
    run += ["--pipelines", str(spec.parent), "--consumer", "c1"]
    rng = random.Random(7)
    engine = sa.create_engine(pg_url)
    seen = []
    for _ in range(4):
        proc = subprocess.Popen(run, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        before, deadline = _loaded(engine), time.monotonic() + 60
        while _loaded(engine) == before and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.6))
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        seen.append(_loaded(engine))
    engine.dispose()
    assert seen == sorted(seen) and seen[-1] < 1797, seen
    final = subprocess.run([*run, "--idle-exit", "1.5"], capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    check_outcome(pg_url, settings, rds, stream_key, alerts_dir[1], events)


def _loaded(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("vitals_monitored"):
            return 0
        return int(conn.execute(sa.text("SELECT count(*) FROM vitals_monitored")).scalar_one())


def check_outcome(
    pg_url: str,
    settings: Settings,
    rds: redis.Redis,
    stream_key: str,
    hook: Webhook,
    events: list[dict[str, Any]],
) -> None:
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT patient_id, device_id, timestamp, heart_rate_zscore, anomaly FROM vitals_monitored"
            )
        ).all()
        windows = conn.execute(
            sa.text(
                "SELECT patient_id, window_start, window_end, event_count, heart_rate_mean "
                "FROM vitals_monitored_30s ORDER BY patient_id, window_start"
            )
        ).all()
    engine.dispose()
    # ---- rows: the good readings, pseudonymised; z-scores equal DuckDB's over the raw readings
    assert len(rows) == 1800 - 3
    raw_of = _pseudonyms(rows)
    assert sorted(raw_of.values()) == ["MRN-A", "MRN-B", "MRN-C"]
    assert all(p.startswith("PT-") for p in raw_of)
    zs = expected_zscores(events)
    scored = 0
    for r in rows:
        key = (raw_of[r.patient_id], r.timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z"))
        want = zs[key]
        if want is None:
            assert r.heart_rate_zscore is None, key
        else:
            scored += 1
            assert r.heart_rate_zscore == pytest.approx(want, abs=1e-9), key
    assert scored > 1700
    spike = next(
        r for r in rows if raw_of[r.patient_id] == "MRN-A" and r.timestamp == T0 + timedelta(seconds=400)
    )
    assert spike.anomaly and spike.heart_rate_zscore > 2.5

    # ---- alerts: one instance per rule and patient, messages name the pseudonym only
    store = sa.create_engine(settings.database_url)
    with store.connect() as conn:
        instances = conn.execute(sa.select(alert_instances).order_by(alert_instances.c.id)).all()
        deliveries = conn.execute(sa.select(alert_deliveries)).all()
    store.dispose()
    by_rule: dict[str, list[str]] = {}
    for inst in instances:
        patient = inst.details["stream"]["key"]["patient_id"]
        by_rule.setdefault(inst.rule_name, []).append(raw_of[patient])
    assert sorted(by_rule["heart_rate_out_of_range"]) == ["MRN-A"]  # two readings, one alert
    assert sorted(by_rule["temperature_out_of_range"]) == ["MRN-C"]
    assert sorted(by_rule["tachycardia"]) == ["MRN-B"]  # C's 240 s never reached 5 minutes
    assert "fever" not in by_rule and "systolic_out_of_range" not in by_rule
    assert "MRN-A" in by_rule["vital_anomaly"]
    hr = next(i for i in instances if i.rule_name == "heart_rate_out_of_range")
    assert hr.occurrences == 2 and hr.severity == "critical"
    tachy = next(i for i in instances if i.rule_name == "tachycardia")
    assert tachy.details["stream"]["held_seconds"] >= 300
    posts = hook.at("ward")
    assert {d.status for d in deliveries} == {"sent"} and len(posts) == len(deliveries)
    told = {i for d in deliveries for i in d.instance_ids}
    assert told == {i.id for i in instances}  # every instance told once, repeats not again
    text = json.dumps(posts)
    assert "MRN-" not in text and "PT-" in text
    assert any("heart_rate_out_of_range" in p["title"] and "[CRITICAL]" in p["title"] for p in posts)

    # ---- windows: the 30-second windows, each published once to the next stream
    assert sum(w.event_count for w in windows) <= 1797
    published = [json.loads(f["payload"]) for _, f in rds.xrange(f"{stream_key}:30s")]
    assert len(published) == len(windows)
    assert sorted((p["patient_id"], p["window_start"]) for p in published) == sorted(
        (w.patient_id, w.window_start.astimezone(UTC).isoformat()) for w in windows
    )
    dead = rds.xrange(f"{stream_key}:dead")
    assert sorted(json.loads(f["rules"])[0] for _, f in dead) == [
        "heart_rate_range",
        "heart_rate_range",
        "temperature_range",
    ]


def _pseudonyms(rows: list[Any]) -> dict[str, str]:
    """Pseudonym -> raw patient id, through the device (D-A is MRN-A's): one to one."""
    pairs = {(r.patient_id, f"MRN-{r.device_id[2:]}") for r in rows}
    assert len(pairs) == len({p for p, _ in pairs}) == len({raw for _, raw in pairs})
    return dict(pairs)
