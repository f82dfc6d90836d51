"""What every load does, whatever the warehouse: check keys, reconcile the schema, write, advance
watermarks, all in one transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from headwater.dberrors import first_line, is_transient
from headwater.errors import PermanentError, TransientError
from headwater.load.quarantine import mark_replayed, write_quarantine
from headwater.load.schema import ensure_table, prepare_frame, unique_key_exists
from headwater.load.watermarks import write_watermark
from headwater.spec.models import Destination

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WatermarkUpdate:
    source: str
    value: Any


@dataclass
class LoadResult:
    table: str
    mode: str
    rows: int
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    created_table: bool = False
    added_columns: list[str] = field(default_factory=list)
    watermarks: dict[str, Any] = field(default_factory=dict)
    quarantined: int = 0
    replayed: int = 0


def check_keys(frame: pl.DataFrame, destination: Destination) -> None:
    pk = destination.primary_key
    if not pk:
        return
    missing = [c for c in pk if c not in frame.columns]
    if missing:
        raise PermanentError(
            f"primary key column(s) {', '.join(missing)} of {destination.table} are not in the data",
            hint=f"columns loaded: {', '.join(frame.columns)}",
        )
    keys = frame.select(pk)
    nulls = keys.select(pl.any_horizontal(pl.all().is_null()).sum()).item()
    if nulls:
        raise PermanentError(
            f"{nulls} row(s) loaded into {destination.table} have a null primary key ({', '.join(pk)})",
            hint="filter them out or fill_null before the load",
        )
    if keys.n_unique() == keys.height:  # the common case, ~20x cheaper than finding the duplicates
        return
    dupes = keys.filter(keys.is_duplicated())
    if dupes.height:
        sample = dupes.unique(maintain_order=True).head(3).rows()
        raise PermanentError(
            f"{dupes.height} row(s) loaded into {destination.table} share a primary key "
            f"({', '.join(pk)}), e.g. {sample}",
            hint=f"add a dedupe op on key {pk} before the load",
        )


def load_frame(
    engine: sa.Engine,
    frame: pl.DataFrame,
    destination: Destination,
    *,
    pipeline: str,
    run_id: str,
    watermarks: list[WatermarkUpdate] | None = None,
    quarantine: list[dict[str, Any]] | None = None,
    replayed: list[int] | None = None,
) -> LoadResult:
    """Write `frame` to `destination` in a single transaction: all of it, or none of it. In the same
    transaction: advance `watermarks`, set aside `quarantine` rows (headwater_quarantine), and mark
    the quarantine records `replayed` whose rows this load now carries."""
    check_keys(frame, destination)
    frame = prepare_frame(frame)
    dialect = engine.dialect.name
    if dialect == "postgresql":
        from headwater.load.postgres import write_postgres as writer
    elif dialect == "sqlite":
        from headwater.load.sqlite import write_sqlite as writer
    else:
        raise PermanentError(
            f"warehouse dialect {dialect!r} is not supported", hint="use a postgresql:// or sqlite:/// URL"
        )
    try:
        # SQLite: take the write lock up front so two loads never deadlock upgrading a read lock
        with engine.execution_options(sqlite_begin="BEGIN IMMEDIATE").begin() as conn:
            target = ensure_table(conn, destination.table, frame, destination.primary_key)
            if destination.mode == "upsert" and not unique_key_exists(
                conn, target.table, destination.primary_key
            ):
                raise PermanentError(
                    f"table {destination.table} has no primary key or unique index on "
                    f"({', '.join(destination.primary_key)}), which upsert needs",
                    hint=f"CREATE UNIQUE INDEX ON {destination.table} ({', '.join(destination.primary_key)})",
                )
            result = writer(conn, target.table, frame, destination)
            result.created_table, result.added_columns = target.created, target.added_columns
            for mark in watermarks or []:
                if mark.value is not None:
                    write_watermark(conn, pipeline, mark.source, mark.value, run_id)
                    result.watermarks[mark.source] = mark.value
            if quarantine is not None:
                write_quarantine(conn, quarantine)
                result.quarantined = len(quarantine)
            if replayed:
                result.replayed = mark_replayed(conn, replayed, run_id)
    except (DBAPIError, engine.dialect.loaded_dbapi.Error) as exc:
        # the writers use the driver's own cursor (COPY, executemany): wrap its errors to class them
        db_exc = (
            exc
            if isinstance(exc, DBAPIError)
            else DBAPIError.instance(None, None, exc, engine.dialect.loaded_dbapi.Error)
        )
        message = f"load into {destination.table} failed and was rolled back: {first_line(db_exc)}"
        if is_transient(db_exc):
            raise TransientError(message) from exc
        raise PermanentError(
            message, hint="the target's columns may not fit the data; see the message"
        ) from exc
    if target.added_columns:
        log.warning("table %s gained column(s) %s", destination.table, ", ".join(target.added_columns))
    return result
