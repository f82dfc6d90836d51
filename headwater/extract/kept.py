"""The last good extract of each extract step that may fall back on it (`on_unavailable: use_last`):
a Parquet file under $HEADWATER_HOME/last_good/<pipeline>/<step>/, named by the run that read it, and
a row in the store saying which file is current, when it was extracted and how many rows it has.

A new extract is written to a temporary file, renamed into place (atomic), and only then made
current in the store (one transaction); the file it replaces is removed after. A process killed at
any point leaves the previous extract current and whole."""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from headwater.store.tables import last_good_extracts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeptExtract:
    frame: pl.DataFrame
    extracted_at: datetime
    rows: int
    run_id: str
    path: Path

    def age_seconds(self, now: datetime) -> float:
        return max((now - self.extracted_at).total_seconds(), 0.0)


class KeptExtracts:
    def __init__(self, engine: sa.Engine, folder: Path) -> None:
        self.engine = engine
        self.writer = engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
        self.folder = folder

    def keep(
        self, pipeline: str, step: str, source: str, frame: pl.DataFrame, run_id: str, now: datetime
    ) -> Path:
        """Make `frame` the last good extract of (pipeline, step)."""
        folder = self.folder / pipeline / step
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{run_id}.parquet"
        tmp = folder / f".{uuid.uuid4().hex}.tmp"
        try:
            frame.write_parquet(tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        key = (last_good_extracts.c.pipeline_name == pipeline) & (last_good_extracts.c.step_name == step)
        with self.writer.begin() as conn:
            old = conn.execute(sa.select(last_good_extracts.c.path).where(key)).scalar()
            conn.execute(sa.delete(last_good_extracts).where(key))
            conn.execute(
                sa.insert(last_good_extracts).values(
                    pipeline_name=pipeline,
                    step_name=step,
                    source_name=source,
                    path=str(path),
                    rows=frame.height,
                    extracted_at=now,
                    run_id=run_id,
                )
            )
        if old and Path(old) != path:
            Path(old).unlink(missing_ok=True)
        return path

    def latest(self, pipeline: str, step: str) -> KeptExtract | None:
        """The last good extract of (pipeline, step); None when there is none (or its file is gone)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(last_good_extracts).where(
                    last_good_extracts.c.pipeline_name == pipeline, last_good_extracts.c.step_name == step
                )
            ).first()
        if row is None:
            return None
        path = Path(row.path)
        if not path.is_file():
            log.warning(
                "the last good extract of %s.%s is recorded at %s, which is gone", pipeline, step, path
            )
            return None
        at = row.extracted_at if row.extracted_at.tzinfo else row.extracted_at.replace(tzinfo=UTC)
        return KeptExtract(pl.read_parquet(path), at, int(row.rows), row.run_id, path)
