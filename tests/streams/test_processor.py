"""The stream processor against the real Redis and the real PostgreSQL warehouse: the warehouse holds
exactly the events within the vitals ranges (count, sum, ids equal to a plain-Python filter over what
the stream holds) and the dead-letter stream exactly the others, with the rules they broke and the
patient id masked; a crash between the commit and the XACK loads nothing twice; dead letters are
written once however often a batch is redelivered; a message delivered too often is poison."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from headwater.spec.loader import load_pipeline
from headwater.streams.broker import RedisStreamBroker
from headwater.streams.plan import StreamPlan
from headwater.streams.processor import StreamProcessor
from headwater.streams.vitals import RANGES, produce, vitals_events
from tests.streams.redis_keys import REDIS_URL, rds_fixture, stream_key_fixture  # noqa: F401

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[2]


def vitals_spec(tmp_path: Path, stream: str, batch_size: int = 1000) -> Path:
    """The vitals example, reading `stream`."""
    text = (REPO / "pipelines" / "vitals_stream.yaml").read_text()
    text = text.replace("stream: vitals\n", f"stream: {stream}\n").replace(
        "batch_size: 1000", f"batch_size: {batch_size}"
    )
    path = tmp_path / "vitals_stream.yaml"
    path.write_text(text)
    return path


def expected(rds: redis.Redis, stream: str) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    """Independently of the processor: (good events by entry id, the rules each bad event breaks)."""
    good, bad = {}, {}
    for entry_id, fields in rds.xrange(stream):
        event = json.loads(fields["payload"])
        m = event["measurements"]
        values = {
            "heart_rate": m["heart_rate"],
            "systolic": m["blood_pressure"]["systolic"],
            "temperature": m["temperature"],
        }
        broken = [f"{k}_range" for k, (lo, hi) in RANGES.items() if not lo <= values[k] <= hi]
        if broken:
            bad[entry_id] = sorted(broken)
        else:
            good[entry_id] = values
    return good, bad


def warehouse_figures(engine: sa.Engine) -> tuple[int, int, int, float]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT count(*), count(DISTINCT _entry_id), sum(heart_rate), sum(temperature) FROM vitals"
            )
        ).one()
    return int(row[0]), int(row[1]), int(row[2]), round(float(row[3]), 1)


def dead_letters(rds: redis.Redis, stream: str) -> dict[str, dict[str, str]]:
    entries = rds.xrange(f"{stream}:dead")
    assert len({f["source_id"] for _, f in entries}) == len(entries), "a dead letter was written twice"
    return {f["source_id"]: f for _, f in entries}


def broker(plan: StreamPlan, consumer: str) -> RedisStreamBroker:
    s = plan.source
    return RedisStreamBroker.connect(
        REDIS_URL,
        stream=s.stream,
        group=s.group,
        consumer=consumer,
        dead_stream=s.dead_letter_stream,
        start=s.start,
    )


def test_good_events_load_once_and_bad_ones_are_dead_lettered(
    tmp_path: Path, pg_url: str, rds: redis.Redis, stream_key: str
) -> None:
    produce(rds, stream_key, vitals_events(5000, bad_share=0.08, seed=7))
    good, bad = expected(rds, stream_key)
    assert (len(good), len(bad)) == (4587, 413)
    plan = StreamPlan.of(load_pipeline(vitals_spec(tmp_path, stream_key, batch_size=700)))
    engine = sa.create_engine(pg_url)
    stats = StreamProcessor(plan, broker(plan, "c1"), engine).run(lambda: False, idle_exit=0.5)
    assert (stats.events_read, stats.events_loaded, stats.events_dead, stats.batches) == (5000, 4587, 413, 8)
    assert warehouse_figures(engine) == (
        len(good),
        len(good),
        sum(v["heart_rate"] for v in good.values()),
        round(sum(v["temperature"] for v in good.values()), 1),
    )
    with engine.connect() as conn:
        ids = {r[0] for r in conn.execute(sa.text("SELECT _entry_id FROM vitals"))}
    assert ids == set(good)
    dead = dead_letters(rds, stream_key)
    assert {k: sorted(json.loads(f["rules"])) for k, f in dead.items()} == bad
    some = next(iter(dead.values()))
    values = json.loads(some["values"])
    assert some["reason"] == "rules"
    assert values["patient_id"][0] == "P" and set(values["patient_id"][1:-1]) == {"*"}  # pii: masked
    assert rds.xpending(stream_key, plan.source.group)["pending"] == 0
    engine.dispose()


def test_a_crash_between_commit_and_ack_loads_nothing_twice(
    tmp_path: Path, pg_url: str, rds: redis.Redis, stream_key: str
) -> None:
    produce(rds, stream_key, vitals_events(2500, bad_share=0.1, seed=3))
    good, bad = expected(rds, stream_key)
    plan = StreamPlan.of(load_pipeline(vitals_spec(tmp_path, stream_key, batch_size=1000)))
    engine = sa.create_engine(pg_url)
    first = StreamProcessor(plan, broker(plan, "c1"), engine)
    first.start()
    entries = first.broker.read(1000, 100)
    first._finish(entries)  # committed and dead-lettered; the process "dies" before its XACK
    assert rds.xpending(stream_key, plan.source.group)["pending"] == 1000
    again = StreamProcessor(plan, broker(plan, "c1"), engine)  # restarted: same consumer name
    stats = again.run(lambda: False, idle_exit=0.5)
    assert (stats.events_read, stats.events_skipped) == (2500, 1000)  # its own 1000 pending first
    assert stats.events_loaded + first.stats.events_loaded == len(good)
    assert warehouse_figures(engine)[:3] == (
        len(good),
        len(good),
        sum(v["heart_rate"] for v in good.values()),
    )
    assert set(dead_letters(rds, stream_key)) == set(bad)
    assert rds.xpending(stream_key, plan.source.group)["pending"] == 0
    engine.dispose()


def test_a_redelivered_batch_writes_each_dead_letter_once_and_poison_is_set_aside(
    tmp_path: Path, pg_url: str, rds: redis.Redis, stream_key: str
) -> None:
    produce(rds, stream_key, vitals_events(300, bad_share=0.2, seed=11))
    good, bad = expected(rds, stream_key)
    plan = StreamPlan.of(load_pipeline(vitals_spec(tmp_path, stream_key, batch_size=100)))
    engine = sa.create_engine(pg_url)
    first = StreamProcessor(plan, broker(plan, "c1"), engine)
    first.start()
    batch = first.broker.read(100, 100)
    bad_here = [e for e in batch if e.id in bad]
    from headwater.streams.batch import process

    letters = process(batch, plan.source, plan.ops, plan.rules, plan.pii).dead
    assert first.broker.dead_letter(letters, plan.name) == len(bad_here) > 0
    assert first.broker.dead_letter(letters, plan.name) == 0  # the same batch again: nothing new
    # the batch stays pending; each XREADGROUP of the pending entries counts a delivery
    for _ in range(5):
        rds.xreadgroup(plan.source.group, "c1", {stream_key: "0"}, count=100)
    stats = StreamProcessor(plan, broker(plan, "c1"), engine).run(lambda: False, idle_exit=0.5)
    dead = dead_letters(rds, stream_key)
    poison = {k for k, f in dead.items() if f["reason"] == "poison"}
    assert poison == {e.id for e in batch} - {e.id for e in bad_here}  # delivered 7 times > 5
    assert {k for k, f in dead.items() if f["reason"] == "rules"} == set(bad)
    assert stats.events_loaded == len([i for i in good if i not in poison])
    assert warehouse_figures(engine)[0] == len(good) - len(poison)
    assert rds.xpending(stream_key, plan.source.group)["pending"] == 0
    engine.dispose()


FIELDS_SPEC = """\
name: orders_stream
type: streaming
sources:
  orders:
    kind: redis_stream
    stream: {stream}
    group: g1
    columns: {{amount: int, shop: string}}
