"""Dispatch a source spec to its reader."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from headwater.connections import Connections
from headwater.errors import PermanentError
from headwater.spec.models import (
    ConnectionRef,
    FileSource,
    Ga4Source,
    RedisStreamSource,
    RestSource,
    Source,
    SqlSource,
    WebhookSource,
)


@dataclass
class ExtractResult:
    frame: pl.DataFrame
    watermark: Any = None
    """The cursor value this extract reached (None: nothing new, or not incremental)."""
    metrics: dict[str, Any] = field(default_factory=dict)


def extract_source(
    name: str,
    source: Source,
    *,
    base_dir: Path,
    connections: Connections,
    watermark: Any = None,
    warehouse: ConnectionRef | None = None,
    now: datetime | None = None,
    events: sa.Engine | None = None,
) -> ExtractResult:
    """Read a source. `warehouse` is where a SQL source without a connection reads from; `now` (the
    run's start) is when relative dates (a GA4 source's "yesterday") are taken; `events`: the metadata
    store's engine, where a webhook source's events are."""
    if isinstance(source, FileSource):
        from headwater.extract.files import read_files

        return ExtractResult(read_files(name, source, base_dir))
    if isinstance(source, SqlSource):
        from headwater.extract.sql import read_sql

        return read_sql(name, source, connections, watermark, warehouse)
    if isinstance(source, RestSource):
        from headwater.extract.rest import read_rest

        return read_rest(name, source, connections)
    if isinstance(source, WebhookSource):
        from headwater.extract.webhook import read_webhook

        return read_webhook(name, source, events, watermark)
    if isinstance(source, Ga4Source):
        from headwater.extract.ga4 import read_ga4

        return read_ga4(name, source, connections, base_dir, watermark, now)
    if isinstance(source, RedisStreamSource):
        raise PermanentError(
            f"source {name} is a redis_stream: a stream processor reads it, not a batch run",
            hint="run it with: headwater stream run <pipeline>",
        )
    raise TypeError(f"unsupported source {type(source).__name__}")
