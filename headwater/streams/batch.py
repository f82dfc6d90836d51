"""One micro-batch: entries parsed into a frame, the spec's ops applied, rows split by the `expect`
rules into the ones to load and the dead letters. Plain Polars, no broker, no warehouse."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import polars as pl

from headwater.extract.webhook import _frame, _typed
from headwater.load.quarantine import _masked
from headwater.redact import PII_COLUMN, redact
from headwater.spec.models import Expectation, RedisStreamSource
from headwater.streams.broker import DeadLetter, Entry
from headwater.transform import Op, OpContext
from headwater.transform.expressions import parse_expr

ENTRY_ID = "_entry_id"
"""The column holding each row's stream entry id."""
_BROKE = "_headwater_broke"


@dataclass
class Processed:
    good: pl.DataFrame
    dead: list[DeadLetter]
    events: pl.DataFrame
    """every parsed event after the ops, those breaking a rule too (what an alert on the events reads)"""


def parse_entries(entries: list[Entry], source: RedisStreamSource) -> tuple[pl.DataFrame, list[DeadLetter]]:
    """The entries as rows (`_entry_id` first, then the payload's fields or the entry's), typed by
    `columns`; entries whose payload is missing or not a JSON object come back as dead letters."""
    if source.payload is not None:
        fast = _read_ndjson(entries, source.payload)
        if fast is not None:
            return _typed(fast, source.columns), []
    rows: list[dict[str, Any]] = []
    bad: list[DeadLetter] = []
    for entry in entries:  # one json.loads per event, as the webhook source does
        if source.payload is None:
            rows.append({ENTRY_ID: entry.id, **entry.fields})
            continue
        text = entry.fields.get(source.payload)
        try:
            doc = json.loads(text) if text is not None else None
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            bad.append(DeadLetter(entry, "unparseable", [], raw_masked(entry)))
            continue
        doc.pop(ENTRY_ID, None)
        rows.append({ENTRY_ID: entry.id, **doc})
    frame = _frame(rows) if rows else pl.DataFrame(schema={ENTRY_ID: pl.String})
    return _typed(frame, source.columns), bad


def _read_ndjson(entries: list[Entry], payload: str) -> pl.DataFrame | None:
    """The batch's payloads parsed at once by Polars' NDJSON reader (several times faster than a
    json.loads per event); None when some entry lacks the field, holds no single-line JSON object, or
    the reader refuses the batch: the caller then parses event by event and dead-letters the bad."""
    texts = [e.fields.get(payload) for e in entries]
    if not texts or any(t is None or not t.startswith("{") or "\n" in t for t in texts):
        return None
    try:
        frame = pl.read_ndjson(io.BytesIO("\n".join(texts).encode()), infer_schema_length=None)  # type: ignore[arg-type]
    except Exception:  # any refusal: the per-event path names the bad events
        return None
    if frame.height != len(entries) or frame.width == 0:
        return None
    if ENTRY_ID in frame.columns:
        frame = frame.drop(ENTRY_ID)
    return frame.select(pl.Series(ENTRY_ID, [e.id for e in entries], dtype=pl.String), pl.all())


def raw_masked(entry: Entry) -> dict[str, Any]:
    return {k: redact(v) for k, v in entry.fields.items()}


def process(
    entries: list[Entry], source: RedisStreamSource, ops: list[Op], rules: list[Expectation], pii: list[str]
) -> Processed:
    """Parse, apply `ops`, and set aside the rows that break a rule (a rule that is NULL on a row
    passes, as in a batch validate step)."""
    frame, dead = parse_entries(entries, source)
    if frame.height == 0:  # nothing parsed (all poison or unparseable): no columns for the ops
        return Processed(frame, dead, frame)
    lazy = frame.lazy()
    ctx = OpContext()
    for op in ops:
        lazy = op.apply(lazy, ctx)
    if not rules:
        collected = lazy.collect()
        return Processed(collected, dead, collected)
    broke = pl.concat_list(
        [pl.when(~parse_expr(r.rule).fill_null(True)).then(pl.lit(r.name)) for r in rules]
    ).list.drop_nulls()
    checked = lazy.with_columns(broke.alias(_BROKE)).collect()
    failing = checked.filter(pl.col(_BROKE).list.len() > 0)
    by_id = {e.id: e for e in entries}
    if failing.height:
        data = failing.drop(_BROKE)
        masked_cols = [c for c in data.columns if c in pii or PII_COLUMN.search(c)]
        values = data.with_columns(_masked(c) for c in masked_cols)
        for row, names in zip(  # the dead rows only: few, and each becomes one stream entry
            values.iter_rows(named=True), failing[_BROKE].to_list(), strict=True
        ):
            dead.append(DeadLetter(by_id[row[ENTRY_ID]], "rules", names, row))
    good = checked.filter(pl.col(_BROKE).list.len() == 0).drop(_BROKE)
    return Processed(good, dead, checked.drop(_BROKE))
