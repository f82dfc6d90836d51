"""Replay (headwater/streams/replay.py, `headwater stream replay` and `headwater stream dead`) against
the real Redis and the real PostgreSQL warehouse: a replayed range restores exactly the rows deleted
from the warehouse (compared with a plain-Python filter over the raw stream entries) and a second
replay changes nothing, without touching the consumer group or the processor's commit log; an append
load is refused; after a rule is widened, a dead-letter replay loads exactly the letters that pass
now, once, even when replayed again (and even for an append load); a trimmed source entry is
reported and its letter left.

Real services: Redis (the test's own stream key), PostgreSQL (the test's own database), and for the
CLI the embedded SQLite store of a fresh HEADWATER_HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
import redis
import sqlalchemy as sa

from headwater.errors import PermanentError
from headwater.settings import Settings
from headwater.spec.loader import load_pipeline
from headwater.streams.broker import id_key
from headwater.streams.plan import StreamPlan
from headwater.streams.processor import StreamProcessor
from headwater.streams.replay import (
    read_dead,
    replay_dead,
    replay_log_source,
    replay_range,
    replayed_key,
    stream_position,
)
from headwater.streams.vitals import RANGES, produce, vitals_events
from tests.streams.redis_keys import REDIS_URL, rds_fixture, stream_key_fixture  # noqa: F401
from tests.streams.test_processor import broker, expected, vitals_spec, warehouse_figures

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

WIDE_HEART_RATE = (20, 250)
"""The heart-rate range after the "fix": the generator's out-of-range heart rates (20, 250) pass."""


@pytest.fixture(autouse=True)
def _forget_replayed(rds: redis.Redis, stream_key: str) -> Any:
    """The hash of replayed letters is the test's too: deleted afterwards with its stream."""
    yield
    rds.delete(replayed_key(f"{stream_key}:dead"))


def _spec(
    tmp_path: Path, stream: str, *, folder: str = "a", append: bool = False, wide: bool = False
) -> Path:
    path = vitals_spec(tmp_path, stream, batch_size=400)
    text = path.read_text()
    path.unlink()
    if append:
        text = text.replace("mode: upsert, primary_key: [_entry_id]", "mode: append")
    if wide:
        text = text.replace(
            "heart_rate >= 40 AND heart_rate <= 200",
            f"heart_rate >= {WIDE_HEART_RATE[0]} AND heart_rate <= {WIDE_HEART_RATE[1]}",
        )
    out = tmp_path / folder / "vitals_stream.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return out


def _plan(path: Path) -> StreamPlan:
    return StreamPlan.of(load_pipeline(path))


def _process_all(plan: StreamPlan, engine: sa.Engine) -> None:
    StreamProcessor(plan, broker(plan, "c1"), engine).run(lambda: False, idle_exit=0.5)


def _group(rds: redis.Redis, stream: str, group: str) -> dict[str, Any]:
    (info,) = [g for g in rds.xinfo_groups(stream) if g["name"] == group]
    return {k: info[k] for k in ("last-delivered-id", "pending", "entries-read", "consumers")}


def _commits(engine: sa.Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT source, first_id, last_id, consumer FROM headwater_stream_commits ORDER BY 1, 2")
        )
        return [tuple(r) for r in rows]


def _xrange(rds: redis.Redis, key: str) -> list[tuple[str, dict[str, str]]]:
    """The stream's entries (the client decodes responses: ids and fields are text)."""
    return cast(list[tuple[str, dict[str, str]]], rds.xrange(key))


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_stream_position_reads_ids_milliseconds_and_times() -> None:
    assert stream_position("1733011200000-7") == "1733011200000-7"
    assert stream_position("1733011200000") == "1733011200000-0"
    assert stream_position("1733011200000", end=True) == f"1733011200000-{2**64 - 1}"
    assert stream_position("2024-12-01T00:00:00Z") == "1733011200000-0"
    assert stream_position("2024-12-01T00:00:00") == "1733011200000-0"  # no zone: UTC
    assert stream_position("2024-12-01T01:00:00.250+01:00", end=True) == f"1733011200250-{2**64 - 1}"
    assert (stream_position("-"), stream_position("+", end=True)) == ("-", "+")
    with pytest.raises(PermanentError, match="neither a stream entry id nor an ISO-8601 time"):
        stream_position("yesterday")


