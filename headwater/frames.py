"""A step's data is a frame, or (when it streams: headwater.pipeline.streaming) a lazy plan that only
the load runs. What the rest of the code asks of either."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import polars as pl

from headwater.errors import PermanentError
from headwater.redact import redact

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


def materialise(frame: Any) -> Any:
    return frame.collect(engine="streaming") if isinstance(frame, pl.LazyFrame) else frame


def streamed_read_error(step: str, exc: Exception, rows_before: int | None = None) -> PermanentError:
    """A lazy plan failed while it ran (a row deep in a streamed file that does not fit its type)."""
    first = redact(str(exc).strip().splitlines()[0])
    after = f" after {rows_before} rows" if rows_before is not None else ""
    return PermanentError(
        f"{step}: reading the streamed input failed{after}: {type(exc).__name__}: {first}",
        hint="a row does not fit its column's type: declare the type under columns: in the source, or fix "
        "the row; nothing was loaded",
    )
