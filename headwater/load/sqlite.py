"""SQLite, the embedded default: executemany into the target or a temporary stage, then one
INSERT ... ON CONFLICT for upserts."""

from __future__ import annotations

import polars as pl
import sqlalchemy as sa

from headwater.errors import PermanentError
from headwater.load.base import LoadResult
from headwater.load.schema import qualified
from headwater.spec.models import Destination

BATCH_ROWS = 50_000


def _plain(frame: pl.DataFrame) -> pl.DataFrame:
    """Values the sqlite3 driver stores as SQLAlchemy would: dates and times as ISO text."""
    exprs = []
    for name, dtype in frame.schema.items():
        if dtype == pl.Date:
            exprs.append(pl.col(name).dt.strftime("%Y-%m-%d"))
        elif isinstance(dtype, pl.Datetime):
            exprs.append(pl.col(name).dt.strftime("%Y-%m-%d %H:%M:%S.%6f"))
        elif dtype == pl.Time or isinstance(dtype, pl.Decimal | pl.Duration):
            exprs.append(pl.col(name).cast(pl.String))
    return frame.with_columns(exprs) if exprs else frame


_TRUTH = ["true", "false", "t", "f", "1", "0", "yes", "no", "y", "n"]


def _check_fit(table: sa.Table, frame: pl.DataFrame) -> None:
    """Fail like PostgreSQL where SQLite would not: its type affinity stores text that is not a number
    in a numeric column (or not a date in a date column) as text, and its driver cannot bind
    integers past 64 bits. (SQLAlchemy 2.1's Float is not a Numeric: both are checked.)"""
    for name, dtype in frame.schema.items():
        coltype = table.c[name].type
        text = pl.col(name).str.strip_chars()
        if dtype == pl.UInt64:
            bad, reason = pl.col(name) > 2**63 - 1, "is out of range for a 64-bit integer"
        elif dtype != pl.String:
            continue
        elif isinstance(coltype, sa.Integer | sa.Numeric | sa.Float):
            target = pl.Int64 if isinstance(coltype, sa.Integer) else pl.Float64
            bad = pl.col(name).is_not_null() & text.cast(target, strict=False).is_null()
            reason = f"is not a valid {coltype.compile()}"
        elif isinstance(coltype, sa.Boolean):
            bad = pl.col(name).is_not_null() & ~text.str.to_lowercase().is_in(_TRUTH)
            reason = "is not a valid BOOLEAN"
        elif isinstance(coltype, sa.DateTime):
            bad = pl.col(name).is_not_null() & text.str.to_datetime(strict=False).is_null()
            reason = "is not a valid DATETIME"
        elif isinstance(coltype, sa.Date):
            bad = pl.col(name).is_not_null() & text.str.to_date(strict=False).is_null()
            reason = "is not a valid DATE"
        else:
            continue
        rows = frame.select(bad.arg_true())[:, 0]
        if rows.len():
            raise PermanentError(
                f"row {rows[0] + 1} of the load, column {name}: {frame[name][rows[0]]!r} "
                f"{reason} ({rows.len()} row(s) like it)",
                hint="the target column's type does not fit the data: cast it in a "
                "transform step, or alter the table",
            )


def _insert_all(cur, target: str, cols_sql: str, frame: pl.DataFrame) -> None:  # type: ignore[no-untyped-def]
    marks = ", ".join("?" for _ in frame.columns)
    sql = f"INSERT INTO {target} ({cols_sql}) VALUES ({marks})"
    for offset in range(0, frame.height, BATCH_ROWS):
        cur.executemany(sql, frame.slice(offset, BATCH_ROWS).iter_rows())


def write_sqlite(
    conn: sa.Connection, table: sa.Table, frame: pl.DataFrame, destination: Destination
) -> LoadResult:
    quote = conn.dialect.identifier_preparer.quote
    target = qualified(conn, table)
    cols = frame.columns
    cols_sql = ", ".join(quote(c) for c in cols)
    _check_fit(table, frame)
    frame = _plain(frame)
    result = LoadResult(destination.table, destination.mode, frame.height)
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if destination.mode == "overwrite":
            result.deleted = cur.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
            cur.execute(f"DELETE FROM {target}")
        if destination.mode in ("append", "overwrite"):
            _insert_all(cur, target, cols_sql, frame)
            result.inserted = frame.height
            return result
        cur.execute("DROP TABLE IF EXISTS temp.headwater_stage")
        cur.execute(f"CREATE TEMP TABLE headwater_stage AS SELECT {cols_sql} FROM {target} WHERE 0")
        _insert_all(cur, "temp.headwater_stage", cols_sql, frame)
        pk = destination.primary_key
        others = [c for c in cols if c not in pk]
        join = " AND ".join(f"t.{quote(c)} = s.{quote(c)}" for c in pk)
        result.inserted = cur.execute(
            f"SELECT count(*) FROM temp.headwater_stage s WHERE NOT EXISTS "
            f"(SELECT 1 FROM {target} t WHERE {join})"
        ).fetchone()[0]
        if others:
            differs = " OR ".join(f"t.{quote(c)} IS NOT s.{quote(c)}" for c in others)
            result.updated = cur.execute(
                f"SELECT count(*) FROM temp.headwater_stage s JOIN {target} t ON {join} WHERE {differs}"
            ).fetchone()[0]
            sets = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in others)
            changed = " OR ".join(f"{quote(c)} IS NOT excluded.{quote(c)}" for c in others)
            action = f"DO UPDATE SET {sets} WHERE {changed}"
        else:
            action = "DO NOTHING"
        cur.execute(
            f"INSERT INTO {target} ({cols_sql}) SELECT {cols_sql} FROM temp.headwater_stage WHERE true "
            f"ON CONFLICT ({', '.join(quote(c) for c in pk)}) {action}"
        )
        result.unchanged = frame.height - result.inserted - result.updated
        cur.execute("DROP TABLE temp.headwater_stage")
        return result
    finally:
        cur.close()
