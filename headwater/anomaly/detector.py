"""Score runs against their pipeline's own history and say why a run is unusual.

Every metric is first put on one scale: a robust z-score against its seasonal baseline,
    z = (actual - expected) / scale
where `expected` is the training median of runs on the same weekday (when the training window holds at
least `MIN_PER_SEASON` of them; else of all working days or all weekend days, when there are enough;
else of all runs) and `scale` is 1.4826 x the median absolute leave-one-out residual (the MAD, a
standard-deviation estimate that a few bad runs cannot inflate; the mean absolute deviation when most
runs sit on the median), floored so that a metric that never moved in training does not alert on noise.

Two methods, chosen by the amount of history:
- `isolation_forest` (>= `FOREST_MIN_RUNS` training runs): a scikit-learn IsolationForest on the z
  vectors of the training runs. A run is an anomaly when a metric is `Z_K` scales off (the forest cannot
  rank a value beyond the training range above the most extreme training run, so gross one-metric
  deviations are left to z), or when its forest score is past the threshold learnt on the training
  runs *and* a metric is at least `EXPLAIN_K` scales off: an alert always names a metric.
- `robust_z` (fewer runs): a run is an anomaly when a metric is `Z_K` scales off.
An anomaly lists its deviating metrics, most deviant first, each with the expected range
(expected +- k x scale) against the actual value.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import polars as pl

from headwater.anomaly.features import SUCCESS, metric_columns
from headwater.errors import HeadwaterError

log = logging.getLogger(__name__)

Method = Literal["isolation_forest", "robust_z"]
MIN_RUNS = 5
FOREST_MIN_RUNS = 20
MIN_PER_SEASON = 3
SATURDAY = 6  # polars weekday: 1 = Monday .. 7 = Sunday
Z_K = 5.0
EXPLAIN_K = 3.0
MAD_TO_SD = 1.4826
MEANAD_TO_SD = 1.2533
REL_FLOOR = 0.02  # a scale is at least 2% of the metric's median ...
RATE_FLOOR = 0.005  # ... and half a percentage point for rates and scores
ABS_FLOOR = 1.0  # ... and one unit (row, second, column) for everything else
Z_CLIP = 50.0  # what the forest sees: beyond 50 scales every value is equally far out


class NotEnoughHistory(HeadwaterError):
    """Too few usable runs to learn what normal looks like."""

    def __init__(self, pipeline: str, runs: int, needed: int) -> None:
        self.pipeline, self.runs, self.needed = pipeline, runs, needed
        super().__init__(f"{pipeline}: {runs} successful runs with metrics, at least {needed} needed")


@dataclass(frozen=True)
class Deviation:
    """One metric of one run against its expected range."""

    metric: str
    actual: float
    expected: float
    low: float
    high: float
    z: float

    def __str__(self) -> str:
        return (
            f"{self.metric} = {self.actual:.6g}, expected {self.low:.6g}..{self.high:.6g} "
            f"(typical {self.expected:.6g}, {self.z:+.1f} scales)"
        )


@dataclass(frozen=True)
class RunScore:
    """The verdict on one run. `score` is the forest's anomaly score (0..1, higher is stranger) or, for
    robust_z, the largest |z|. `deviations` are the metrics outside their expected range."""

    run_id: str | None
    started_at: datetime | None
    method: Method
    score: float
    is_anomaly: bool
    deviations: tuple[Deviation, ...]

    def explain(self) -> str:
        if not self.is_anomaly:
            return "within the usual range"
        return "; ".join(str(d) for d in self.deviations)


@dataclass
class AnomalyModel:
    """What was learnt from one pipeline's (or one target table's) training window."""

    pipeline: str
    table: str | None
    method: Method
    metrics: tuple[str, ...]
    season: str | None
    medians: dict[str, float]
    seasonal: dict[str, dict[int, float]]
    scales: dict[str, float]
    trained_on: int
    window_start: datetime | None
    window_end: datetime | None
    random_state: int
    forest: Any = None
    forest_threshold: float | None = None
    version: int = 0
    params: dict[str, float] = field(default_factory=dict)

    def zscores(self, frame: pl.DataFrame) -> pl.DataFrame:
        """One column per metric: robust z against the seasonal baseline (0 where the run has no value)."""
        return frame.with_columns(
            ((_col(frame, m) - self._expected(frame, m)) / self.scales[m]).fill_null(0.0).alias(m)
            for m in self.metrics
        ).select(self.metrics)

    def score(self, frame: pl.DataFrame) -> list[RunScore]:
        """Score every row of a feature frame (runs not used for training, typically)."""
        if frame.is_empty():
            return []
        z = self.zscores(frame).to_numpy().astype(float)
        expected = (
            frame.with_columns(self._expected(frame, m).alias(m) for m in self.metrics)
            .select(self.metrics)
            .to_numpy()
        )
        actual = frame.with_columns(_col(frame, m).alias(m) for m in self.metrics).select(self.metrics)
        actual_values = actual.to_numpy()
        z_k, explain_k = self.params.get("z_k", Z_K), self.params.get("explain_k", EXPLAIN_K)
        worst = np.abs(z).max(axis=1)
        if self.method == "isolation_forest":
            scores = -self.forest.score_samples(np.clip(z, -Z_CLIP, Z_CLIP))
            # the forest cannot rank a value beyond the training range above the most extreme training
            # run, so a gross deviation on one metric is decided by its z; the forest adds the runs whose
            # metrics are jointly unusual while each is only moderately off
            flagged = (worst >= z_k) | ((scores > self.forest_threshold) & (worst >= explain_k))
            k = explain_k
        else:
            scores = worst
            flagged = worst >= z_k
            k = z_k
        ids = _optional(frame, "run_id")
        starts = _optional(frame, "started_at")
        out = []
        for i in range(frame.height):
            devs = tuple(
                sorted(
                    (
                        Deviation(
                            metric=m,
                            actual=float(actual_values[i, j]),
                            expected=float(expected[i, j]),
                            low=float(expected[i, j] - k * self.scales[m]),
                            high=float(expected[i, j] + k * self.scales[m]),
                            z=float(z[i, j]),
                        )
                        for j, m in enumerate(self.metrics)
                        if abs(z[i, j]) >= k
                    ),
                    key=lambda d: -abs(d.z),
                )
            )
            anomaly = bool(flagged[i]) and bool(devs)
            out.append(
                RunScore(ids[i], starts[i], self.method, float(scores[i]), anomaly, devs if anomaly else ())
            )
        return out

    def _expected(self, frame: pl.DataFrame, metric: str) -> pl.Expr:
        overall = pl.lit(self.medians[metric], pl.Float64)
        seasonal = self.seasonal.get(metric)
        if not self.season or not seasonal or self.season not in frame.columns:
            return overall
        return (
            pl.col(self.season)
            .cast(pl.Int64)
            .replace_strict(seasonal, default=None, return_dtype=pl.Float64)
            .fill_null(overall)
        )


def train(
    features: pl.DataFrame,
    *,
    pipeline: str | None = None,
    table: str | None = None,
    metrics: Sequence[str] | None = None,
    season: str | None = "weekday",
    method: Method | None = None,
    random_state: int = 0,
    n_estimators: int = 200,
    z_k: float = Z_K,
    explain_k: float = EXPLAIN_K,
) -> AnomalyModel:
    """Learn one pipeline's normal from its feature frame: successful runs only (when the frame has a
    `status`), metrics with at least MIN_RUNS values. `method` defaults by history length."""
    if pipeline is None:
        names = features["pipeline_name"].unique().to_list() if "pipeline_name" in features.columns else []
        pipeline = str(names[0]) if len(names) == 1 else "unnamed"
    rows = features.filter(pl.col("status").is_in(SUCCESS)) if "status" in features.columns else features
    if "started_at" in rows.columns:
        rows = rows.sort("started_at")
    candidates = list(metrics) if metrics is not None else metric_columns(rows)
    usable = tuple(m for m in candidates if rows[m].drop_nulls().len() >= MIN_RUNS)
    if rows.height < MIN_RUNS or not usable:
        raise NotEnoughHistory(pipeline, rows.height, MIN_RUNS)
    chosen: Method = method or ("isolation_forest" if rows.height >= FOREST_MIN_RUNS else "robust_z")
    season = season if season and season in rows.columns else None

    medians: dict[str, float] = {}
    seasonal: dict[str, dict[int, float]] = {}
    residuals: dict[str, np.ndarray] = {}
    for m in usable:
        medians[m] = float(rows[m].cast(pl.Float64).median())  # type: ignore[arg-type]
        seasonal[m], residuals[m] = _baseline(rows, m, season)
    model = AnomalyModel(
        pipeline=pipeline,
        table=table,
        method=chosen,
        metrics=usable,
        season=season,
        medians=medians,
        seasonal=seasonal,
        scales={},
        trained_on=rows.height,
        window_start=_bound(rows, "min"),
        window_end=_bound(rows, "max"),
        random_state=random_state,
        params={"z_k": z_k, "explain_k": explain_k},
    )
    for m in usable:
        spread = np.abs(residuals[m])
        mad = float(np.median(spread))
        # more than half the runs on the median (a metric that is mostly constant): the mean absolute
        # deviation instead, as the modified z-score does
        sd = MAD_TO_SD * mad if mad > 0 else MEANAD_TO_SD * float(spread.mean())
        floor = max(REL_FLOOR * abs(medians[m]), RATE_FLOOR if _is_rate(m) else ABS_FLOOR)
        model.scales[m] = max(sd, floor)
    if chosen == "isolation_forest":
        from sklearn.ensemble import IsolationForest

        z = np.clip(model.zscores(rows).to_numpy().astype(float), -Z_CLIP, Z_CLIP)
        forest = IsolationForest(n_estimators=n_estimators, random_state=random_state).fit(z)
        train_scores = -forest.score_samples(z)
        # past every ordinary training run: the 95th percentile plus a margin, never below 0.5, where
        # IsolationForest's own scale starts to call a point isolated
        model.forest = forest
        model.forest_threshold = max(float(np.quantile(train_scores, 0.95)) + 0.05, 0.5)
    log.info("trained %s model for %s on %d runs, %d metrics", chosen, pipeline, rows.height, len(usable))
    return model


def _baseline(rows: pl.DataFrame, metric: str, season: str | None) -> tuple[dict[int, float], np.ndarray]:
    """The seasonal medians of a metric, and each training value's residual against the median of the
    *other* runs of its group (leave-one-out: a residual against a median that includes the value
    itself shrinks towards 0 in small groups and would make the scale too tight)."""
    frame = rows.select(
        (pl.col(season).cast(pl.Int64) if season else pl.lit(0, pl.Int64)).alias("season"),
        _col(rows, metric).alias("value"),
    ).drop_nulls()
    keys = frame["season"].to_numpy()
    values = frame["value"].to_numpy().astype(float)
    groups = _season_groups(keys, season) if season else {}
    member = np.array([groups.get(int(k), _OVERALL) for k in keys], dtype=np.int64)
    weekend = keys >= SATURDAY

    def pool_of(group: int) -> np.ndarray:
        if group == _OVERALL:
            return np.ones(len(keys), dtype=bool)
        return weekend == bool(group - _CLASS) if group >= _CLASS else keys == group

    medians = {
        value: float(np.median(values[pool_of(group)]))
        for value, group in groups.items()
        if group != _OVERALL
    }
    residuals = np.empty_like(values)
    for i in range(len(values)):
        pool = pool_of(int(member[i]))
        pool[i] = False
        residuals[i] = values[i] - np.median(values[pool])
    return medians, residuals


_OVERALL = -1
_CLASS = 100  # 100: working days, 101: weekend days


def _season_groups(keys: np.ndarray, season: str) -> dict[int, int]:
    """Which runs each season value is compared with: its own, when the training window holds
    MIN_PER_SEASON of them; for weekdays, else all working days or all weekend days, when there are
    enough of those (a short history still knows that weekends are quieter); else all runs."""
    values, counts = np.unique(keys, return_counts=True)
    count = dict(zip(values.tolist(), counts.tolist(), strict=True))
    seen = set(count) | (set(range(1, 8)) if season == "weekday" else set())
    out = {}
    for value in seen:
        if count.get(value, 0) >= MIN_PER_SEASON:
            out[value] = value
        elif season == "weekday":
            weekend = value >= SATURDAY
            n = sum(c for k, c in count.items() if (k >= SATURDAY) == weekend)
            out[value] = (_CLASS + int(weekend)) if n >= MIN_PER_SEASON else _OVERALL
        else:
            out[value] = _OVERALL
    return out


def _col(frame: pl.DataFrame, metric: str) -> pl.Expr:
    if metric not in frame.columns:
        return pl.lit(None, pl.Float64)
    return pl.col(metric).cast(pl.Float64)


def _is_rate(metric: str) -> bool:
    return metric.endswith("_rate") or metric.startswith("null_rate:") or metric == "quality_score"


def _optional(frame: pl.DataFrame, column: str) -> list[Any]:
    return frame[column].to_list() if column in frame.columns else [None] * frame.height


def _bound(frame: pl.DataFrame, how: str) -> datetime | None:
    if "started_at" not in frame.columns or frame.is_empty():
        return None
    value = frame["started_at"].min() if how == "min" else frame["started_at"].max()
    return value if isinstance(value, datetime) else None
