"""One anomaly path. Training happens in one place, `retrain` (train on the pipeline's recent runs,
save the next version under HEADWATER_HOME/models): the scheduled monitor calls it for every pipeline.
A finished run is scored with the saved model (`anomalies_of`); only when a pipeline has no saved
model yet, or its latest is older than `MAX_AGE` (no monitor runs here, e.g. the embedded default
without `headwater up`), does scoring call `retrain` first, so the model scored with is always one
that was saved, versioned and can be looked at."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from headwater.anomaly.detector import AnomalyModel, NotEnoughHistory, train
from headwater.anomaly.features import features_from_store
from headwater.anomaly.persist import load_model, model_dir, save_model, versions
from headwater.store.store import Store

log = logging.getLogger(__name__)
MAX_AGE = timedelta(hours=24)
HISTORY_RUNS = 500


def retrain(
    store: Store,
    pipeline: str,
    folder: Path,
    *,
    history_runs: int = HISTORY_RUNS,
    exclude_run: str | None = None,
) -> AnomalyModel:
    """Train on the pipeline's last `history_runs` runs (but `exclude_run`, the one about to be
    scored) and save the next version (raises NotEnoughHistory below the detector's minimum)."""
    import polars as pl

    frame = features_from_store(store, pipeline, limit=history_runs)
    if exclude_run is not None:
        frame = frame.filter(pl.col("run_id") != exclude_run)
    return save_model(train(frame, pipeline=pipeline), folder)


def saved_at(folder: Path, pipeline: str) -> datetime | None:
    known = versions(folder, pipeline)
    if not known:
        return None
    meta = json.loads((model_dir(folder, pipeline) / f"v{known[-1]:04d}.json").read_text())
    return datetime.fromisoformat(meta["saved_at"])


def current_model(
    store: Store, pipeline: str, folder: Path, *, now: datetime | None = None, exclude_run: str | None = None
) -> AnomalyModel | None:
    """The latest saved model, retrained first when there is none or it is older than MAX_AGE; None
    while the pipeline has too few runs for one. `exclude_run`: a run not to train on (the one about
    to be scored)."""
    now = now or datetime.now(UTC)
    when = saved_at(folder, pipeline)
    if when is not None and now - when <= MAX_AGE:
        return load_model(folder, pipeline)
    try:
        return retrain(store, pipeline, folder, exclude_run=exclude_run)
    except NotEnoughHistory:
        return load_model(folder, pipeline) if when is not None else None


def anomalies_of(store: Store, pipeline: str, run_id: str, folder: Path) -> list[str]:
    """What is anomalous about the run, by the pipeline's saved model (see the module docstring)."""
    import polars as pl

    model = current_model(store, pipeline, folder, exclude_run=run_id)
    if model is None:
        return []
    frame = features_from_store(store, pipeline, limit=20)  # the run just finished is among them
    current = frame.filter(pl.col("run_id") == run_id)
    if current.is_empty():
        return []
    return [f"{s.explain()} (model v{model.version})" for s in model.score(current) if s.is_anomaly]
