"""The anomaly, alert and publish steps of a streaming spec, without services: z-scores equal a
plain-Python computation and do not depend on how events are split into batches or on a restart
between batches; a `for` rule fires exactly when its condition has held that long, once per streak;
what a micro-batch cannot do is refused at load with file:line and the fix."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from headwater.errors import SpecError
from headwater.spec.loader import load_pipeline
from headwater.streams.alert_rules import StreamAlertRule
from headwater.streams.alerts import AlertState, evaluate
from headwater.streams.anomaly import AnomalySpec, AnomalyState, score
from headwater.streams.plan import StreamPlan

T0 = datetime(2026, 12, 1, tzinfo=UTC)
SPEC = AnomalySpec(
    columns=["hr"], time_column="ts", keys=["p"], over="60s", bucket="10s", z=2.0, min_events=5
)


def events(count: int, seed: int = 3) -> pl.DataFrame:
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        p = rng.choice(["a", "b", None])
        hr = None if rng.random() < 0.03 else rng.gauss(80, 6) + (40 if rng.random() < 0.02 else 0)
        rows.append({"p": p, "ts": T0 + timedelta(milliseconds=700 * i), "hr": hr})
    return pl.DataFrame(rows, schema={"p": pl.String, "ts": pl.Datetime("us", "UTC"), "hr": pl.Float64})


def plain_zscores(frame: pl.DataFrame) -> list[float | None]:
    """Per event: the same key's non-null values in the 10 s buckets within 60 s before its bucket."""
    rows = frame.to_dicts()
    out: list[float | None] = []
    for row in rows:
        bucket = int(row["ts"].timestamp() * 1_000_000) // 10_000_000 * 10_000_000
        base = [
            r["hr"]
            for r in rows
            if r["p"] == row["p"]
            and r["hr"] is not None
            and bucket - 60_000_000
            <= int(r["ts"].timestamp() * 1_000_000) // 10_000_000 * 10_000_000
            < bucket
        ]
        z = None
        if len(base) >= 5 and row["hr"] is not None:
            mean = sum(base) / len(base)
            var = sum(x * x for x in base) / len(base) - mean * mean
            if var > 1e-12:
                z = (row["hr"] - mean) / math.sqrt(var)
        out.append(z)
    return out


def scored_in_batches(frame: pl.DataFrame, sizes: list[int], restart: bool) -> pl.DataFrame:
    state, parts, offset = AnomalyState(), [], 0
    for size in sizes:
        out, state = score(SPEC, state, frame.slice(offset, size))
        if restart:
            state = AnomalyState.from_json(state.to_json())
        parts.append(out)
        offset += size
    assert offset == frame.height
    return pl.concat(parts)


def test_zscores_equal_a_plain_computation_however_the_events_are_batched() -> None:
    frame = events(600)
    want = plain_zscores(frame)
    assert sum(z is not None for z in want) > 400 and any(abs(z) > 2.0 for z in want if z is not None)
    whole = scored_in_batches(frame, [600], restart=False)
    got = whole["hr_zscore"].to_list()
    assert [g is None for g in got] == [w is None for w in want]
    assert all(g == pytest.approx(w, abs=1e-9) for g, w in zip(got, want, strict=True) if w is not None)
    assert whole["anomaly"].to_list() == [w is not None and abs(w) > 2.0 for w in want]
    for sizes in ([100] * 6, [1, 37, 200, 362], [7] * 85 + [5]):
        split = scored_in_batches(frame, sizes, restart=True)  # sums in another order: equal to 1e-9
        again = split["hr_zscore"].to_list()
        assert [a is None for a in again] == [g is None for g in got]
        assert all(a == pytest.approx(g, abs=1e-9) for a, g in zip(again, got, strict=True) if g is not None)
        assert split["anomaly"].to_list() == whole["anomaly"].to_list()


def test_the_kept_history_is_bounded_by_over() -> None:
    _, state = score(SPEC, AnomalyState(), events(3000))
    assert state.buckets is not None
    # 60 s / 10 s buckets: at most 7 buckets (the window plus the newest) per key (a, b, null)
    assert state.buckets.height <= 7 * 3


