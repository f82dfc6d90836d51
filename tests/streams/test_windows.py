"""Event-time windows (headwater.streams.windows) against independent computations: DuckDB SQL for
tumbling and hopping windows, a plain-Python sort-and-gap scan for sessions. Both references apply the
documented rules (docs/windows.md) row by row in arrival order; the module works on whole batches.
No external service: Polars and an in-memory DuckDB only."""

from __future__ import annotations

import math
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from pydantic import ValidationError

from headwater.streams.windows import (
    WindowInputError,
    WindowSpec,
    WindowState,
    flush,
    process,
)

EPOCH = datetime(2026, 3, 1, 12, 0, 0)
US = 1_000_000
FNS = ["count", "sum", "mean", "min", "max", "first", "last", "std"]
AGG_COLUMNS = [f"v_{fn}" for fn in FNS]


def at(seconds: float) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


def make_events(seed: int, n: int = 600, keys: int = 4) -> pl.DataFrame:
    """Events in arrival order: time mostly advancing, jitter of a few seconds (out of order within the
    lateness), one in twelve arriving a minute or more behind (beyond it), a few null values, values
    whole numbers so that sums are exact whatever the order of addition."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    clock = 0.0
    for _ in range(n):
        clock += rng.uniform(0.0, 1.5)
        shift = -rng.uniform(0, 8) if rng.random() < 0.3 else 0.0
        if rng.random() < 1 / 12:
            shift = -rng.uniform(40, 120)
        t = max(0.0, clock + shift)
        # Whole milliseconds: exact in microseconds, and ties happen now and then.
        rows.append(
            {
                "device": f"d{rng.randrange(keys)}",
                "ts": at(round(t, 1)),
                "v": None if rng.random() < 0.05 else float(rng.randint(-50, 200)),
            }
        )
    return pl.DataFrame(rows, schema={"device": pl.String, "ts": pl.Datetime("us"), "v": pl.Float64})


def spec_for(kind: str, lateness: float = 20.0) -> WindowSpec:
    extra: dict[str, Any] = {
        "tumbling": {"size": "10s"},
        "hopping": {"size": "30s", "hop": "10s"},
        "session": {"gap": "4s"},
    }[kind]
    return WindowSpec(
        kind=kind,  # type: ignore[arg-type]
        time_column="ts",
        keys=["device"],
        aggregations={"v": FNS},
        allowed_lateness=lateness,
        **extra,
    )


def run(
    spec: WindowSpec, events: pl.DataFrame, sizes: list[int], *, restart: bool = False
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Feed `events` in consecutive batches of the given sizes, then flush; returns every closed window
    and every late row. Checks on the way that a window is emitted exactly when the watermark reaches
    its end plus the lateness, and (restart=True) carries the state through its JSON form."""
    state = WindowState()
    lateness = timedelta(seconds=spec.allowed_lateness)
    closed: list[pl.DataFrame] = []
    late: list[pl.DataFrame] = []
    offset = 0
    for size in sizes:
        batch = events.slice(offset, size)
        offset += size
        result = process(spec, state, batch)
        state = result.state
        if restart:
            state = WindowState.from_json(state.to_json())
        watermark = events.slice(0, offset)["ts"].max()
        closed.append(result.closed)
        late.append(result.late)
        if watermark is None:  # nothing yet (empty batches)
            assert state.watermark is None and result.closed.height == 0
            continue
        assert state.watermark is not None
        assert (result.closed["window_end"] + lateness <= watermark).all()
        if state.windows is not None and state.windows.height:
            open_ends = pl.from_epoch(state.windows["window_end"], "us")
            assert (open_ends + lateness > watermark).all()
    assert offset == events.height
    rest, state = flush(spec, state)
    assert state.open_windows == 0
    closed.append(rest)
    return tidy(pl.concat(closed)), pl.concat(late)


