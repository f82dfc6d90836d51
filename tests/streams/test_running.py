"""Running totals (headwater.streams.windows, kind running) against DuckDB SQL over the raw events: every
batch emits exactly the keys it touched, each with the totals of all events so far (the prefix of the
stream up to the end of that batch), whatever the batch split, with the state through its JSON form
between every batch; out-of-order events are never late; events without an event time are returned,
not counted. Also the `latest` aggregation on a tumbling window, the spec's refusals, and the window
load's primary key for running totals in a streaming spec. No external service."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from pydantic import ValidationError

from headwater.spec.loader import load_pipeline
from headwater.streams.plan import StreamPlan
from headwater.streams.windows import WindowSpec, WindowState, flush, process
from tests.streams.test_windowing import BAD, GOOD_DEST, _refusals
from tests.streams.test_windows import at, make_events, random_sizes

FNS = ["count", "sum", "mean", "min", "max", "first", "last", "latest"]
AGG_COLUMNS = [f"v_{fn}" for fn in FNS]
COLUMNS = ["device", "window_start", "window_end", "event_count", *AGG_COLUMNS]
SPEC = WindowSpec(kind="running", time_column="ts", keys=["device"], aggregations={"v": FNS})


def running_events(seed: int, n: int = 600) -> pl.DataFrame:
    """The windows tests' events (jitter of seconds, one in twelve a minute or more behind, a few null
    values, whole-number values), with a few null devices and null event times; `seq` = arrival."""
    events = make_events(seed, n=n, keys=5).with_row_index("seq")
    return events.with_columns(
        pl.when(pl.col("seq") % 41 == 7).then(None).otherwise(pl.col("device")).alias("device"),
        pl.when(pl.col("seq") % 37 == 5).then(None).otherwise(pl.col("ts")).alias("ts"),
    )


def duckdb_totals(events: pl.DataFrame, upto: int) -> pl.DataFrame:
    """Per device (NULL is a device of its own), the totals over the events that arrived before `upto`
    and have an event time."""
    con = duckdb.connect()
    con.register("events", events.with_columns(pl.col("ts").dt.epoch("us").alias("t")))
    rows = con.execute(
        f"""
        SELECT device, min(t), max(t), count(*), count(v), sum(v), avg(v), min(v), max(v),
               first(v ORDER BY t, seq), last(v ORDER BY t, seq),
               last(v ORDER BY t, seq) FILTER (WHERE v IS NOT NULL)
        FROM events WHERE seq < {upto} AND t IS NOT NULL GROUP BY device
        """
    ).fetchall()
    con.close()
    raw = pl.DataFrame(rows, schema=["device", "start", "stop", "event_count", *AGG_COLUMNS], orient="row")
    return tidy(
        raw.with_columns(
            pl.from_epoch("start", "us").alias("window_start"),
            pl.from_epoch("stop", "us").alias("window_end"),
            pl.col("event_count", "v_count").cast(pl.UInt32),
            pl.col(AGG_COLUMNS[1:]).cast(pl.Float64),
        )
    )


def tidy(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(COLUMNS).sort("device", nulls_last=True)


def feed(
    spec: WindowSpec, events: pl.DataFrame, sizes: list[int], *, restart: bool = False
) -> tuple[list[pl.DataFrame], pl.DataFrame, WindowState]:
    """Feed `events` in consecutive batches of the given sizes: what each batch emitted, every row
    returned as not counted, and the last state (through its JSON form between batches if `restart`)."""
    state, emitted, returned, offset = WindowState(), [], [], 0
    for size in sizes:
        closed, late, state = process(spec, state, events.slice(offset, size))
        offset += size
        if restart:
            state = WindowState.from_json(state.to_json())
        emitted.append(closed)
        returned.append(late)
    assert offset == events.height
    return emitted, pl.concat(returned), state


@pytest.mark.parametrize("seed", [3, 4])
def test_each_batch_emits_the_touched_keys_with_the_totals_of_every_event_so_far(seed: int) -> None:
    events = running_events(seed=seed)
    sizes = random_sizes(random.Random(seed), events.height)
    emitted, returned, state = feed(SPEC, events, sizes)
    offset = 0
    for size, closed in zip(sizes, emitted, strict=True):
        batch = events.slice(offset, size).filter(pl.col("ts").is_not_null())
        offset += size
        touched = batch.select("device").unique()
        expected = duckdb_totals(events, offset).join(touched, on="device", how="semi", nulls_equal=True)
        assert_frame_equal(tidy(closed), expected)
        assert closed["device"].to_list() == expected["device"].to_list()  # sorted by the key
    # nothing is late: out-of-order events, a minute behind and more, are counted
    times = events["ts"].drop_nulls()
    assert (times < times.cum_max().shift(1) - timedelta(seconds=40)).sum() > 20
    assert returned["reason"].to_list() == ["no_event_time"] * events["ts"].null_count()
    assert returned["seq"].to_list() == events.filter(pl.col("ts").is_null())["seq"].to_list()
    # flush emits every key's totals and keeps them
    everything, kept = flush(SPEC, state)
    assert_frame_equal(tidy(everything), duckdb_totals(events, events.height))
    assert kept is state and kept.open_windows == everything.height == 6  # five devices and null


def test_results_do_not_depend_on_the_batch_split() -> None:
    events = running_events(seed=7, n=400)
    whole, whole_returned, state = feed(SPEC, events, [events.height])
    final = flush(SPEC, state)[0]
    assert_frame_equal(tidy(whole[0]), tidy(final))
    splits = [[1] * events.height] + [random_sizes(random.Random(s), events.height) for s in range(4)]
    for sizes in splits:
        emitted, returned, state = feed(SPEC, events, sizes)
        assert_frame_equal(flush(SPEC, state)[0], final)
        assert_frame_equal(returned, whole_returned)
        # the last row emitted for each key is its final total
        last = pl.concat(emitted).with_row_index("n").sort("n").group_by("device").last().drop("n")
        assert_frame_equal(tidy(last), tidy(final))


def test_state_survives_a_restart_between_every_batch() -> None:
    events = running_events(seed=21, n=300)
    sizes = random_sizes(random.Random(5), events.height)
    kept = feed(SPEC, events, sizes)
    restarted = feed(SPEC, events, sizes, restart=True)
    for a, b in zip(kept[0], restarted[0], strict=True):
        assert_frame_equal(b, a)
    assert_frame_equal(restarted[1], kept[1])
    state = process(SPEC, WindowState(), events.slice(0, 150)).state
    again = WindowState.from_json(state.to_json())
    assert (again.watermark, again.seen, again.time_zone) == (state.watermark, state.seen, None)
    assert state.windows is not None and again.windows is not None
    assert_frame_equal(again.windows, state.windows, check_exact=True)


def test_without_keys_one_total_spans_every_event() -> None:
    spec = WindowSpec(kind="running", time_column="ts", aggregations={"v": ["sum", "latest"]})
    first = pl.DataFrame({"ts": [at(5), at(1)], "v": [2, None]})
    closed, _, state = process(spec, WindowState(), first)
    assert closed.rows() == [(at(1), at(5), 2, 2, 2)]
    # an event an hour behind is counted; a batch with no timed event emits nothing
    closed, _, state = process(spec, state, pl.DataFrame({"ts": [at(-3600)], "v": [7]}))
    assert closed.rows() == [(at(-3600), at(5), 3, 9, 2)]
    nothing = pl.DataFrame({"ts": [None], "v": [1]}, schema={"ts": pl.Datetime("us"), "v": pl.Int64})
    closed, late, state = process(spec, state, nothing)
    assert closed.height == 0 and late["reason"].to_list() == ["no_event_time"]
    assert flush(spec, state)[0].rows() == [(at(-3600), at(5), 3, 9, 2)]


def test_latest_is_the_last_non_null_value_in_a_tumbling_window_too() -> None:
    events = make_events(seed=13).with_row_index("seq")
    spec = WindowSpec(
        kind="tumbling", size="10s", allowed_lateness="20s", time_column="ts", keys=["device"],
        aggregations={"v": ["last", "latest"]},
    )  # fmt: skip
    emitted, _, state = feed(spec, events, random_sizes(random.Random(2), events.height))
    got = pl.concat([*emitted, flush(spec, state)[0]]).sort("device", "window_start")
    con = duckdb.connect()
    con.register("events", events.with_columns(pl.col("ts").dt.epoch("us").alias("t")))
    rows = con.execute(  # the windows' own counted events: those not late (watermark before each event)
        """
        WITH marked AS (
            SELECT *, t // 10000000 * 10000000 AS start,
                   max(t) OVER (ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS wm
            FROM events
        )
        SELECT device, start, last(v ORDER BY t, seq), last(v ORDER BY t, seq) FILTER (WHERE v IS NOT NULL)
        FROM marked WHERE wm IS NULL OR start + 10000000 + 20000000 > wm
        GROUP BY device, start ORDER BY device, start
        """
    ).fetchall()
    con.close()
    start = got["window_start"].dt.epoch("us").to_list()
    assert list(zip(got["device"], start, got["v_last"], got["v_latest"], strict=True)) == rows
    assert got["v_last"].null_count() > got["v_latest"].null_count()  # the data has windows ending in null


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"size": "10s"}, "a running total has no time bounds: remove size"),
        ({"gap": "5m", "hop": "1m"}, "remove hop, gap"),
        ({"allowed_lateness": "10s"}, "no event is late for a running total"),
        ({"aggregations": {"v": ["sum", "std"]}}, "std of v"),
    ],
)
def test_bad_running_specs_are_refused_with_a_clear_message(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        WindowSpec(kind="running", time_column="ts", **fields)
    assert message in str(caught.value)


RUNNING = "{kind: running, time_column: ts, keys: [k], aggregations: {x: [sum, latest]}}"


def test_a_running_window_loads_with_its_keys_as_the_primary_key(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    destination = "{table: w, mode: upsert, primary_key: [k]}"
    path.write_text(BAD.format(type="streaming", ts="timestamptz", window=RUNNING, destination=destination))
    plan = StreamPlan.of(load_pipeline(path))
    assert plan.window is not None and plan.window.window.kind == "running"
    assert plan.window_load is not None and plan.window_load.destination.primary_key == ["k"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"destination": GOOD_DEST},  # [k, window_start]: a running total has one row per key
            "s.yaml:18: steps[3].destination.primary_key: running totals are identified by their keys "
            "alone; primary_key ['k', 'window_start'] is not (fix: set primary_key: [k])",
        ),
        (
            {
                "window": "{kind: running, time_column: ts, aggregations: {x: sum}}",
                "destination": "{table: w, mode: upsert, primary_key: [x]}",
            },
            "s.yaml:18: steps[3].destination.mode: a running total without keys is one row",
        ),
    ],
)
def test_a_running_window_load_keyed_otherwise_is_refused(
    tmp_path: Path, change: dict[str, str], expected: str
) -> None:
    problems = _refusals(tmp_path, **{"window": RUNNING, **change})
    assert any(p.startswith(expected) for p in problems), problems
