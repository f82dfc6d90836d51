"""SQL sources: a table, or one read-only SELECT, in any SQLAlchemy database; incremental by a cursor.

A `table:` source is read with a statement SQLAlchemy Core builds from the reflected table: identifiers
are quoted and the watermark is a bound parameter. A `query:` source runs the spec's SELECT, checked at
spec load (and again here in the database's own dialect when that was unknown at load) as one read-only
statement; its `params:` and the watermark are bound, and an incremental query is wrapped as
`SELECT * FROM (<query>) AS q WHERE q.<cursor> > :watermark ORDER BY q.<cursor>`. On PostgreSQL a query
runs in a read-only transaction as well.

Column types are the database's, not guessed from values: an empty result or an all-NULL column keeps
its declared type (`polars_type` for a table's reflected columns, the driver's result description for a
query where it gives one, else inference from the values). Rows stream in chunks of BATCH_ROWS, each
built column by column with its Polars type, strictly: a value that does not fit (SQLite stores by
affinity, so an INTEGER column can hold 'abc') is refused with its column and row, never made NULL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

from headwater.connections import Connections
from headwater.dberrors import first_line, is_transient
from headwater.errors import PermanentError, TransientError
from headwater.extract.base import ExtractResult
from headwater.extract.sql_query import check_select, dialect_of, url_dialect
from headwater.spec.models import ConnectionRef, SqlSource

BATCH_ROWS = 100_000
_MAX_DECIMAL_PRECISION = 38  # Polars' Decimal


def polars_type(type_: sa.types.TypeEngine[Any]) -> pl.DataType:
    """The Polars type a reflected SQLAlchemy column type becomes.

    Every integer type (SMALLINT too) -> Int64: arithmetic in transforms does not wrap at 16 bits, and
    SQLite's INTEGER affinity lets a SMALLINT column hold any 64-bit value. FLOAT/REAL/DOUBLE -> Float64.
    NUMERIC(p, s) -> Decimal(p, s) (p <= 38; wider -> String, exact); NUMERIC without a precision ->
    Float64 (an unconstrained NUMERIC has no fixed scale to give a Decimal). DATETIME -> Datetime("us"),
    with time zone -> Datetime("us", "UTC"). JSON/JSONB, UUID and any other type -> String (its text).
    """
    if isinstance(type_, sa.Boolean):
        return pl.Boolean()
    if isinstance(type_, sa.Integer):
        return pl.Int64()
    if isinstance(type_, sa.Float):  # before Numeric: Float is a Numeric
        return pl.Float64()
    if isinstance(type_, sa.Numeric):
        if type_.precision is None:
            return pl.Float64()
        if type_.precision > _MAX_DECIMAL_PRECISION:
            return pl.String()
        return pl.Decimal(type_.precision, type_.scale or 0)
    if isinstance(type_, sa.DateTime):
        return pl.Datetime("us", "UTC" if type_.timezone else None)
    if isinstance(type_, sa.Date):
        return pl.Date()
    if isinstance(type_, sa.Time):
        return pl.Time()
    if isinstance(type_, sa.LargeBinary | sa.BINARY | sa.VARBINARY):
        return pl.Binary()
    return pl.String()


def _none_safe(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: None if v is None else convert(v)


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True)
class _Column:
    """How one result column becomes a Polars Series."""

    name: str
    dtype: pl.DataType | None
    """None: inferred from the values (a query column whose type the driver does not describe)."""
    declared: str
    """The database's type, for messages."""
    convert: Callable[[Any], Any] | None = None
    """Applied to each value first, where the driver's value is not what Polars takes (None-safe)."""
    flag_int: bool = False
    """A boolean SQLite stores as 0/1: read as Int64, refused unless 0 or 1, then cast."""


@dataclass(frozen=True)
class _Plan:
    statement: sa.Executable
    columns: list[_Column] | None
    """None: from the result's description (a query)."""
    what: str
    """`table x` or `the query`, for messages."""