def test_a_for_rule_fires_once_when_the_condition_has_held_that_long() -> None:
    rule = StreamAlertRule.model_validate(
        {"name": "fast", "severity": "warning", "when": "hr > 120", "for": "5m"}
    )
    seconds = [0, 60, 120, 180, 240, 299, 300, 360, 420, 450, 480, 540, 840, 900]
    hr = [130, 130, 130, 130, 130, 130, 130, 130, 130, 90, 130, 130, 130, 130]
    frame = pl.DataFrame(
        {"p": ["x"] * len(seconds), "ts": [T0 + timedelta(seconds=s) for s in seconds], "hr": hr},
        schema={"p": pl.String, "ts": pl.Datetime("us", "UTC"), "hr": pl.Int64},
    )
    fired_at = []
    for size in (1, 3, len(seconds)):  # the same firings whatever the batches
        state, times = AlertState(), []
        for start in range(0, frame.height, size):
            firings, state = evaluate([rule], ["p"], "ts", [], state, frame.slice(start, size))
            state = AlertState.from_json(state.to_json())
            times += [f.event_time for f in firings]
        fired_at.append(times)
    # held from 0 s: fires at 300 s (not 299 s); broken at 450 s; held from 480 s: the first row at
    # 780 s or later is at 840 s
    assert fired_at[0] == [T0 + timedelta(seconds=300), T0 + timedelta(seconds=840)]
    assert fired_at[1] == fired_at[0] == fired_at[2]


def test_a_rule_without_for_fires_at_the_first_matching_row_per_key_and_masks_pii() -> None:
    rule = StreamAlertRule.model_validate({"name": "hot", "severity": "critical", "when": "t > 100"})
    frame = pl.DataFrame({"p": ["alice", "bob", "alice", "bob"], "t": [99.0, 101.0, 102.0, 103.0]})
    firings, _ = evaluate([rule], ["p"], None, ["p"], AlertState(), frame)
    assert sorted((f.key["p"], f.values["t"]) for f in firings) == [("a***e", 102.0), ("b*b", 101.0)]
    assert sorted(f.text() for f in firings) == ["hot (p a***e): t 102.0", "hot (p b*b): t 101.0"]
    assert len({f.key_text for f in firings}) == 2  # told apart by a hash of the raw key, never shown


GOOD = """\
name: s
type: {type}
sources:
  events: {{kind: redis_stream, stream: k, group: g, payload: payload, columns: {{ts: timestamptz}}}}
steps:
  - {{name: read, type: extract, source: events}}
  - {{name: shape, type: transform, depends_on: [read], ops: [{{derive: {{y: x + 1}}}}]}}
  - {{name: check, type: validate, depends_on: [shape], expect: [{{name: positive, rule: "x > 0"}}]}}
  - name: scores
    type: anomaly
    depends_on: [{anomaly_after}]
    anomaly: {{columns: [x], time_column: ts, keys: [k]}}
  - name: store
    type: load
    depends_on: [scores]
    destination: {{table: t, mode: upsert, primary_key: [_entry_id]}}
  - name: watch
    type: alert
    depends_on: [{alert_after}]
    key: [k]
    rules: [{{name: big, severity: critical, when: "x > 100"{extra}}}]
  - {{name: out, type: publish, depends_on: [{publish_after}], stream: next}}
"""


def _load(tmp_path: Path, **kw: str) -> Path:
    values = {
        "type": "streaming",
        "anomaly_after": "check",
        "alert_after": "shape",
        "extra": "",
        "publish_after": "scores",
        **kw,
    }
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.format(**values))
    return path


def test_the_steps_load_as_a_plan(tmp_path: Path) -> None:
    plan = StreamPlan.of(load_pipeline(_load(tmp_path)))
    assert plan.anomaly is not None and plan.anomaly.anomaly.over == 300.0
    assert [(o.step.name, o.reads) for o in plan.outputs] == [("watch", "events"), ("out", "scored")]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"type": "etl"}, "s.yaml:10: steps[3].type: step scores (anomaly) runs inside a stream processor"),
        (
            {"anomaly_after": "store"},
            "steps[3].depends_on: anomaly step scores scores the events that passed the rules; it follows "
            "load step store",
        ),
        (
            {"alert_after": "read"},
            "s.yaml:19: steps[5].depends_on: alert step watch reads the events after every op",
        ),
        (
            {"extra": ", for: 5m"},
            "s.yaml:21: steps[5].rules[0].for: rule big fires after its condition held 300 s",
        ),
        (
            {"publish_after": "watch"},
            "s.yaml:22: steps[6].depends_on: step out depends on watch, whose rows go out of the processor",
        ),
    ],
)
def test_what_a_stream_cannot_do_is_refused_with_file_line_and_fix(
    tmp_path: Path, change: dict[str, str], expected: str
) -> None:
    with pytest.raises(SpecError) as caught:
        load_pipeline(_load(tmp_path, **change))
    problems = [
        f"{Path(p.file).name}:{p.line}: {p.field}: {p.message} (fix: {p.hint})" for p in caught.value.problems
    ]
    assert any(expected in p for p in problems), problems
    assert all("(fix: " in p and "(fix: None)" not in p for p in problems), problems
