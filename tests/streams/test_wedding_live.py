"""The live wedding example end to end, against the real Redis and the real PostgreSQL warehouse:
`headwater.streams.wedding` events on a private stream, run through the wedding_live_vendors and
wedding_live_weddings specs by the stream processor (restarted mid-stream), give running-totals
tables (vendor_totals, wedding_totals) equal to DuckDB SQL over the raw stream entries, after the first
run and at the end; the bad events are exactly the dead letters (the same ids, reason rules); the
events tables hold exactly the good events of each spec."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
import redis
import sqlalchemy as sa

from headwater.spec.loader import load_pipeline
from headwater.streams.plan import StreamPlan
from headwater.streams.processor import StreamProcessor
from headwater.streams.vitals import produce
from headwater.streams.wedding import EVENT_TYPES, wedding_events
from tests.streams.redis_keys import REDIS_URL, rds_fixture, stream_key_fixture  # noqa: F401
from tests.streams.test_processor import REPO, broker, dead_letters

EVENTS, FIRST_RUN = 4000, 1700

# The raw entries, parsed by DuckDB (not by Headwater): one row per entry, in stream order.
RAW = """
    SELECT entry_id, seq,
           payload->>'event_type' AS event_type,
           TRY_CAST(payload->>'occurred_at' AS TIMESTAMPTZ) AS t,
           payload->>'vendor_id' AS vendor_id,
           payload->>'wedding_id' AS wedding_id,
           payload->>'currency' AS currency,
           payload->>'response' AS response,
           TRY_CAST(payload->>'guest_change' AS BIGINT) AS guest_change,
           TRY_CAST(payload->>'amount' AS DECIMAL(12, 2)) AS amount,
           TRY_CAST(payload->>'new_price' AS DECIMAL(12, 2)) AS new_price
    FROM (SELECT entry_id, seq, CAST(payload AS JSON) AS payload FROM entries WHERE seq < {upto})
"""
# Each spec's events (the other spec's type is filtered out) and what makes one good.
VENDORS = """
    SELECT *, COALESCE(
        event_type IN ('price_change', 'payment') AND t IS NOT NULL AND vendor_id IS NOT NULL
        AND currency IN ('USD', 'EUR', 'GBP')
        AND (event_type <> 'price_change' OR new_price > 0)
        AND (event_type <> 'payment' OR (amount > 0 AND wedding_id IS NOT NULL)), FALSE) AS good
    FROM raw WHERE event_type IS DISTINCT FROM 'rsvp'
"""
WEDDINGS = """
    SELECT *, COALESCE(
        event_type IN ('rsvp', 'payment') AND t IS NOT NULL AND wedding_id IS NOT NULL
        AND (event_type <> 'rsvp'
             OR (response IN ('accepted', 'declined') AND guest_change BETWEEN -20 AND 20))
        AND (event_type <> 'payment' OR (amount > 0 AND vendor_id IS NOT NULL
                                         AND currency IN ('USD', 'EUR', 'GBP'))), FALSE) AS good
    FROM raw WHERE event_type IS DISTINCT FROM 'price_change'
"""
VENDOR_TOTALS = """
    SELECT vendor_id, min(t) AS window_start, max(t) AS window_end, count(*) AS event_count,
           count(amount) AS amount_count, sum(amount) AS amount_sum,
           last(new_price ORDER BY t, seq) FILTER (WHERE new_price IS NOT NULL) AS new_price_latest,
           last(currency ORDER BY t, seq) AS currency_last
    FROM mine WHERE good GROUP BY vendor_id
"""
WEDDING_TOTALS = """
    SELECT wedding_id, min(t) AS window_start, max(t) AS window_end, count(*) AS event_count,
           sum(guest_change) AS guest_change_sum, count(response) AS response_count,
           count(amount) AS amount_count, sum(amount) AS amount_sum
    FROM mine WHERE good GROUP BY wedding_id