def test_a_replayed_range_restores_exactly_the_deleted_rows_and_twice_changes_nothing(
    tmp_path: Path, pg_url: str, rds: redis.Redis, stream_key: str
) -> None:
    produce(rds, stream_key, vitals_events(2000, bad_share=0.08, seed=21))
    good, bad = expected(rds, stream_key)
    plan = _plan(_spec(tmp_path, stream_key))
    engine = sa.create_engine(pg_url)
    _process_all(plan, engine)
    full = warehouse_figures(engine)
    assert full[0] == len(good)

    # the range: by time, from the millisecond of the 500th entry to that of the 1500th
    ids = [i for i, _ in _xrange(rds, stream_key)]
    first_ms, last_ms = id_key(ids[500])[0], id_key(ids[1500])[0]
    inside = [i for i in ids if first_ms <= id_key(i)[0] <= last_ms]  # independently of replay
    good_inside = [i for i in inside if i in good]
    bad_inside = [i for i in inside if i in bad]
    assert len(inside) >= 1001 and good_inside and bad_inside
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM vitals WHERE _entry_id = ANY(:ids)"), {"ids": good_inside})
    assert warehouse_figures(engine)[0] == len(good) - len(good_inside)
    group_before, commits_before = _group(rds, stream_key, plan.source.group), _commits(engine)
    dead_before = rds.xrange(f"{stream_key}:dead")

    result = replay_range(plan, rds, engine, _iso(first_ms), _iso(last_ms), chunk=300)
    assert (result.events, result.upserted, result.dead, result.dead_new) == (
        len(inside),
        len(good_inside),
        len(bad_inside),
        0,  # each was dead-lettered by the processor already: written once
    )
    assert result.summary() == (
        f"vitals_stream: replayed {len(inside)} event(s) from {first_ms}-0 to {last_ms}-{2**64 - 1}: "
        f"upserted {len(good_inside)} row(s), dead-lettered {len(bad_inside)} (0 new)"
    )
    assert (
        warehouse_figures(engine)
        == full
        == (
            len(good),
            len(good),
            sum(v["heart_rate"] for v in good.values()),
            round(sum(v["temperature"] for v in good.values()), 1),
        )
    )

    again = replay_range(plan, rds, engine, f"{first_ms}", f"{last_ms}")  # the same range as ms
    assert (again.events, again.upserted, again.dead_new) == (len(inside), len(good_inside), 0)
    assert warehouse_figures(engine) == full
    # the live processor's state is untouched: the group, its commit log, the dead-letter stream
    assert _group(rds, stream_key, plan.source.group) == group_before
    assert _commits(engine) == commits_before
    assert rds.xrange(f"{stream_key}:dead") == dead_before

    # and the live processor goes on from where it was
    produce(rds, stream_key, vitals_events(300, bad_share=0.08, seed=22))
    _process_all(plan, engine)
    good, bad = expected(rds, stream_key)
    assert warehouse_figures(engine)[:3] == (
        len(good),
        len(good),
        sum(v["heart_rate"] for v in good.values()),
    )
    engine.dispose()


def test_replay_refuses_an_append_load_and_a_window_step(
    tmp_path: Path, pg_url: str, rds: redis.Redis, stream_key: str
) -> None:
    engine = sa.create_engine(pg_url)
    plan = _plan(_spec(tmp_path, stream_key, append=True))
    with pytest.raises(PermanentError) as refused:
        replay_range(plan, rds, engine, "-", "+")
    assert str(refused.value) == (
        "vitals_stream: replay is refused: load step store has mode append, so replayed events would be "
        "loaded twice Fix: set mode: upsert with a primary_key (e.g. [_entry_id]) on step store; dead "
        "letters can still be replayed once each with `headwater stream dead NAME --replay`"
    )
    windows = (Path(__file__).resolve().parents[2] / "pipelines" / "vitals_windows.yaml").read_text()
    path = tmp_path / "w" / "vitals_windows.yaml"
    path.parent.mkdir()
    path.write_text(windows.replace("stream: vitals\n", f"stream: {stream_key}\n"))
    with pytest.raises(PermanentError, match="dead-letter replay is refused: window step per_30s"):
        replay_dead(_plan(path), rds, engine)
    engine.dispose()