steps:
  - {{name: read, type: extract, source: orders}}
  - name: shape
    type: transform
    depends_on: [read]
    ops:
      - derive: {{cents: amount * 100}}
  - name: check
    type: validate
    depends_on: [shape]
    expect: [{{name: positive, rule: "amount > 0"}}]
  - name: store
    type: load
    depends_on: [check]
    destination: {{table: orders, mode: append}}
"""


def test_field_value_entries_are_rows_and_a_broken_payload_is_dead_lettered_redacted(
    tmp_path: Path, pg_url: str, rds: redis.Redis, stream_key: str
) -> None:
    amounts = [5, -2, 7, 0, 11, 3]
    for i, amount in enumerate(amounts):
        rds.xadd(stream_key, {"amount": str(amount), "shop": f"s{i % 2}"})
    path = tmp_path / "orders.yaml"
    path.write_text(FIELDS_SPEC.format(stream=stream_key))
    plan = StreamPlan.of(load_pipeline(path))
    engine = sa.create_engine(pg_url)
    stats = StreamProcessor(plan, broker(plan, "c1"), engine).run(lambda: False, idle_exit=0.3)
    assert (stats.events_read, stats.events_loaded, stats.events_dead) == (6, 4, 2)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT amount, shop, cents FROM orders ORDER BY _entry_id")).all()
    assert [tuple(r) for r in rows] == [(5, "s0", 500), (7, "s0", 700), (11, "s0", 1100), (3, "s1", 300)]
    dead = dead_letters(rds, stream_key)
    assert sorted(json.loads(f["values"])["amount"] for f in dead.values()) == [-2, 0]

    # a payload that is not JSON: dead-lettered as unparseable, its text redacted, the rest loaded
    payload_key = f"{stream_key}_payload"
    try:
        good = rds.xadd(payload_key, {"payload": json.dumps({"amount": 4, "shop": "s9"})})
        broken = rds.xadd(payload_key, {"payload": "{not json, from ann@example.org"})
        text = FIELDS_SPEC.format(stream=payload_key).replace(
            "    group: g1\n", "    group: g1\n    payload: payload\n"
        )
        path.write_text(text)
        plan = StreamPlan.of(load_pipeline(path))
        stats = StreamProcessor(plan, broker(plan, "c1"), engine).run(lambda: False, idle_exit=0.3)
        assert (stats.events_read, stats.events_loaded, stats.events_dead) == (2, 1, 1)
        (letter,) = rds.xrange(f"{payload_key}:dead")
        assert letter[0] == broken and letter[1]["reason"] == "unparseable"
        assert json.loads(letter[1]["values"]) == {"payload": "{not json, from a***@example.org"}
        with engine.connect() as conn:
            assert (
                conn.execute(
                    sa.text("SELECT count(*) FROM orders WHERE _entry_id = :i"), {"i": good}
                ).scalar()
                == 1
            )
    finally:
        rds.delete(payload_key, f"{payload_key}:dead")
    engine.dispose()
