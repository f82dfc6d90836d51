"""What every load does, whatever the warehouse: check keys, reconcile the schema, write, advance
watermarks, all in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable
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
    missing_columns: list[str] = field(default_factory=list)
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
    frame: pl.DataFrame | pl.LazyFrame,
    destination: Destination,
    *,
    pipeline: str,
    run_id: str,
    watermarks: list[WatermarkUpdate] | None = None,
    quarantine: list[dict[str, Any]] | None = None,
    replayed: list[int] | None = None,
    also: list[tuple[pl.DataFrame, Destination]] | None = None,
    in_transaction: Callable[[sa.Connection], None] | None = None,
) -> LoadResult:
    """Write `frame` to `destination` in a single transaction: all of it, or none of it. In the same
    transaction: write each (frame, destination) of `also` (a stream processor's closed windows),
    advance `watermarks`, set aside `quarantine` rows (headwater_quarantine), and mark the quarantine
    records `replayed` whose rows this load now carries. `in_transaction(conn)` runs last, before the
    commit (a stream processor records the entries it covers; raising rolls everything back)."""
    streamed = isinstance(frame, pl.LazyFrame)  # PostgreSQL only: run_load collects it for SQLite
    shape = pl.DataFrame(schema=frame.collect_schema()) if isinstance(frame, pl.LazyFrame) else frame
    check_keys(shape, destination)  # a streamed load's duplicate keys are found in its staging table
    extra = [(prepare_frame(f), d) for f, d in also or []]
    for extra_frame, extra_destination in extra:
        check_keys(extra_frame, extra_destination)
    frame = prepare_frame(frame)
    shape = prepare_frame(shape)
    writer = _writer(engine)
    try:
        # SQLite: take the write lock up front so two loads never deadlock upgrading a read lock
        with engine.execution_options(sqlite_begin="BEGIN IMMEDIATE").begin() as conn:
            target = ensure_table(conn, destination.table, shape, destination.primary_key)
            if destination.mode == "upsert" and not unique_key_exists(
                conn, target.table, destination.primary_key
            ):
                raise PermanentError(
                    f"table {destination.table} has no primary key or unique index on "
                    f"({', '.join(destination.primary_key)}), which upsert needs",
                    hint=f"CREATE UNIQUE INDEX ON {destination.table} ({', '.join(destination.primary_key)})",
                )
            if (
                not streamed
                and destination.mode == "overwrite"
                and shape.height == 0
                and not destination.allow_empty
            ):
                refuse_empty_overwrite(conn, target.table, destination)
            result = writer(conn, target.table, frame, destination)
            emptied = destination.mode == "overwrite" and result.rows == 0 and result.deleted
            if streamed and emptied and not destination.allow_empty:
                refuse_empty_overwrite_of(destination)  # the rows it took out come back with the rollback
            result.created_table, result.added_columns = target.created, target.added_columns
            result.missing_columns = target.missing_columns
            for extra_frame, extra_destination in extra:
                _write_also(conn, extra_frame, extra_destination, writer)
            for mark in watermarks or []:
                if mark.value is not None:
                    write_watermark(conn, pipeline, mark.source, mark.value, run_id)
                    result.watermarks[mark.source] = mark.value
            if quarantine is not None:
                write_quarantine(conn, quarantine)
                result.quarantined = len(quarantine)
            if replayed:
                result.replayed = mark_replayed(conn, replayed, run_id)
            if in_transaction is not None:
                in_transaction(conn)
    except (DBAPIError, engine.dialect.loaded_dbapi.Error) as exc:
        raise _load_error(engine, exc, destination.table) from exc
    if target.added_columns:
        log.warning("table %s gained column(s) %s", destination.table, ", ".join(target.added_columns))
    return result


def _writer(engine: sa.Engine) -> Callable[..., LoadResult]:
    dialect = engine.dialect.name
    if dialect == "postgresql":
        from headwater.load.postgres import write_postgres

        return write_postgres
    if dialect == "sqlite":
        from headwater.load.sqlite import write_sqlite

        return write_sqlite
    raise PermanentError(
        f"warehouse dialect {dialect!r} is not supported", hint="use a postgresql:// or sqlite:/// URL"
    )


def _load_error(engine: sa.Engine, exc: Exception, table: str) -> Exception:
    """A database error of a load as TransientError or PermanentError (the writers use the driver's
    own cursor, COPY and executemany, so its errors are wrapped to be classed)."""
    db_exc = (
        exc
        if isinstance(exc, DBAPIError)
        else DBAPIError.instance(None, None, exc, engine.dialect.loaded_dbapi.Error)
    )
    message = f"load into {table} failed and was rolled back: {first_line(db_exc)}"
    if is_transient(db_exc):
        return TransientError(message)
    return PermanentError(message, hint="the target's columns may not fit the data; see the message")


def load_built(
    engine: sa.Engine,
    build: Callable[[sa.Connection], list[tuple[pl.DataFrame, Destination]]],
    known: dict[Any, sa.Table] | None = None,
) -> None:
    """One transaction: `build(conn)` runs first (a stream processor takes its group's lock, reads
    its state, writes what it keeps beside the rows) and returns the frames to write; each is written
    (keys checked, schema reconciled; append or upsert) before the commit. All of it, or none.
    `known`: tables already checked for a frame of the same columns and key, kept by the caller
    between calls (a stream processor loads the same shape batch after batch); emptied on failure."""
    writer = _writer(engine)
    table = "the batch's tables"  # until a frame is written
    try:
        with engine.execution_options(sqlite_begin="BEGIN IMMEDIATE").begin() as conn:
            for frame, destination in build(conn):
                table = destination.table
                if frame.height == 0:
                    continue
                check_keys(frame, destination)
                prepared = prepare_frame(frame)
                shape = (
                    destination.table,
                    destination.mode,
                    tuple(destination.primary_key),
                    tuple((c, str(t)) for c, t in prepared.schema.items()),
                )
                target = known.get(shape) if known is not None else None
                if target is None:
                    target = _write_also(conn, prepared, destination, writer)
                    if known is not None:
                        known[shape] = target
                else:
                    writer(conn, target, prepared, destination)
    except (DBAPIError, engine.dialect.loaded_dbapi.Error) as exc:
        if known is not None:
            known.clear()
        raise _load_error(engine, exc, table) from exc


def _write_also(
    conn: sa.Connection, frame: pl.DataFrame, destination: Destination, writer: Callable[..., LoadResult]
) -> sa.Table:
    target = ensure_table(conn, destination.table, frame, destination.primary_key)
    if destination.mode == "upsert" and not unique_key_exists(conn, target.table, destination.primary_key):
        raise PermanentError(
            f"table {destination.table} has no primary key or unique index on "
            f"({', '.join(destination.primary_key)}), which upsert needs",
            hint=f"CREATE UNIQUE INDEX ON {destination.table} ({', '.join(destination.primary_key)})",
        )
    writer(conn, target.table, frame, destination)
    return target.table


def schema_drift(result: LoadResult) -> str | None:
    """A warning naming the columns a load added to its table or left NULL, or None."""
    parts = []
    if result.added_columns:
        parts.append(
            f"the data brought column(s) the table lacked: {', '.join(result.added_columns)} (added)"
        )
    if result.missing_columns:
        parts.append(
            f"the data lacks column(s) the table has: {', '.join(result.missing_columns)} "
            "(NULL in the rows loaded now)"
        )
    if not parts:
        return None
    return (
        f"schema drift in {result.table}: {'; '.join(parts)}. If a column was renamed, rename it back "
        "in a transform step (or migrate the table); a removed column stays in the table"
    )


def refuse_empty_overwrite(conn: sa.Connection, table: sa.Table, destination: Destination) -> None:
    """An overwrite with no rows would empty a table that has rows: refuse unless allowed."""
    has_rows = conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first() is not None
    if has_rows:
        refuse_empty_overwrite_of(destination)


def refuse_empty_overwrite_of(destination: Destination) -> None:
    raise PermanentError(
        f"overwrite of {destination.table} with 0 rows refused: it would empty a table that has rows "
        "(nothing was changed)",
        hint="if the source or a filter removed every row by mistake, fix that; if emptying the "
        "table is intended, set allow_empty: true on the destination",
    )