def test_a_windowed_spec_is_replayed_from_the_start_only_and_its_windows_are_recomputed_exactly(
    tmp_path: Path, pg_url: str, rds: redis.Redis, stream_key: str
) -> None:
    """Windows replayed from the stream's first entry equal the independent computation (late events
    included) after the windows table was emptied; a replay from the middle, or of a trimmed stream,
    is refused; the live processor's window state is untouched."""
    from tests.streams.test_windowing import (
        disordered_vitals,
        expected_windows,
        loaded_windows,
        refused_letters,
        windows_spec,
        write,
    )

    write(rds, stream_key, disordered_vitals(3000, seed=11))
    closed, refused = expected_windows(rds, stream_key)
    plan = _plan(windows_spec(tmp_path, stream_key, batch_size=400))
    engine = sa.create_engine(pg_url)
    StreamProcessor(plan, broker(plan, "c1"), engine).run(lambda: False, idle_exit=0.5)
    assert loaded_windows(engine) == closed
    with engine.begin() as conn:
        live_state = conn.execute(sa.text("SELECT source, value FROM headwater_watermarks")).all()
        conn.execute(sa.text("DELETE FROM vitals_30s"))
    middle = rds.xrange(stream_key, count=1500)[-1][0]
    with pytest.raises(PermanentError, match="replay from the middle of the stream is refused"):
        replay_range(plan, rds, engine, middle, "+")
    result = replay_range(plan, rds, engine, "-", "+", chunk=700)
    assert result.events == 3000 and result.windows == len(closed)
    assert loaded_windows(engine) == closed
    assert refused_letters(rds, stream_key) == refused  # late events: the same letters, once each
    with engine.connect() as conn:  # the replay's own state is gone; the live one is as it was
        assert conn.execute(sa.text("SELECT source, value FROM headwater_watermarks")).all() == live_state
    rds.xtrim(stream_key, maxlen=2000)
    with pytest.raises(PermanentError, match="was trimmed or had entries deleted"):
        replay_range(plan, rds, engine, "-", "+")
    engine.dispose()


def _now_passing(rds: redis.Redis, stream: str) -> set[str]:
    """Independently: the events that break only the heart-rate range, inside the widened one."""
    out = set()
    for entry_id, fields in _xrange(rds, stream):
        m = json.loads(fields["payload"])["measurements"]
        values = {
            "heart_rate": m["heart_rate"],
            "systolic": m["blood_pressure"]["systolic"],
            "temperature": m["temperature"],
        }
        ranges = {**RANGES, "heart_rate": WIDE_HEART_RATE}
        if all(lo <= values[k] <= hi for k, (lo, hi) in ranges.items()) and not (
            RANGES["heart_rate"][0] <= values["heart_rate"] <= RANGES["heart_rate"][1]
        ):
            out.add(entry_id)
    return out


def _loaded_ids(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.text("SELECT _entry_id FROM vitals"))]


def test_dead_letters_that_pass_after_a_fix_load_once_even_for_an_append_load(
    tmp_path: Path, pg_url: str, rds: redis.Redis, stream_key: str
) -> None:
    produce(rds, stream_key, vitals_events(1500, bad_share=0.15, seed=5))
    good, bad = expected(rds, stream_key)
    engine = sa.create_engine(pg_url)
    _process_all(_plan(_spec(tmp_path, stream_key, append=True)), engine)
    assert sorted(_loaded_ids(engine)) == sorted(good)
    passing = _now_passing(rds, stream_key)
    assert passing and passing < set(bad)

    # one of the letters that would pass now lost its source entry (trimmed)
    gone = min(passing, key=id_key)
    rds.xdel(stream_key, gone)
    fixed = _plan(_spec(tmp_path, stream_key, folder="fixed", append=True, wide=True))
    group_before = _group(rds, stream_key, fixed.source.group)
    live_commits = [c for c in _commits(engine)]

    result = replay_dead(fixed, rds, engine)
    loads = sorted(passing - {gone}, key=id_key)
    assert result.selected == len(bad)
    assert result.loaded == loads and result.already == [] and result.trimmed == [gone]
    assert result.still_dead == {i: rules for i, rules in bad.items() if i not in passing}
    counts: dict[str, int] = {}
    for rules in result.still_dead.values():
        for rule in rules:
            counts[rule] = counts.get(rule, 0) + 1
    assert result.summary() == (
        f"vitals_stream: {len(bad)} dead letter(s) selected: {len(loads)} loaded, 0 already replayed, "
        f"{len(bad) - len(passing)} still failing ("
        + ", ".join(f"{r} {n}" for r, n in sorted(counts.items()))
        + "), 1 source entry trimmed"
    )
    assert sorted(_loaded_ids(engine)) == sorted([*good, *loads])
    marked = rds.hgetall(replayed_key(f"{stream_key}:dead"))
    assert set(marked) == set(loads)
    listed = {d.source_id: d for d in read_dead(rds, f"{stream_key}:dead")}
    assert set(listed) == set(bad)  # nothing leaves the dead-letter stream
    assert {i for i, d in listed.items() if d.replayed_at} == set(loads)

    # replayed again: recognised, nothing loaded twice (an append load)
    second = replay_dead(fixed, rds, engine)
    assert (second.loaded, second.already, second.trimmed) == ([], loads, [gone])
    # a replay that stopped after its commit and before marking: its commit log still knows
    rds.delete(replayed_key(f"{stream_key}:dead"))
    third = replay_dead(fixed, rds, engine, rule="heart_rate_range")
    assert third.selected == len([i for i, r in bad.items() if "heart_rate_range" in r])
    assert (third.loaded, third.already) == ([], loads)
    assert sorted(_loaded_ids(engine)) == sorted([*good, *loads])
    # the replay's commits are its own: the live processor's and its group are as they were
    assert [c for c in _commits(engine) if c[0] != replay_log_source(fixed)] == live_commits
    assert {c[1] for c in _commits(engine) if c[0] == replay_log_source(fixed)} == {
        f"{id_key(i)[0]:020d}-{id_key(i)[1]:020d}" for i in loads
    }
    assert _group(rds, stream_key, fixed.source.group) == group_before
    engine.dispose()


