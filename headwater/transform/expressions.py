"""Expressions in specs are SQL expressions parsed by Polars into `pl.Expr`: never `eval`, never SQL
strings sent to a database."""

from __future__ import annotations

import polars as pl

_TYPES: dict[str, pl.DataType | type[pl.DataType]] = {
    "int": pl.Int64,
    "integer": pl.Int64,
    "bigint": pl.Int64,
    "int64": pl.Int64,
    "int32": pl.Int32,
    "smallint": pl.Int16,
    "int16": pl.Int16,
    "int8": pl.Int8,
    "float": pl.Float64,
    "double": pl.Float64,
    "float64": pl.Float64,
    "float32": pl.Float32,
    "real": pl.Float32,
    "string": pl.String,
    "str": pl.String,
    "text": pl.String,
    "varchar": pl.String,
    "bool": pl.Boolean,
    "boolean": pl.Boolean,
    "date": pl.Date,
    "datetime": pl.Datetime("us"),
    "timestamp": pl.Datetime("us"),
    "datetime_utc": pl.Datetime("us", "UTC"),
    "timestamptz": pl.Datetime("us", "UTC"),
    "time": pl.Time,
}


def parse_dtype(name: str) -> pl.DataType | type[pl.DataType]:
    """A Polars type from a spec's type name (int, float, string, bool, date, datetime, decimal(p,s))."""
    key = name.strip().lower()
    if key in _TYPES:
        return _TYPES[key]
    if key.startswith("decimal"):
        inner = key.removeprefix("decimal").strip("() ")
        if not inner:
            return pl.Decimal(38, 9)
        precision, _, scale = inner.partition(",")
        if precision.strip().isdigit() and (not scale or scale.strip().isdigit()):
            return pl.Decimal(int(precision), int(scale or 0))
    raise ValueError(f"unknown type {name!r}; use one of {', '.join(sorted(_TYPES))} or decimal(p,s)")


def parse_expr(text: str) -> pl.Expr:
    """A Polars expression from a SQL expression such as `dep_delay > 15 AND origin = 'JFK'`."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("an expression must be a non-empty string")
    if ";" in text:
        raise ValueError(f"not a single expression: {text!r} contains ';'")
    try:
        return pl.sql_expr(text)
    except Exception as exc:  # polars raises several SQL error types; all mean "cannot parse"
        raise ValueError(f"cannot parse expression {text!r}: {str(exc).splitlines()[0]}") from None
