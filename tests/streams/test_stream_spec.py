"""Streaming specs are refused at load time, with file:line and the fix, where a micro-batch cannot
do what they ask: whole-data ops (sort, dedupe, aggregate, rank, fill_null forward), min_rows, an
overwrite load, a second source; and a redis_stream source in a batch spec. The vitals example loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.errors import SpecError
from headwater.spec.loader import load_pipeline
from headwater.streams.plan import StreamPlan

REPO = Path(__file__).resolve().parents[2]

SPEC = """\
name: s
type: {type}
sources:
  events: {{kind: redis_stream, stream: k, group: g, payload: payload}}
steps:
  - {{name: read, type: extract, source: events}}
  - name: shape
    type: transform
    depends_on: [read]
    ops:
      - filter: "x > 0"
      - {op}
  - name: check
    type: validate
    depends_on: [shape]
    expect: [{{name: positive, rule: "x > 0"}}]
  - name: store
    type: load
    depends_on: [check]
    destination: {{table: t, mode: {mode}, primary_key: [_entry_id]}}
"""


def _problems(tmp_path: Path, **kw: str) -> list[str]:
    values = {"type": "streaming", "op": "derive: {y: x + 1}", "mode": "upsert", **kw}
    path = tmp_path / "s.yaml"
    path.write_text(SPEC.format(**values))
    with pytest.raises(SpecError) as exc:
        load_pipeline(path)
    return [f"{p.file}:{p.line}: {p.field}: {p.message} (fix: {p.hint})" for p in exc.value.problems]


@pytest.mark.parametrize(
    "op",
    [
        "sort: {by: [x]}",
        "dedupe: {key: [x]}",
        "aggregate: {by: [x], aggs: {n: {fn: count}}}",
        "rank: {by: [x], as: r}",
        "fill_null: {columns: [x], strategy: forward}",
    ],
)
def test_whole_data_ops_are_refused_with_file_and_line(tmp_path: Path, op: str) -> None:
    (problem,) = _problems(tmp_path, op=op)
    name = op.split(":")[0]
    assert problem.startswith(f"{tmp_path / 's.yaml'}:12: steps[1].ops[1].{name}: op {name} needs the whole")
    assert f"remove {name} from this streaming pipeline" in problem


def test_overwrite_and_min_rows_are_refused(tmp_path: Path) -> None:
    spec = SPEC.replace('expect: [{{name: positive, rule: "x > 0"}}]', "min_rows: 10")
    path = tmp_path / "s.yaml"
    path.write_text(spec.format(type="streaming", op="derive: {y: x + 1}", mode="overwrite"))
    with pytest.raises(SpecError) as exc:
        load_pipeline(path)
    found = {(p.line, p.field, p.message) for p in exc.value.problems}
    assert found == {
        (16, "steps[2].min_rows", "min_rows counts a batch's rows, which say nothing about a stream"),
        (20, "steps[3].destination.mode", "mode overwrite would replace the table with each batch"),
    }


def test_stream_source_in_a_batch_spec_is_refused(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, type="etl")
    assert problem == (
        f"{tmp_path / 's.yaml'}:4: sources.events.kind: a redis_stream source is read by a stream "
        "processor, not by a etl run (fix: set `type: streaming` on the pipeline (and run it with "
        "headwater stream run), or read the table a streaming pipeline loads)"
    )


def test_file_source_in_a_streaming_spec_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f.csv").write_text("x\n1\n")
    spec = SPEC.replace(
        "  events: {{kind: redis_stream",
        "  other: {{kind: file, path: f.csv}}\n  events: {{kind: redis_stream",
    )
    path = tmp_path / "s.yaml"
    path.write_text(spec.format(type="streaming", op="derive: {y: x + 1}", mode="upsert"))
    with pytest.raises(SpecError) as exc:
        load_pipeline(path)
    messages = {(p.line, p.field, p.message) for p in exc.value.problems}
    assert (
        4,
        "sources.other.kind",
        "a streaming pipeline reads one redis_stream source, not a file source",
    ) in messages


def test_the_vitals_example_loads_as_a_plan() -> None:
    plan = StreamPlan.of(load_pipeline(REPO / "pipelines" / "vitals_stream.yaml"))
    assert (plan.source.stream, plan.source.group, plan.source.dead_letter_stream) == (
        "vitals",
        "vitals_stream",
        "vitals:dead",
    )
    assert [op.name for op in plan.ops] == ["unnest", "unnest", "unnest"]
    assert [r.name for r in plan.rules] == ["heart_rate_range", "systolic_range", "temperature_range"]
    assert (plan.load.destination.table, plan.load.destination.mode) == ("vitals", "upsert")