def test_the_cli_replays_a_range_lists_and_replays_dead_letters_and_audits(
    tmp_path: Path, hw_env: Settings, pg_url: str, rds: redis.Redis, stream_key: str
) -> None:
    produce(rds, stream_key, vitals_events(600, bad_share=0.15, seed=9))
    good, bad = expected(rds, stream_key)
    env = {
        **os.environ,
        "HEADWATER_HOME": str(hw_env.home),
        "HEADWATER_WAREHOUSE_URL": pg_url,
        "HEADWATER_REDIS_URL": REDIS_URL,
        "USER": "ops",
    }
    spec = _spec(tmp_path, stream_key)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "headwater.cli", "stream", *args, "--pipelines", str(spec.parent)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    run = cli("run", "vitals_stream", "--idle-exit", "0.5")
    assert run.returncode == 0, run.stderr
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM vitals"))
    replay = cli("replay", "vitals_stream", "--from", "-")
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout.strip() == (
        f"vitals_stream: replayed 600 event(s) from - to +: upserted {len(good)} row(s), "
        f"dead-lettered {len(bad)} (0 new)"
    )
    assert warehouse_figures(engine)[0] == len(good)

    heart = sorted((i for i, r in bad.items() if "heart_rate_range" in r), key=id_key)
    listing = cli("dead", "vitals_stream", "--rule", "heart_rate_range")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.splitlines()[-1] == (
        f"{len(heart)} dead letter(s) in {stream_key}:dead, {len(heart)} not replayed"
    )
    patients = {json.loads(f["payload"])["patient_id"] for _, f in _xrange(rds, stream_key)}
    assert not any(p in listing.stdout for p in patients)  # masked values only

    spec.write_text(
        spec.read_text().replace(
            "heart_rate >= 40 AND heart_rate <= 200",
            f"heart_rate >= {WIDE_HEART_RATE[0]} AND heart_rate <= {WIDE_HEART_RATE[1]}",
        )
    )
    passing = sorted(_now_passing(rds, stream_key) & set(heart), key=id_key)
    out = cli("dead", "vitals_stream", "--replay", "--ids", *heart)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == (
        f"vitals_stream: {len(heart)} dead letter(s) selected: {len(passing)} loaded, 0 already replayed, "
        f"{len(heart) - len(passing)} still failing"
        + (f" (heart_rate_range {len(heart) - len(passing)})" if len(heart) > len(passing) else "")
        + ", 0 source entries trimmed"
    )
    assert warehouse_figures(engine)[0] == len(good) + len(passing)
    store = sa.create_engine(hw_env.database_url)
    with store.connect() as conn:
        audited = conn.execute(
            sa.text("SELECT username, action, target, outcome, detail, source FROM audit_log ORDER BY id")
        ).all()
    assert [tuple(r) for r in audited] == [
        ("ops", "stream.replay", "vitals_stream", "ok", replay.stdout.strip(), "cli"),
        ("ops", "stream.replay_dead", "vitals_stream", "ok", out.stdout.splitlines()[-1], "cli"),
    ]
    refused = cli("replay", "vitals_stream", "--from", "now-ish")
    assert refused.returncode == 1 and refused.stderr.startswith("error: 'now-ish' is neither")
    store.dispose()
    engine.dispose()