"""
SPECS = {
    "wedding_live_vendors": (VENDORS, VENDOR_TOTALS, "vendor_totals", "wedding_vendor_events"),
    "wedding_live_weddings": (WEDDINGS, WEDDING_TOTALS, "wedding_totals", "wedding_events"),
}


def spec_copy(tmp_path: Path, name: str, stream: str, batch_size: int) -> Path:
    """The example `name`, reading `stream`, dead-lettering to `<stream>:dead`."""
    text = (REPO / "pipelines" / f"{name}.yaml").read_text()
    text = text.replace("stream: wedding_updates\n", f"stream: {stream}\n")
    text = text.replace(f"dead_letter: {name}:dead", f"dead_letter: {stream}:dead")
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace("batch_size: 1000", f"batch_size: {batch_size}"))
    return path


def expected(rds: redis.Redis, stream: str, name: str, upto: int) -> tuple[pl.DataFrame, set[str], set[str]]:
    """Independently of Headwater, over the first `upto` raw entries of the stream: the spec's running
    totals (sorted by key), the ids of its good events and of its bad ones."""
    ids, payloads = zip(*((i, f["payload"]) for i, f in payloads_of(rds, stream)), strict=True)
    entries = pl.DataFrame({"entry_id": ids, "seq": range(len(ids)), "payload": payloads})
    mine_sql, totals_sql, _, _ = SPECS[name]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("entries", entries)
    con.execute(f"CREATE TABLE raw AS {RAW.format(upto=upto)}")
    con.execute(f"CREATE TABLE mine AS {mine_sql}")
    rows = con.execute(totals_sql).fetchall()
    columns = [d[0] for d in con.description or []]
    totals = pl.DataFrame(rows, schema=columns, orient="row").sort(columns[0])
    good = {r[0] for r in con.execute("SELECT entry_id FROM mine WHERE good").fetchall()}
    bad = {r[0] for r in con.execute("SELECT entry_id FROM mine WHERE NOT good").fetchall()}
    con.close()
    return totals, good, bad


def payloads_of(rds: redis.Redis, stream: str) -> list[tuple[str, dict[str, str]]]:
    entries: list[tuple[str, dict[str, str]]] = rds.xrange(stream)  # type: ignore[assignment]
    return entries


def loaded(engine: sa.Engine, table: str, columns: list[str]) -> pl.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT {', '.join(columns)} FROM {table}")).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=columns, orient="row").sort(columns[0])


def as_rows(frame: pl.DataFrame) -> list[tuple[Any, ...]]:
    """Rows with times in UTC and numbers as Decimal or int, so both sides compare exactly."""

    def plain(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        if isinstance(value, float):
            raise AssertionError(f"an inexact number in the totals: {value}")
        return value

    return [tuple(plain(v) for v in row) for row in frame.iter_rows()]


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.parametrize("name", sorted(SPECS))
def test_running_totals_equal_duckdb_over_the_raw_events_across_a_restart(
    name: str, tmp_path: Path, pg_url: str, rds: redis.Redis, stream_key: str
) -> None:
    assert produce(rds, stream_key, wedding_events(EVENTS, bad_share=0.06, seed=31)) == EVENTS
    _, _, table, events_table = SPECS[name]
    plan = StreamPlan.of(load_pipeline(spec_copy(tmp_path, name, stream_key, batch_size=333)))
    engine = sa.create_engine(pg_url)

    first = StreamProcessor(plan, broker(plan, "c1"), engine).run(lambda: False, max_events=FIRST_RUN)
    assert first.events_read == FIRST_RUN
    totals, _, _ = expected(rds, stream_key, name, FIRST_RUN)
    assert as_rows(loaded(engine, table, totals.columns)) == as_rows(totals)

    # a second processor (a restart) resumes from the totals' state committed with the last id
    rest = StreamProcessor(plan, broker(plan, "c1"), engine).run(lambda: False, idle_exit=0.5)
    assert first.events_read + rest.events_read == EVENTS
    totals, good, bad = expected(rds, stream_key, name, EVENTS)
    assert as_rows(loaded(engine, table, totals.columns)) == as_rows(totals)
    letters = dead_letters(rds, stream_key)
    assert set(letters) == bad and {f["reason"] for f in letters.values()} == {"rules"}
    with engine.connect() as conn:
        ids = {r[0] for r in conn.execute(sa.text(f"SELECT _entry_id FROM {events_table}"))}
    assert ids == good

    # the data exercises what it should: every kind of bad event, totals that move, exact money
    broken = {rule for f in letters.values() for rule in json.loads(f["rules"])}
    assert {"known_type", "has_time", "positive_payment"} <= broken
    assert len(bad) > 60 and totals["event_count"].max() > 10  # type: ignore[operator]
    assert isinstance(totals["amount_sum"].drop_nulls()[0], Decimal)
    if name == "wedding_live_weddings":
        assert "has_wedding" in broken
        assert (totals["guest_change_sum"] > 0).all()
        some = next(f for f in letters.values() if json.loads(f["values"]).get("guest_email"))
        email = json.loads(some["values"])["guest_email"]
        assert "@example.com" not in email  # pii: masked in the dead letter
    else:
        assert {"positive_price", "payment_for_a_wedding"} <= broken
        assert totals["new_price_latest"].null_count() < totals.height
    engine.dispose()


@pytest.mark.redis
def test_stream_produce_writes_the_wedding_events(rds: redis.Redis, stream_key: str) -> None:
    command = [sys.executable, "-m", "headwater.cli", "stream", "produce", "--example", "wedding"]
    command += ["--stream", stream_key, "--count", "300", "--seed", "9", "--bad-share", "0.1"]
    done = subprocess.run([*command, "--redis-url", REDIS_URL], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote 300 wedding event(s) to {stream_key}"
    written = [json.loads(f["payload"]) for _, f in payloads_of(rds, stream_key)]
    assert written == list(wedding_events(300, bad_share=0.1, seed=9))


def test_wedding_events_mix_three_types_and_a_share_of_bad_ones() -> None:
    events = pl.DataFrame(list(wedding_events(5000, bad_share=0.1, seed=4)), infer_schema_length=None)
    kinds = events["event_type"].value_counts().sort("event_type")
    assert set(kinds["event_type"]) == {*EVENT_TYPES, "gift_registry", "tasting_booked", "seating_update"}
    shares = dict(zip(kinds["event_type"], kinds["count"] / events.height, strict=True))
    assert 0.5 < shares["rsvp"] < 0.65 and 0.2 < shares["payment"] < 0.32
    assert 0.1 < shares["price_change"] < 0.2
    payments = events.filter(pl.col("event_type") == "payment")
    assert (payments["amount"] <= 0).sum() > 20 and payments["amount"].max() < 15_000  # type: ignore[operator]
    assert events["wedding_id"].null_count() > events.filter(pl.col("event_type") == "price_change").height
    rsvps = events.filter(pl.col("event_type") == "rsvp")
    assert set(rsvps["response"]) == {"accepted", "declined"} and (rsvps["guest_change"] < 0).any()
    assert list(wedding_events(50, seed=1)) == list(wedding_events(50, seed=1))