def read_sql(
    name: str,
    source: SqlSource,
    connections: Connections,
    watermark: Any,
    default: ConnectionRef | None = None,
) -> ExtractResult:
    engine = connections.engine(source.connection or default)
    where = engine.url.render_as_string(hide_password=True)
    cursor = source.incremental.cursor if source.incremental else None
    start = (
        watermark if watermark is not None else (source.incremental.initial if source.incremental else None)
    )
    what = f"table {source.table}" if source.table else "query"
    with _source_errors(name, source, where, what):
        plan = _plan(name, source, engine, cursor, start, where)
        options: dict[str, Any] = {"stream_results": True}
        if source.query is not None and engine.dialect.name == "postgresql":
            options["postgresql_readonly"] = True
        with engine.connect() as conn:
            result = conn.execution_options(**options).execute(plan.statement)
            columns = plan.columns or _described(name, result, engine.dialect.name)
            chunks, offset = [], 0
            while rows := _fetch(name, plan.what, result, offset):
                chunks.append(_frame(name, plan.what, columns, rows, offset))
                offset += len(rows)
    schema = {c.name: c.dtype or pl.Null() for c in columns}
    frame = pl.concat(chunks, how="vertical_relaxed") if chunks else pl.DataFrame(schema=schema)
    new_mark = None
    if cursor and frame.height:
        new_mark = frame.get_column(cursor).max()
    metrics = {"watermark_from": _plain(start), "watermark_to": _plain(new_mark)}
    return ExtractResult(frame, watermark=new_mark, metrics=metrics)


def has_rows_past(
    name: str,
    source: SqlSource,
    connections: Connections,
    watermark: Any,
    default: ConnectionRef | None = None,
) -> bool:
    """Whether the source has a row past `watermark` (one row fetched: a precondition, not a read)."""
    engine = connections.engine(source.connection or default)
    where = engine.url.render_as_string(hide_password=True)
    cursor = source.incremental.cursor if source.incremental else None
    with _source_errors(name, source, where, "the check for new rows"):
        plan = _plan(name, source, engine, cursor, watermark, where)
        if isinstance(plan.statement, sa.TextClause):  # a query: one row of it, whatever its columns
            stmt: sa.Executable = sa.select(sa.literal(1)).select_from(plan.statement.columns().subquery("p"))
        else:
            assert isinstance(plan.statement, sa.Select)
            stmt = plan.statement
        with engine.connect() as conn:
            return conn.execute(stmt.limit(1)).first() is not None  # type: ignore[attr-defined]


@contextmanager
def _source_errors(name: str, source: SqlSource, where: str, what: str) -> Iterator[None]:
    """A source's database errors, classed: a missing table and other refusals are permanent, what
    is_transient says is worth a retry is transient."""
    try:
        yield
    except NoSuchTableError as exc:
        raise PermanentError(
            f"source {name}: no table {source.table} at {where}",
            hint="check the table name and the connection",
        ) from exc
    except SQLAlchemyError as exc:
        if is_transient(exc):
            raise TransientError(f"source {name}: cannot read {where}: {first_line(exc)}") from exc
        raise PermanentError(f"source {name}: {what} at {where} failed: {first_line(exc)}") from exc


def _plan(
    name: str, source: SqlSource, engine: sa.Engine, cursor: str | None, start: Any, where: str
) -> _Plan:
    if source.query is not None:
        return _query_plan(name, source, engine, cursor, start)
    return _table_plan(name, source, engine, cursor, start, where)


# ------------------------------------------------------------------ statements


def _table(engine: sa.Engine, table: str) -> sa.Table:
    schema, _, name = table.rpartition(".")
    return sa.Table(name, sa.MetaData(), autoload_with=engine, schema=schema or None)


def _table_plan(
    name: str, source: SqlSource, engine: sa.Engine, cursor: str | None, start: Any, where: str
) -> _Plan:
    table = _table(engine, source.table or "")
    wanted = source.columns or [c.name for c in table.columns]
    missing = [c for c in wanted if c not in table.c]
    if cursor and cursor not in table.c:
        missing.append(cursor)
    if missing:
        raise PermanentError(
            f"source {name}: table {source.table} at {where} has no column(s) {', '.join(missing)}",
            hint=f"columns there: {', '.join(table.c.keys())}",
        )
    if cursor and cursor not in wanted:
        wanted = [*wanted, cursor]
    selected, columns = [], []
    for column_name in wanted:
        expr, column = _read_as(table.c[column_name], engine.dialect)
        selected.append(expr)
        columns.append(column)
    stmt = sa.select(*selected)
    if cursor:
        if start is not None:
            stmt = stmt.where(table.c[cursor] > sa.bindparam("watermark", start, type_=table.c[cursor].type))
        stmt = stmt.order_by(table.c[cursor])
    return _Plan(stmt, columns, f"table {source.table}")


