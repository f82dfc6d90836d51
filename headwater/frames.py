"""A step's data is a frame, or (when it streams: headwater.pipeline.streaming) a lazy plan that only
the load runs. What the rest of the code asks of either."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import polars as pl

Frame = pl.DataFrame | pl.LazyFrame
BATCH_ROWS = 250_000


def height(frame: Frame | None) -> int | None:
    """Rows of a frame; None for a lazy plan (counted when the load runs it)."""
    return frame.height if isinstance(frame, pl.DataFrame) else None


def columns(frame: Frame) -> list[str]:
    return frame.collect_schema().names() if isinstance(frame, pl.LazyFrame) else frame.columns


def batches(frame: Frame, rows: int = BATCH_ROWS) -> Iterator[pl.DataFrame]:
    """The frame in batches of about `rows`: a lazy plan run by the streaming engine as it is read."""
    if isinstance(frame, pl.DataFrame):
        for offset in range(0, max(frame.height, 1), rows):
            yield frame.slice(offset, rows)
        return
    yield from frame.collect_batches(chunk_size=rows, engine="streaming")


def head(frame: Frame | None, n: int) -> pl.DataFrame | None:
    """The first rows, for samples: cheap for a scan (Polars reads only what it needs)."""
    if frame is None or isinstance(frame, pl.DataFrame):
        return frame
    return frame.head(n).collect()


def materialise(frame: Any) -> Any:
    return frame.collect(engine="streaming") if isinstance(frame, pl.LazyFrame) else frame
