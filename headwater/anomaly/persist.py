"""Models on disk, until the store has a table for them: `<folder>/<pipeline>[__<table>]/v0001.pkl` with
a JSON sidecar `v0001.json` (version, method, metrics, training window, sha256 of the pickle). Versions
count up per pipeline; loading checks the digest before unpickling, so only a file this module wrote
(and nobody changed since) is ever unpickled."""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from headwater.anomaly.detector import AnomalyModel
from headwater.errors import PermanentError

FORMAT = 1
_VERSION = re.compile(r"^v(\d{4,})\.json$")


def model_dir(folder: Path, pipeline: str, table: str | None = None) -> Path:
    name = pipeline if table is None else f"{pipeline}__{table}"
    return folder / re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def versions(folder: Path, pipeline: str, table: str | None = None) -> list[int]:
    where = model_dir(folder, pipeline, table)
    if not where.is_dir():
        return []
    return sorted(int(m.group(1)) for p in where.iterdir() if (m := _VERSION.match(p.name)))


def save_model(model: AnomalyModel, folder: Path) -> AnomalyModel:
    """Write `model` as the next version; returns the model with its version set."""
    where = model_dir(folder, model.pipeline, model.table)
    where.mkdir(parents=True, exist_ok=True)
    version = max(versions(folder, model.pipeline, model.table), default=0) + 1
    saved = replace(model, version=version)
    blob = pickle.dumps(saved, protocol=pickle.HIGHEST_PROTOCOL)
    (where / f"v{version:04d}.pkl").write_bytes(blob)
    (where / f"v{version:04d}.json").write_text(json.dumps(sidecar(saved, blob), indent=2))
    return saved


def sidecar(model: AnomalyModel, blob: bytes) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "pipeline": model.pipeline,
        "table": model.table,
        "version": model.version,
        "method": model.method,
        "metrics": list(model.metrics),
        "season": model.season,
        "trained_on_runs": model.trained_on,
        "window_start": model.window_start.isoformat() if model.window_start else None,
        "window_end": model.window_end.isoformat() if model.window_end else None,
        "random_state": model.random_state,
        "saved_at": datetime.now(UTC).isoformat(),
        "sha256": hashlib.sha256(blob).hexdigest(),
    }


def load_model(
    folder: Path, pipeline: str, table: str | None = None, version: int | None = None
) -> AnomalyModel:
    """The given version of a pipeline's model, the latest by default."""
    known = versions(folder, pipeline, table)
    if not known or (version is not None and version not in known):
        raise PermanentError(
            f"no anomaly model {version or 'saved'} for {pipeline}"
            + (f" / {table}" if table else "")
            + f" under {folder}",
            hint="train one with headwater.anomaly.detector.train and save_model",
        )
    chosen = version if version is not None else known[-1]
    where = model_dir(folder, pipeline, table)
    meta = json.loads((where / f"v{chosen:04d}.json").read_text())
    blob = (where / f"v{chosen:04d}.pkl").read_bytes()
    if meta.get("format") != FORMAT or hashlib.sha256(blob).hexdigest() != meta.get("sha256"):
        raise PermanentError(
            f"anomaly model {where / f'v{chosen:04d}.pkl'} does not match its sidecar",
            hint="retrain and save the model again",
        )
    model = pickle.loads(blob)
    if not isinstance(model, AnomalyModel):
        raise PermanentError(f"{where / f'v{chosen:04d}.pkl'} holds no AnomalyModel")
    return model
