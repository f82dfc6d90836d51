"""Tables from frame schemas, and reconciling a frame with an existing table (schema drift)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import overload

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from headwater.errors import PermanentError


def sql_type(dtype: pl.DataType, dialect: str) -> sa.types.TypeEngine:  # type: ignore[type-arg]
    if dtype in (pl.Int64, pl.UInt32, pl.UInt64):
        return sa.BigInteger()
    if dtype in (pl.Int32, pl.UInt16):
        return sa.Integer()
    if dtype in (pl.Int8, pl.Int16, pl.UInt8):
        return sa.SmallInteger()
    if dtype in (pl.Float32, pl.Float64):
        return sa.Double()
    if dtype == pl.Boolean:
        return sa.Boolean()
    if dtype == pl.Date:
        return sa.Date()
    if dtype == pl.Time:
        return sa.Time()
    if isinstance(dtype, pl.Datetime):
        return sa.DateTime(timezone=dtype.time_zone is not None)
    if isinstance(dtype, pl.Decimal):
        return sa.Numeric(dtype.precision or 38, dtype.scale)
    if dtype == pl.Binary:
        return sa.LargeBinary()
    if isinstance(dtype, pl.List | pl.Struct | pl.Array):
        return postgresql.JSONB() if dialect == "postgresql" else sa.JSON()
    return sa.Text()


@overload
def prepare_frame(frame: pl.DataFrame) -> pl.DataFrame: ...
@overload
def prepare_frame(frame: pl.LazyFrame) -> pl.LazyFrame: ...
def prepare_frame(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame | pl.LazyFrame:
    """Nested values become JSON text; Null-typed columns become text (a lazy plan gets the same ops)."""
    exprs = []
    for name, dtype in frame.collect_schema().items():
        if isinstance(dtype, pl.List | pl.Array):
            # {"v":[...]} minus the wrapper; a null list stays SQL NULL, not the JSON text 'null'
            exprs.append(
                pl.when(pl.col(name).is_not_null())
                .then(pl.struct(pl.col(name).alias("v")).struct.json_encode().str.slice(5).str.head(-1))
                .alias(name)
            )
        elif isinstance(dtype, pl.Struct):
            exprs.append(pl.col(name).struct.json_encode().alias(name))
        elif dtype == pl.Null:
            exprs.append(pl.col(name).cast(pl.String))
    return frame.with_columns(exprs) if exprs else frame


def split_table(name: str) -> tuple[str | None, str]:
    schema, _, table = name.rpartition(".")
    return (schema or None), table


@dataclass
class TargetTable:
    table: sa.Table
    created: bool
    added_columns: list[str]
    """Columns the data brought that the table lacked: added to it."""
    missing_columns: list[str] = field(default_factory=list)
    """Columns the table has that the data lacks: NULL in the rows this load writes."""


def ensure_table(conn: sa.Connection, name: str, frame: pl.DataFrame, primary_key: list[str]) -> TargetTable:
    """The target table, created from the frame's schema when missing; new frame columns are added
    (additive schema drift) and columns the frame lacks are reported (the caller warns of both); a
    frame missing a NOT NULL column or a type that cannot convert fails."""
    dialect = conn.dialect.name
    schema, table_name = split_table(name)
    inspector = sa.inspect(conn)
    missing_pk = [c for c in primary_key if c not in frame.columns]
    if missing_pk:
        raise PermanentError(
            f"primary key column(s) {', '.join(missing_pk)} are not in the data loaded into {name}",
            hint=f"columns loaded: {', '.join(frame.columns)}",
        )
    if not inspector.has_table(table_name, schema=schema):
        # exactly the columns the data has: a single integer key is not made a serial/identity column
        columns = [
            sa.Column(col, sql_type(dtype, dialect), nullable=col not in primary_key, autoincrement=False)
            for col, dtype in frame.schema.items()
        ]
        pk = [sa.PrimaryKeyConstraint(*primary_key)] if primary_key else []
        table = sa.Table(table_name, sa.MetaData(), *columns, *pk, schema=schema)
        table.create(conn)
        return TargetTable(table, True, [])
    table = sa.Table(table_name, sa.MetaData(), autoload_with=conn, schema=schema)
    added = []
    for col, dtype in frame.schema.items():
        if col not in table.c:
            coltype = sql_type(dtype, dialect).compile(dialect=conn.dialect)
            conn.execute(
                sa.text(
                    f"ALTER TABLE {_qualified(conn, schema, table_name)} "
                    f"ADD COLUMN {conn.dialect.identifier_preparer.quote(col)} {coltype}"
                )
            )
            added.append(col)
    if added:
        table = sa.Table(table_name, sa.MetaData(), autoload_with=conn, schema=schema)
    required = [
        c.name
        for c in table.columns
        if not c.nullable and c.name not in frame.columns and c.server_default is None
    ]
    if required:
        raise PermanentError(
            f"table {name} needs column(s) {', '.join(required)} that the data lacks",
            hint="add them in a transform step, or make them nullable in the table",
        )
    missing = [c.name for c in table.columns if c.name not in frame.columns]
    return TargetTable(table, False, added, missing)


def _qualified(conn: sa.Connection, schema: str | None, table: str) -> str:
    q = conn.dialect.identifier_preparer.quote
    return f"{q(schema)}.{q(table)}" if schema else q(table)


def qualified(conn: sa.Connection, table: sa.Table) -> str:
    return _qualified(conn, table.schema, table.name)


def unique_key_exists(conn: sa.Connection, table: sa.Table, primary_key: list[str]) -> bool:
    inspector = sa.inspect(conn)
    wanted = set(primary_key)
    pk = inspector.get_pk_constraint(table.name, schema=table.schema)
    if set(pk.get("constrained_columns") or []) == wanted:
        return True
    for index in inspector.get_indexes(table.name, schema=table.schema):
        if index.get("unique") and set(index["column_names"]) == wanted:
            return True
    return any(
        set(u["column_names"]) == wanted
        for u in inspector.get_unique_constraints(table.name, schema=table.schema)
    )
