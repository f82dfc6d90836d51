"""SQL sources: a table in any SQLAlchemy database, incremental by a cursor column.

The query is built with SQLAlchemy Core from the reflected table: identifiers are quoted and the
watermark is a bound parameter. Nothing is concatenated into SQL."""

from __future__ import annotations

from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

from headwater.connections import Connections
from headwater.dberrors import first_line, is_transient
from headwater.errors import PermanentError, TransientError
from headwater.extract.base import ExtractResult
from headwater.spec.models import ConnectionRef, SqlSource

BATCH_ROWS = 100_000


def _table(engine: sa.Engine, source: SqlSource) -> sa.Table:
    schema, _, name = source.table.rpartition(".")
    return sa.Table(name, sa.MetaData(), autoload_with=engine, schema=schema or None)


def read_sql(
    name: str,
    source: SqlSource,
    connections: Connections,
    watermark: Any,
    default: ConnectionRef | None = None,
) -> ExtractResult:
    engine = connections.engine(source.connection or default)
    where = engine.url.render_as_string(hide_password=True)
    try:
        table = _table(engine, source)
        wanted = source.columns or [c.name for c in table.columns]
        missing = [c for c in wanted if c not in table.c]
        cursor = source.incremental.cursor if source.incremental else None
        if cursor and cursor not in table.c:
            missing.append(cursor)
        if missing:
            raise PermanentError(
                f"source {name}: table {source.table} at {where} has no column(s) {', '.join(missing)}",
                hint=f"columns there: {', '.join(table.c.keys())}",
            )
        cols = [table.c[c] for c in wanted]
        if cursor and cursor not in wanted:
            cols.append(table.c[cursor])
        stmt = sa.select(*cols)
        start = (
            watermark
            if watermark is not None
            else (source.incremental.initial if source.incremental else None)
        )
        if cursor:
            if start is not None:
                stmt = stmt.where(
                    table.c[cursor] > sa.bindparam("watermark", start, type_=table.c[cursor].type)
                )
            stmt = stmt.order_by(table.c[cursor])
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(stmt)
            keys = list(result.keys())
            chunks = []
            while rows := result.fetchmany(BATCH_ROWS):
                chunks.append(
                    pl.DataFrame(
                        [tuple(r) for r in rows], schema=keys, orient="row", infer_schema_length=None
                    )
                )
    except NoSuchTableError as exc:
        raise PermanentError(
            f"source {name}: no table {source.table} at {where}",
            hint="check the table name and the connection",
        ) from exc
    except SQLAlchemyError as exc:
        if is_transient(exc):
            raise TransientError(f"source {name}: cannot read {where}: {first_line(exc)}") from exc
        raise PermanentError(
            f"source {name}: query on {source.table} at {where} failed: {first_line(exc)}"
        ) from exc
    frame = pl.concat(chunks, how="vertical_relaxed") if chunks else pl.DataFrame(schema=keys)
    new_mark = None
    if cursor and frame.height:
        new_mark = frame.get_column(cursor).max()
    metrics = {"watermark_from": _plain(start), "watermark_to": _plain(new_mark)}
    return ExtractResult(frame, watermark=new_mark, metrics=metrics)


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, int | float | str) else str(value)