def _read_as(column: sa.Column[Any], dialect: sa.Dialect) -> tuple[sa.ColumnElement[Any], _Column]:
    """How to select a reflected column, and how its values become its Polars type.

    A type read as text (JSON, UUID, INTERVAL, ...) is cast to text in the database. On SQLite, whose
    values follow affinity rather than the declared type, values are fetched as stored and converted here
    (with SQLAlchemy's own converters for dates, times and decimals), so a misfit names its row."""
    dtype = polars_type(column.type)
    declared = str(column.type) if not isinstance(column.type, sa.types.NullType) else "(no type)"
    if dtype == pl.String() and not isinstance(column.type, sa.String):
        return sa.cast(column, sa.Text).label(column.name), _Column(column.name, dtype, declared)
    if dialect.name != "sqlite":
        return column, _Column(column.name, dtype, declared)
    raw = sa.type_coerce(column, sa.types.NullType()).label(column.name)
    if dtype == pl.Boolean():
        return raw, _Column(column.name, dtype, declared, flag_int=True)
    convert = None
    if isinstance(dtype, pl.Date | pl.Datetime | pl.Time | pl.Decimal):
        convert = dialect.type_descriptor(column.type).result_processor(dialect, None)
    return raw, _Column(column.name, dtype, declared, convert=convert)


def _query_plan(name: str, source: SqlSource, engine: sa.Engine, cursor: str | None, start: Any) -> _Plan:
    query = source.query or ""
    dialect = dialect_of(engine.dialect.name)
    if dialect != url_dialect(source.connection):  # load checked it in another dialect
        try:
            check_select(query, dialect)
        except ValueError as exc:
            raise PermanentError(
                f"source {name}: {exc}", hint="give one read-only SELECT (or WITH ... SELECT)"
            ) from exc
    binds = dict(source.params)
    if cursor:
        quoted = engine.dialect.identifier_preparer.quote(cursor)
        past = ""
        if start is not None:
            past = f" WHERE q.{quoted} > :watermark"
            binds["watermark"] = start
        # new lines around the query: a trailing -- comment in it cannot swallow the wrapper
        query = f"SELECT * FROM (\n{query}\n) AS q{past} ORDER BY q.{quoted}"
    return _Plan(sa.text(query).bindparams(**binds), None, "the query")


# PostgreSQL type OIDs in a result description -> Polars type, and a per-value conversion where the
# driver's value is not what Polars takes. Types not listed are inferred from the values.
_PG_TYPES: dict[int, tuple[pl.DataType, Callable[[Any], Any] | None]] = {
    16: (pl.Boolean(), None),
    17: (pl.Binary(), bytes),  # psycopg2 gives a memoryview
    18: (pl.String(), None),
    19: (pl.String(), None),
    20: (pl.Int64(), None),
    21: (pl.Int64(), None),
    23: (pl.Int64(), None),
    25: (pl.String(), None),
    114: (pl.String(), _json_text),  # the driver parses JSON: back to its text
    700: (pl.Float64(), None),
    701: (pl.Float64(), None),
    1042: (pl.String(), None),
    1043: (pl.String(), None),
    1082: (pl.Date(), None),
    1083: (pl.Time(), None),
    1114: (pl.Datetime("us"), None),
    1184: (pl.Datetime("us", "UTC"), None),
    2950: (pl.String(), str),
    3802: (pl.String(), _json_text),
}
_PG_NUMERIC = 1700