def tidy(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort("device", "window_start").select(
        "device", "window_start", "window_end", "event_count", *AGG_COLUMNS
    )


def random_sizes(rng: random.Random, total: int) -> list[int]:
    sizes: list[int] = []
    while sum(sizes) < total:
        sizes.append(min(rng.choice([0, 1, 2, 3, 7, 20, 55, 130]), total - sum(sizes)))
    return sizes


# ----------------------------------------------------------------- independent references


def duckdb_fixed_windows(events: pl.DataFrame, size: int, hop: int, lateness: int) -> dict[str, Any]:
    """Tumbling (hop == size) and hopping windows in SQL: each event's watermark is the max event time
    of the rows before it in arrival order; an event joins window [start, start + size) for every
    start = floor(t / hop) * hop - j * hop, j < size / hop, unless start + size + lateness <= watermark."""
    con = duckdb.connect()
    frame = events.with_row_index("seq").with_columns(pl.col("ts").dt.epoch("us").alias("t"))
    con.register("events", frame)
    assigned = f"""
        WITH marked AS (
            SELECT *, max(t) OVER (ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS wm
            FROM events
        ), assigned AS (
            SELECT marked.*, CAST(floor(t / {hop}) AS BIGINT) * {hop} - j * {hop} AS start
            FROM marked, range(0, {size // hop}) AS r(j)
        )
        SELECT *, (wm IS NOT NULL AND start + {size} + {lateness} <= wm) AS is_late FROM assigned
    """
    windows = con.execute(
        f"""
        SELECT device, start, start + {size} AS stop, count(*) AS event_count,
               count(v), sum(v), avg(v), min(v), max(v),
               first(v ORDER BY t, seq), last(v ORDER BY t, seq), stddev_samp(v)
        FROM ({assigned}) WHERE NOT is_late
        GROUP BY device, start
        """
    ).fetchall()
    late = con.execute(f"SELECT seq, start FROM ({assigned}) WHERE is_late ORDER BY seq, start").fetchall()
    con.close()
    names = ["device", "start", "stop", "event_count", *AGG_COLUMNS]
    # DuckDB's row order of columns: count, sum, avg, min, max, first, last, stddev.
    order = ["v_count", "v_sum", "v_mean", "v_min", "v_max", "v_first", "v_last", "v_std"]
    raw = pl.DataFrame(windows, schema=["device", "start", "stop", "event_count", *order], orient="row")
    return {"windows": as_expected(raw.select(names)), "late": late}


def python_sessions(events: pl.DataFrame, gap: int, lateness: int) -> dict[str, Any]:
    """Sessions by a sequential scan: an event is late when its time is before (watermark - lateness),
    the watermark being the max time of the events before it; the others, per device, sorted by time,
    start a new session when the gap to the previous event is >= gap."""
    rows = events.with_columns(pl.col("ts").dt.epoch("us").alias("t")).to_dicts()
    watermark: int | None = None
    kept: dict[str, list[tuple[int, int, float | None]]] = {}
    late: list[int] = []
    for seq, row in enumerate(rows):
        if watermark is not None and row["t"] < watermark - lateness:
            late.append(seq)
        else:
            kept.setdefault(row["device"], []).append((row["t"], seq, row["v"]))
        watermark = row["t"] if watermark is None else max(watermark, row["t"])
    out: list[dict[str, Any]] = []
    for device, items in kept.items():
        items.sort()
        sessions: list[list[tuple[int, int, float | None]]] = []
        for item in items:
            if sessions and item[0] - sessions[-1][-1][0] < gap:
                sessions[-1].append(item)
            else:
                sessions.append([item])
        for session in sessions:
            values = [v for _, _, v in session if v is not None]
            out.append(
                {
                    "device": device,
                    "start": session[0][0],
                    "stop": session[-1][0] + gap,
                    "event_count": len(session),
                    "v_count": len(values),
                    "v_sum": sum(values) if values else None,
                    "v_mean": statistics.fmean(values) if values else None,
                    "v_min": min(values) if values else None,
                    "v_max": max(values) if values else None,
                    "v_first": session[0][2],
                    "v_last": session[-1][2],
                    "v_std": statistics.stdev(values) if len(values) > 1 else None,
                }
            )
    return {"windows": as_expected(pl.DataFrame(out)), "late": late}


def as_expected(raw: pl.DataFrame) -> pl.DataFrame:
    return tidy(
        raw.with_columns(
            pl.from_epoch("start", "us").alias("window_start"),
            pl.from_epoch("stop", "us").alias("window_end"),
            pl.col("event_count", "v_count").cast(pl.UInt32),
            pl.col("v_sum", "v_mean", "v_min", "v_max", "v_first", "v_last", "v_std").cast(pl.Float64),
        )
    )


def reference(kind: str, events: pl.DataFrame, lateness_s: float) -> dict[str, Any]:
    lateness = round(lateness_s * US)
    if kind == "tumbling":
        return duckdb_fixed_windows(events, 10 * US, 10 * US, lateness)
    if kind == "hopping":
        return duckdb_fixed_windows(events, 30 * US, 10 * US, lateness)
    return python_sessions(events, 4 * US, lateness)


def late_keys(kind: str, late: pl.DataFrame) -> list[Any]:
    """The late rows as the references list them: (seq, window start) or, for sessions, seq."""
    late = late.with_columns(pl.col("window_start").dt.epoch("us"))
    if kind == "session":
        return late["seq"].to_list()
    return list(zip(late["seq"].to_list(), late["window_start"].to_list(), strict=True))


# ----------------------------------------------------------------- results


@pytest.mark.parametrize("lateness", [20.0, 3.0, 0.0])
@pytest.mark.parametrize("kind", ["tumbling", "hopping", "session"])
def test_windows_equal_an_independent_computation_with_out_of_order_and_late_events(
    kind: str, lateness: float
) -> None:
    """Lateness 20 s: jitter (up to 8 s) is within it, stragglers (40-120 s) beyond; 3 s and 0 s put the
    boundary among the jittered events."""
    events = make_events(seed=13).with_row_index("seq")
    spec = spec_for(kind, lateness)
    expected = reference(kind, events.drop("seq"), spec.allowed_lateness)
    closed, late = run(spec, events, random_sizes(random.Random(1), events.height))

    assert_frame_equal(closed, expected["windows"])
    assert late_keys(kind, late) == expected["late"]
    assert set(late["reason"]) == {"late"}
    # The data exercises what it should: out-of-order events counted, late ones not.
    times = events["ts"]
    out_of_order = (times < times.cum_max().shift(1)).sum()
    assert late.height > 10
    if lateness == 20.0:
        assert out_of_order > late["seq"].n_unique() + 100
    counted = closed["event_count"].sum()
    per_event = {"tumbling": 1, "hopping": 3, "session": 1}[kind]
    assert counted == events.height * per_event - late.height


@pytest.mark.parametrize("kind", ["tumbling", "hopping", "session"])
def test_results_do_not_depend_on_the_batch_split(kind: str) -> None:
    events = make_events(seed=7, n=400).with_row_index("seq")
    spec = spec_for(kind, lateness=10.0)
    whole_closed, whole_late = run(spec, events, [events.height])
    one_by_one = run(spec, events, [1] * events.height)
    assert_frame_equal(one_by_one[0], whole_closed)
    assert_frame_equal(one_by_one[1], whole_late)
    for seed in range(4):
        closed, late = run(spec, events, random_sizes(random.Random(seed), events.height))
        assert_frame_equal(closed, whole_closed)
        assert_frame_equal(late, whole_late)


@pytest.mark.parametrize("kind", ["tumbling", "hopping", "session"])
def test_state_survives_a_restart_between_every_batch(kind: str) -> None:
    events = make_events(seed=21, n=300).with_row_index("seq")
    spec = spec_for(kind)
    sizes = random_sizes(random.Random(5), events.height)
    kept = run(spec, events, sizes)
    restarted = run(spec, events, sizes, restart=True)
    assert_frame_equal(restarted[0], kept[0])
    assert_frame_equal(restarted[1], kept[1])
    # And the JSON form is exact: the same state comes back, frame and all.
    state = process(spec, WindowState(), events.slice(0, 150)).state
    again = WindowState.from_json(state.to_json())
    assert (again.watermark, again.seen, again.time_zone) == (state.watermark, state.seen, None)
    assert state.windows is not None and again.windows is not None
    assert_frame_equal(again.windows, state.windows, check_exact=True)


def test_a_late_event_within_lateness_bridges_two_open_sessions() -> None:
    spec = WindowSpec(
        kind="session", time_column="ts", keys=["device"], aggregations={"v": "sum"}, gap="6s",
        allowed_lateness="1m",
    )  # fmt: skip
    first = pl.DataFrame({"device": ["a", "a"], "ts": [at(0), at(10)], "v": [1, 2]})
    closed, late, state = process(spec, WindowState(), first)
    assert closed.height == 0 and late.height == 0 and state.open_windows == 2
    closed, late, state = process(spec, state, pl.DataFrame({"device": ["a"], "ts": [at(5)], "v": [4]}))
    assert closed.height == 0 and late.height == 0 and state.open_windows == 1
    # The watermark passes 10 s + 6 s gap + 60 s lateness: the merged session closes, once.
    closed, late, state = process(spec, state, pl.DataFrame({"device": ["b"], "ts": [at(76)], "v": [0]}))
    assert closed.to_dicts() == [
        {"device": "a", "window_start": at(0), "window_end": at(16), "event_count": 3, "v_sum": 4 + 1 + 2}
    ]
    assert state.open_windows == 1  # b's session
    # An event that would have joined the closed session is late.
    closed, late, state = process(spec, state, pl.DataFrame({"device": ["a"], "ts": [at(14)], "v": [9]}))
    assert closed.height == 0 and late["reason"].to_list() == ["late"]


def test_sessions_without_keys_span_all_events() -> None:
    spec = WindowSpec(kind="session", time_column="ts", gap=3, aggregations={"v": ["count", "last"]})
    batch = pl.DataFrame({"ts": [at(0), at(2), at(4.5), at(8), at(7.9), at(20)], "v": [1, 2, 3, 4, 5, 6]})
    closed, late, state = process(spec, WindowState(), batch)
    # 7.9 arrives after 8 with no lateness allowed: late. 0, 2, 4.5 form one session, 8 another.
    assert late["ts"].to_list() == [at(7.9)]
    assert closed.select("window_start", "window_end", "event_count", "v_last").rows() == [
        (at(0), at(7.5), 3, 3),
        (at(8), at(11), 1, 4),
    ]
    rest, _ = flush(spec, state)
    assert rest.select("window_start", "event_count").rows() == [(at(20), 1)]


def test_tumbling_window_closes_exactly_at_end_plus_lateness_and_keeps_the_time_zone() -> None:
    spec = WindowSpec(kind="tumbling", time_column="ts", size=30, allowed_lateness="5s")
    zone = "Europe/Paris"
    ts = pl.Series([at(1), at(29), at(34.999999)]).dt.replace_time_zone("UTC").dt.convert_time_zone(zone)
    closed, late, state = process(spec, WindowState(), pl.DataFrame({"ts": ts}))
    assert closed.height == 0 and state.open_windows == 2
    # Watermark 35 s = end 30 s + lateness 5 s: the first window closes; an event for it is now late.
    ts2 = pl.Series([at(35), at(29.5)]).dt.replace_time_zone("UTC").dt.convert_time_zone(zone)
    closed, late, state = process(spec, state, pl.DataFrame({"ts": ts2}))
    assert closed["event_count"].to_list() == [2]
    assert closed.schema["window_start"] == pl.Datetime("us", zone)
    assert closed["window_start"][0] == ts[0].replace(second=0, microsecond=0)
    assert late["ts"].to_list() == [ts2[1]] and late["watermark"].to_list() == [ts2[0]]


def test_events_without_an_event_time_are_returned_not_counted() -> None:
    spec = WindowSpec(kind="tumbling", time_column="ts", size="10s")
    batch = pl.DataFrame({"ts": [at(1), None, at(2)]}, schema={"ts": pl.Datetime("us")})
    _, late, state = process(spec, WindowState(), batch)
    assert late["reason"].to_list() == ["no_event_time"]
    rest, _ = flush(spec, state)
    assert rest["event_count"].to_list() == [2]


# ----------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "hopping", "size": "60s", "hop": "25s"}, "hop 25.0s does not divide size 60.0s"),
        ({"kind": "hopping", "size": "10s", "hop": "20s"}, "does not divide size"),
        ({"kind": "hopping", "size": "10s"}, "needs a hop"),
        ({"kind": "tumbling"}, "needs a size"),
        ({"kind": "session", "size": "5s"}, "needs a gap"),
        ({"kind": "tumbling", "size": "5s", "allowed_lateness": -1}, "allowed_lateness"),
        ({"kind": "tumbling", "size": "5s", "allowed_lateness": "-5s"}, "allowed_lateness"),
        ({"kind": "tumbling", "size": "5s", "aggregations": {"v": "median"}}, "unknown aggregation 'median'"),
        ({"kind": "tumbling", "size": "soon"}, "'soon' is not a duration"),
        ({"kind": "tumbling", "size": "5s", "keys": ["window_start"]}, "reserved"),
        ({"kind": "tumbling", "size": "5s", "gap": "3s"}, "gap applies to session windows only"),
    ],
)
def test_bad_specs_are_refused_with_a_clear_message(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        WindowSpec(time_column="ts", **fields)
    assert message in str(caught.value)


def test_unknown_aggregation_lists_the_choices() -> None:
    with pytest.raises(ValidationError, match="choose among count, sum, mean, min, max, first, last, std"):
        WindowSpec(kind="tumbling", time_column="ts", size=5, aggregations={"v": ["sum", "p99"]})


@pytest.mark.parametrize(
    ("batch", "column", "problem"),
    [
        (pl.DataFrame({"when": [at(1)], "device": ["a"], "v": [1]}), "ts", "is missing"),
        (pl.DataFrame({"ts": [at(1)], "v": [1]}), "device", "is missing"),
        (pl.DataFrame({"ts": [at(1)], "device": ["a"]}), "v", "is missing"),
        (pl.DataFrame({"ts": ["2026-03-01"], "device": ["a"], "v": [1]}), "ts", "is String, not a Datetime"),
    ],
)
def test_a_batch_without_the_needed_columns_is_refused_naming_the_column(
    batch: pl.DataFrame, column: str, problem: str
) -> None:
    spec = WindowSpec(kind="tumbling", time_column="ts", keys=["device"], size=5, aggregations={"v": "sum"})
    with pytest.raises(WindowInputError) as caught:
        process(spec, WindowState(), batch)
    assert caught.value.column == column
    assert f"{column!r} {problem}" in str(caught.value)


# ----------------------------------------------------------------- performance sanity


def test_a_million_events_in_batches_of_ten_thousand_over_ten_thousand_keys() -> None:
    """Tumbling 30 s windows, 10,000 keys, 1,000,000 events: prints the time, asserts only the counts."""
    n, keys, batch = 1_000_000, 10_000, 10_000
    start = datetime(2026, 3, 1, tzinfo=UTC)
    row = pl.int_range(0, n, dtype=pl.Int64)
    events = pl.select(
        (row % keys).alias("patient"),
        # ~1,000 events/s of event time, up to 3 s out of order (within the 5 s lateness).
        (pl.lit(start) + pl.duration(milliseconds=row) - pl.duration(milliseconds=(row * 7919) % 3000))
        .dt.cast_time_unit("us")
        .alias("ts"),
        (row % 150 + 40).cast(pl.Float64).alias("hr"),
    )
    spec = WindowSpec(
        kind="tumbling", time_column="ts", keys=["patient"], size="30s", allowed_lateness="5s",
        aggregations={"hr": ["count", "mean", "max", "std"]},
    )  # fmt: skip
    state, emitted, late, began = WindowState(), 0, 0, time.perf_counter()
    for offset in range(0, n, batch):
        closed, late_rows, state = process(spec, state, events.slice(offset, batch))
        emitted += int(closed["event_count"].sum())
        late += late_rows.height
    rest, state = flush(spec, state)
    elapsed = time.perf_counter() - began
    emitted += int(rest["event_count"].sum())
    print(f"\n1,000,000 events / 100 batches / 10,000 keys, tumbling 30 s: {elapsed:.2f} s")
    assert late == 0 and emitted == n
    assert math.isfinite(elapsed)
