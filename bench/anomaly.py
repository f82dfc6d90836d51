"""Precision, recall and F1 of the run-anomaly detector (headwater.anomaly.detector) with its
IsolationForest and with the robust z-score alone, measured in the same run on the same data.

Run from the repository root:  .venv/bin/python bench/anomaly.py [--pipelines 20]

Data, all offline (nothing is downloaded):
- synthetic run histories (tests/anomaly/history.py): daily runs with weekly seasonality and realistic
  noise; each pipeline is trained on its first 30 clean runs, then 90 runs are scored of which ~1 in 9
  carry an injected fault: a gross one (volume x0.4, null rate 1% -> 5%, duration x3) or a subtle one
  (volume x0.75, null rate 1% -> 2.5%, duration x1.6);
- river's bundled Shuttle (river/datasets/shuttle.csv.gz, the ODDS binary version: 49,097 rows, 7%
  anomalies), 9 sensor columns as metrics: trained on 2,000 random rows (unlabelled, anomalies
  included), scored on 10,000 others;
- aeon's bundled KDD-TSAD 135 (UCR InternalBleeding16, univariate) and Daphnet S06R02E0 (9 channels):
  the series is cut into windows, each window a "run" whose metrics are the mean, standard deviation,
  min, max and mean absolute step of each channel; a window is anomalous when any point in it is.
  KDD-TSAD trains on its TRAIN file (normal), Daphnet on its first 30% of windows.
The files are read straight from the installed packages (neither package is imported); a dataset whose
package is missing is reported and skipped. Figures are printed, never asserted: exit code 0 unless
the detector raises.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from headwater.anomaly.detector import Z_CLIP, Method, train  # noqa: E402
from headwater.anomaly.features import run_features  # noqa: E402
from tests.anomaly.history import TABLE, Fault, make_history  # noqa: E402

# the detector's two methods, plus the IsolationForest verdict alone (its score past the learnt threshold,
# without the z rules the detector combines it with), to show what the forest contributes by itself
METHODS = ("isolation_forest", "robust_z", "forest_alone")
FAULTS = {
    "volume drop": Fault(volume=0.4),
    "null spike": Fault(null_rate=0.05),
    "slowdown": Fault(slowdown=3.0),
    "subtle volume": Fault(volume=0.75),
    "subtle nulls": Fault(null_rate=0.025),
    "subtle slowdown": Fault(slowdown=1.6),
}


def prf(truth: np.ndarray, flagged: np.ndarray) -> tuple[int, float, float, float]:
    tp = int((truth & flagged).sum())
    precision = tp / flagged.sum() if flagged.sum() else 0.0
    recall = tp / truth.sum() if truth.sum() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return int(flagged.sum()), float(precision), float(recall), float(f1)


def flag(
    method: str, train_frame: pl.DataFrame, test_frame: pl.DataFrame, name: str, season: str | None
) -> np.ndarray:
    chosen: Method = "robust_z" if method == "robust_z" else "isolation_forest"
    model = train(train_frame, pipeline=name, season=season, method=chosen, random_state=0)
    if method == "forest_alone":
        z = np.clip(model.zscores(test_frame).to_numpy().astype(float), -Z_CLIP, Z_CLIP)
        return np.asarray(-model.forest.score_samples(z) > model.forest_threshold)
    return np.array([v.is_anomaly for v in model.score(test_frame)])


def evaluate(
    name: str, train_frame: pl.DataFrame, test_frame: pl.DataFrame, truth: np.ndarray, season: str | None
) -> list[tuple[str, str, int, int, int, float, float, float, float]]:
    rows = []
    for method in METHODS:
        started = time.perf_counter()
        flagged = flag(method, train_frame, test_frame, name, season)
        seconds = time.perf_counter() - started
        rows.append((name, method, test_frame.height, int(truth.sum()), *prf(truth, flagged), seconds))
    return rows


def synthetic(pipelines: int) -> tuple[list, dict[str, dict[str, int]]]:
    rng = np.random.default_rng(2026)
    kinds = list(FAULTS)
    trains, tests, truths, kind_of = [], [], [], []
    for p in range(pipelines):
        faults: dict[int, Fault] = {}
        labels: dict[int, str] = {}
        for i in range(30, 120):
            if rng.random() < 1 / 9:
                labels[i] = kinds[int(rng.integers(len(kinds)))]
                faults[i] = FAULTS[labels[i]]
        h = make_history(120, seed=1000 + p, faults=faults, pipeline=f"synthetic_{p}")
        frame = run_features(h.runs, h.checks, h.steps, table=TABLE)
        trains.append(frame.head(30))
        tests.append(frame.slice(30))
        truths.append(np.array([i in faults for i in range(30, 120)]))
        kind_of.extend(labels.get(i, "normal") for i in range(30, 120))
    # one model per pipeline, as in production: score each pipeline apart, pool the verdicts
    results = []
    by_kind: dict[str, dict[str, int]] = {}
    for method in METHODS:
        flagged_all = []
        started = time.perf_counter()
        for train_frame, test_frame in zip(trains, tests, strict=True):
            flagged_all.append(flag(method, train_frame, test_frame, "synthetic", "weekday"))
        seconds = time.perf_counter() - started
        truth, flagged = np.concatenate(truths), np.concatenate(flagged_all)
        results.append(
            (
                f"synthetic runs ({pipelines} pipelines)",
                method,
                len(truth),
                int(truth.sum()),
                *prf(truth, flagged),
                seconds,
            )
        )
        for kind, hit in zip(kind_of, flagged, strict=True):
            counts = by_kind.setdefault(f"{kind}|{method}", {"n": 0, "flagged": 0})
            counts["n"] += 1
            counts["flagged"] += int(hit)
    return results, by_kind


def package_file(package: str, *parts: str) -> Path | None:
    spec = importlib.util.find_spec(package)  # a top-level package: located, not imported
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    return path if path.exists() else None


def shuttle() -> list | str:
    path = package_file("river", "datasets", "shuttle.csv.gz")
    if path is None:
        return "river not installed (pip install river): Shuttle skipped"
    frame = pl.read_csv(path)
    rng = np.random.default_rng(0)
    order = rng.permutation(frame.height)
    train_frame = frame[order[:2000]].drop("anomaly")
    test = frame[order[2000:12000]]
    truth = test["anomaly"].to_numpy().astype(bool)
    return evaluate("river Shuttle (9 sensors)", train_frame, test.drop("anomaly"), truth, None)


def windows(
    frame: pl.DataFrame, channels: list[str], size: int, stride: int
) -> tuple[pl.DataFrame, np.ndarray]:
    """Sliding windows of `size` points every `stride` points; a window is anomalous when any point is."""
    rolled = (
        frame.select(
            *(
                expr
                for c in channels
                for expr in (
                    pl.col(c).rolling_mean(size).alias(f"{c}_mean"),
                    pl.col(c).rolling_std(size).alias(f"{c}_std"),
                    pl.col(c).rolling_min(size).alias(f"{c}_min"),
                    pl.col(c).rolling_max(size).alias(f"{c}_max"),
                    pl.col(c).diff().abs().rolling_mean(size - 1).alias(f"{c}_step"),
                )
            ),
            pl.col("is_anomaly").rolling_max(size).alias("label"),
        )
        .slice(size - 1)
        .gather_every(stride)
    )
    return rolled.drop("label"), rolled["label"].to_numpy().astype(bool)


def kdd_tsad() -> list | str:
    folder = package_file("aeon", "datasets", "data", "KDD-TSAD_135")
    if folder is None:
        return "aeon not installed (pip install aeon): KDD-TSAD 135 skipped"
    train_series = pl.read_csv(next(folder.glob("*_TRAIN.csv")))
    test_series = pl.read_csv(next(folder.glob("*_TEST.csv")))
    train_frame, _ = windows(train_series, ["value"], 50, 10)
    test_frame, truth = windows(test_series, ["value"], 50, 10)
    return evaluate("aeon KDD-TSAD 135 (50-pt windows, step 10)", train_frame, test_frame, truth, None)


def daphnet() -> list | str:
    folder = package_file("aeon", "datasets", "data", "Daphnet_S06R02E0")
    if folder is None:
        return "aeon not installed (pip install aeon): Daphnet skipped"
    series = pl.read_csv(next(folder.glob("*.csv")))
    if not series["is_anomaly"].sum():
        return f"aeon's bundled Daphnet S06R02E0 ({series.height} rows) carries no anomaly label: skipped"
    channels = [c for c in series.columns if c not in ("timestamp", "is_anomaly")]
    frame, truth = windows(series, channels, 64, 16)
    cut = int(frame.height * 0.3)
    return evaluate(
        "aeon Daphnet S06R02E0 (64-pt windows)", frame.head(cut), frame.slice(cut), truth[cut:], None
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", type=int, default=20, help="synthetic pipelines (120 runs each)")
    args = parser.parse_args()

    results, by_kind = synthetic(args.pipelines)
    notes = []
    for loader in (shuttle, kdd_tsad, daphnet):
        got = loader()
        if isinstance(got, str):
            notes.append(got)
        else:
            results.extend(got)

    print(
        f"{'dataset':42} {'method':17} {'scored':>7} {'anom.':>6} {'flagged':>7} {'prec.':>6} {'recall':>6} "
        f"{'F1':>6} {'sec':>6}"
    )
    for name, method, n, positives, flagged, p, r, f1, sec in results:
        print(
            f"{name:42} {method:17} {n:7d} {positives:6d} {flagged:7d} {p:6.3f} {r:6.3f} {f1:6.3f} {sec:6.2f}"
        )
    print("\nsynthetic runs, share flagged by kind (recall per fault; false-alert rate for 'normal'):")
    for kind in ["normal", *FAULTS]:
        cells = []
        for method in METHODS:
            c = by_kind.get(f"{kind}|{method}", {"n": 0, "flagged": 0})
            cells.append(f"{method} {c['flagged']}/{c['n']}")
        print(f"  {kind:16} " + "   ".join(cells))
    for note in notes:
        print("note:", note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