def _described(name: str, result: sa.CursorResult[Any], backend: str) -> list[_Column]:
    keys = list(result.keys())
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise PermanentError(
            f"source {name}: the query gives column(s) {', '.join(twice)} more than once",
            hint="give each selected column its own name (AS ...)",
        )
    description = result.cursor.description if result.cursor is not None else None
    if backend != "postgresql" or not description:
        return [_Column(k, None, "(inferred)") for k in keys]
    columns = []
    for key, entry in zip(keys, description, strict=True):
        code = entry[1]
        dtype: pl.DataType | None = None
        convert: Callable[[Any], Any] | None = None
        if code == _PG_NUMERIC:
            precision, scale = entry[4], entry[5]
            if precision is None or precision < 1 or precision == 65535:  # unconstrained numeric
                dtype = pl.Float64()
            elif precision > _MAX_DECIMAL_PRECISION:
                dtype, convert = pl.String(), str
            else:
                dtype = pl.Decimal(precision, scale or 0)
        elif code in _PG_TYPES:
            dtype, convert = _PG_TYPES[code]
        columns.append(
            _Column(key, dtype, f"pg type {code}", _none_safe(convert) if convert is not None else None)
        )
    return columns


# ------------------------------------------------------------------ frames


def _fetch(name: str, what: str, result: sa.CursorResult[Any], offset: int) -> Sequence[sa.Row[Any]]:
    try:
        return result.fetchmany(BATCH_ROWS)
    except (ValueError, TypeError, ArithmeticError) as exc:  # a driver's or SQLAlchemy's converter
        raise PermanentError(
            f"source {name}: a value in rows {offset + 1}..{offset + BATCH_ROWS} of {what} does not "
            f"fit its declared type: {first_line(exc)}",
            hint="fix or cast the value in the database",
        ) from exc


def _frame(name: str, what: str, columns: list[_Column], rows: Sequence[Any], offset: int) -> pl.DataFrame:
    by_column = zip(*rows, strict=True)  # one transpose; no Python work per value beyond converters
    return pl.DataFrame(
        [
            _series(name, what, column, list(values), offset)
            for column, values in zip(columns, by_column, strict=True)
        ]
    )


def _series(name: str, what: str, column: _Column, values: list[Any], offset: int) -> pl.Series:
    given = values
    if column.convert is not None:
        try:
            values = list(map(column.convert, values))
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise _misfit(name, what, column, given, offset) from exc
    if column.dtype is None:
        return pl.Series(column.name, values, strict=False)
    build = pl.Int64() if column.flag_int else column.dtype
    try:
        series = pl.Series(column.name, values, dtype=build, strict=True)
        if column.flag_int:
            if not series.drop_nulls().is_in([0, 1]).all():
                raise ValueError("a boolean other than 0 or 1")
            series = series.cast(pl.Boolean)
        elif series.dtype != column.dtype:  # e.g. a datetime given for a DATE column
            series = series.cast(column.dtype, strict=True)
    except (ValueError, TypeError, OverflowError, pl.exceptions.PolarsError) as exc:
        raise _misfit(name, what, column, given, offset) from exc
    return series


def _fits(column: _Column, value: Any) -> bool:
    try:
        if column.convert is not None:
            value = column.convert(value)
        if column.flag_int:
            return value in (0, 1) and not isinstance(value, float | str)
        pl.Series([value], dtype=column.dtype, strict=True).cast(column.dtype or pl.Null())
        return True
    except (ValueError, TypeError, OverflowError, ArithmeticError, pl.exceptions.PolarsError):
        return False


def _misfit(name: str, what: str, column: _Column, values: list[Any], offset: int) -> PermanentError:
    """The first value of a chunk that does not fit its column's type, named by column and row (only
    on failure: a Python loop over the chunk's values). Only that one value is quoted, shortened."""
    index = next((i for i, v in enumerate(values) if v is not None and not _fits(column, v)), None)
    at = f" at row {offset + index + 1} of the result" if index is not None else ""
    value = f": {_short(values[index])}" if index is not None else ""
    hint = (
        "cast it in the query, or fix the value in the database"
        if what == "the query"
        else "fix the value, or cast it in the database (a view, or a `query:` source with CAST), "
        "or leave the column out of `columns:`"
    )
    return PermanentError(
        f"source {name}: column {column.name} of {what} is declared {column.declared} "
        f"(Polars {column.dtype}) but holds a value that does not fit{at}{value}",
        hint=hint,
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, int | float | str) else str(value)
