"""Webhook sources: the events a pipeline has not loaded yet (headwater.webhooks.events), each JSON
body made rows like a REST response (the list at `records`, or the body as one record), with the
event's columns first. An event whose body lacks the records path gives one row with only the event's
columns (its fields null), so a rule on them sets it aside in quarantine instead of losing it."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

import polars as pl
import sqlalchemy as sa

from headwater.errors import PermanentError
from headwater.extract.base import ExtractResult
from headwater.extract.rest import follow
from headwater.spec.models import WEBHOOK_COLUMNS, WebhookSource
from headwater.transform.expressions import parse_dtype


def event_records(body: Any, records: str | None) -> tuple[list[dict[str, Any]], bool]:
    """(the records of one body, whether the records path was there)."""
    found, _, missing = follow(body, records)
    if missing is not None:
        return [{}], False
    items = found if isinstance(found, list) else [found]
    return [item if isinstance(item, dict) else {"value": item} for item in items], True


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """The rows as a frame. Events disagree on a field's shape at times (a list in one, text in
    another), which Polars refuses: then nested values become their JSON text, so one odd event
    never blocks the batch (a rule on the column can quarantine it)."""
    try:
        return pl.DataFrame(rows, infer_schema_length=None)
    except (pl.exceptions.PolarsError, TypeError, ValueError):
        flat = [
            {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in row.items()} for row in rows
        ]
        return pl.DataFrame(flat, infer_schema_length=None)


def _typed(frame: pl.DataFrame, columns: dict[str, str]) -> pl.DataFrame:
    """Declared columns with their types (a value that does not convert is null; a column no event
    carried is all null)."""
    casts = []
    for name, type_name in columns.items():
        dtype = parse_dtype(type_name)
        col = pl.col(name) if name in frame.columns else pl.lit(None)
        if name in frame.columns and frame.schema[name] == pl.String and dtype in (pl.Date, pl.Time):
            expr = col.str.to_date(strict=False) if dtype == pl.Date else col.str.to_time(strict=False)
        elif name in frame.columns and frame.schema[name] == pl.String and isinstance(dtype, pl.Datetime):
            expr = col.str.to_datetime(strict=False, time_zone=dtype.time_zone).dt.cast_time_unit("us")
        else:
            expr = col.cast(dtype, strict=False)
        casts.append(expr.alias(name))
    return frame.with_columns(casts) if casts else frame


def read_webhook(name: str, source: WebhookSource, events: sa.Engine | None, watermark: Any) -> ExtractResult:
    """The next batch of the endpoint's events past `watermark` (the last seq this pipeline loaded),
    as rows; the result's watermark is the batch's last seq (None when there was nothing new)."""
    from headwater.webhooks.events import pending_count, read_events

    if events is None:
        raise PermanentError(
            f"source {name}: a webhook source reads the events the metadata store holds, and none was given",
            hint="run the pipeline (headwater run / the flow), which reads them from HEADWATER_DATABASE_URL",
        )
    after = int(watermark) if watermark is not None else None
    batch = read_events(events, source.endpoint, after, source.batch_size)
    rows: list[dict[str, Any]] = []
    without = 0
    for event in batch:
        try:
            body = json.loads(event.body)
        except json.JSONDecodeError:  # the API stores JSON only; a row someone wrote by hand
            body = None
        records, found = event_records(body, source.records)
        without += not found
        at = event.received_at  # SQLite gives back naive UTC, PostgreSQL the session's time zone
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        head = {"_event_id": event.id, "_event_key": event.key, "_received_at": at}
        rows.extend({**record, **head} for record in records)
    event_schema = pl.Schema(
        {"_event_id": pl.Int64(), "_event_key": pl.String(), "_received_at": pl.Datetime("us", "UTC")}
    )
    frame = _frame(rows) if rows else pl.DataFrame(schema=event_schema)
    frame = _typed(frame.cast(event_schema), source.columns)
    frame = frame.select(*WEBHOOK_COLUMNS, pl.exclude(WEBHOOK_COLUMNS))
    last = batch[-1].seq if batch else None
    metrics = {
        "events": len(batch),
        "events_without_records": without,
        "events_waiting": pending_count(events, source.endpoint, last if last is not None else after),
    }
    return ExtractResult(frame, watermark=last, metrics=metrics)
