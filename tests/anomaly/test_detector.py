"""The detector on a seeded synthetic history (daily runs, weekly seasonality, realistic noise): it flags
a 60% volume drop and a null-rate jump after 30 normal runs, naming the metric with its expected range,
stays quiet on 30 further normal runs, falls back to robust z-scores on short histories, and a model
saved and reloaded scores identically. No external service."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from headwater.anomaly.detector import NotEnoughHistory, train
from headwater.anomaly.features import run_features
from headwater.anomaly.persist import load_model, model_dir, save_model, versions
from headwater.errors import PermanentError
from tests.anomaly.history import RULE, TABLE, Fault, make_history

NULL_METRIC = f"null_rate:{RULE}"


def _features(n: int, faults: dict[int, Fault] | None = None, seed: int = 7) -> pl.DataFrame:
    h = make_history(n, seed=seed, faults=faults)
    return run_features(h.runs, h.checks, h.steps, table=TABLE)


def test_flags_a_60_percent_volume_drop_after_30_normal_runs() -> None:
    frame = _features(31, {30: Fault(volume=0.4)})
    model = train(frame.head(30))
    assert model.method == "isolation_forest"
    [verdict] = model.score(frame.tail(1))
    assert verdict.is_anomaly
    assert {d.metric for d in verdict.deviations[:2]} == {"rows_in", "rows_out"}
    assert all(d.z < -model.params["explain_k"] for d in verdict.deviations[:2])


def test_flags_a_null_rate_jump_after_30_normal_runs() -> None:
    frame = _features(31, {30: Fault(null_rate=0.05)})
    [verdict] = train(frame.head(30)).score(frame.tail(1))
    assert verdict.is_anomaly
    assert verdict.deviations[0].metric == NULL_METRIC
    assert verdict.deviations[0].actual == pytest.approx(0.05, abs=0.01)


def test_no_false_alerts_on_30_further_normal_runs() -> None:
    frame = _features(60)
    for method in ("isolation_forest", "robust_z"):
        verdicts = train(frame.head(30), method=method).score(frame.tail(30))  # type: ignore[arg-type]
        assert len(verdicts) == 30
        assert [v.explain() for v in verdicts if v.is_anomaly] == [], method


def test_weekend_volume_is_normal_but_a_weekday_at_weekend_volume_is_not() -> None:
    frame = _features(60)
    model = train(frame.head(30))
    weekend = frame.tail(30).filter(pl.col("weekday") >= 6)
    assert weekend.height >= 8 and not any(v.is_anomaly for v in model.score(weekend))
    monday = frame.tail(30).filter(pl.col("weekday") == 1).head(1)
    at_weekend_volume = monday.with_columns(pl.col("rows_in", "rows_out") * 0.6)
    [verdict] = model.score(at_weekend_volume)
    assert verdict.is_anomaly and verdict.deviations[0].metric in {"rows_in", "rows_out"}


def test_explanation_names_the_metric_and_gives_expected_range_against_actual() -> None:
    frame = _features(31, {30: Fault(volume=0.4)})
    model = train(frame.head(30))
    [verdict] = model.score(frame.tail(1))
    top = next(d for d in verdict.deviations if d.metric == "rows_in")
    actual = frame["rows_in"][-1]
    weekday = frame["weekday"][-1]
    expected = frame.head(30).filter(pl.col("weekday") == weekday)["rows_in"].median()
    k = model.params["explain_k"]
    assert top.actual == actual
    assert top.expected == expected
    assert (top.low, top.high) == pytest.approx(
        (expected - k * model.scales["rows_in"], expected + k * model.scales["rows_in"])
    )
    assert top.actual < top.low < top.expected < top.high
    text = verdict.explain()
    assert f"rows_in = {actual:.6g}, expected {top.low:.6g}..{top.high:.6g}" in text


def test_robust_z_stands_in_with_little_history() -> None:
    frame = _features(17, {16: Fault(volume=0.4)})  # 16 runs: 4 of them at weekends
    model = train(frame.head(16))
    assert model.method == "robust_z" and model.forest is None
    [verdict] = model.score(frame.tail(1))
    assert verdict.is_anomaly and verdict.method == "robust_z"
    assert verdict.deviations[0].metric in {"rows_in", "rows_out"}
    assert verdict.score == pytest.approx(abs(verdict.deviations[0].z))
    # the ordinary runs it was trained on are not anomalies
    assert not any(v.is_anomaly for v in model.score(frame.head(16)))


def test_too_little_history_is_an_error_not_a_silent_model() -> None:
    with pytest.raises(NotEnoughHistory) as info:
        train(_features(4))
    assert info.value.runs == 4 and info.value.needed == 5


def test_failed_runs_are_left_out_of_training() -> None:
    h = make_history(40, seed=3)
    for run in h.runs[::7]:
        run.update(status="failed", records_processed=0, records_loaded=0, records_quarantined=0)
    frame = run_features(h.runs, h.checks, h.steps, table=TABLE)
    model = train(frame)
    assert model.trained_on == 40 - len(h.runs[::7])
    failed = frame.filter(pl.col("status") == "failed")
    assert all(v.is_anomaly for v in model.score(failed))


def test_training_is_deterministic() -> None:
    frame = _features(45)
    a, b = train(frame.head(30), random_state=3), train(frame.head(30), random_state=3)
    assert [v.score for v in a.score(frame)] == [v.score for v in b.score(frame)]


def test_persisted_model_reloads_with_identical_scores(tmp_path: Path) -> None:
    frame = _features(61, {35: Fault(volume=0.4), 40: Fault(null_rate=0.08), 45: Fault(slowdown=3)})
    model = train(frame.head(30), pipeline="orders_daily", table=TABLE)
    folder = tmp_path / "hw_home" / "models"
    first = save_model(model, folder)
    second = save_model(train(frame.head(31), pipeline="orders_daily", table=TABLE), folder)
    assert (first.version, second.version) == (1, 2)
    assert versions(folder, "orders_daily", TABLE) == [1, 2]

    reloaded = load_model(folder, "orders_daily", TABLE, version=1)
    assert reloaded.score(frame.tail(31)) == model.score(frame.tail(31))
    assert load_model(folder, "orders_daily", TABLE).trained_on == 31  # latest by default

    meta = json.loads((model_dir(folder, "orders_daily", TABLE) / "v0001.json").read_text())
    assert meta["version"] == 1 and meta["method"] == "isolation_forest" and meta["trained_on_runs"] == 30
    assert meta["window_start"] == frame["started_at"][0].isoformat()
    assert meta["window_end"] == frame["started_at"][29].isoformat()
    assert NULL_METRIC in meta["metrics"]


def test_a_changed_model_file_is_refused(tmp_path: Path) -> None:
    save_model(train(_features(25), pipeline="p"), tmp_path)
    pkl = model_dir(tmp_path, "p") / "v0001.pkl"
    pkl.write_bytes(pkl.read_bytes() + b"\0")
    with pytest.raises(PermanentError, match="does not match its sidecar"):
        load_model(tmp_path, "p")
    with pytest.raises(PermanentError, match="no anomaly model"):
        load_model(tmp_path, "other")
