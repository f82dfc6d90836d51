"""Column ops: choose, order, rename, retype, compute, fill and add columns."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, ClassVar, Literal

import polars as pl
from polars._typing import PolarsDataType
from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr, field_validator, model_validator

from headwater.transform.expressions import parse_dtype, parse_expr
from headwater.transform.lineage import ALL_ROWS, Kind, Lineage, direct, made_from
from headwater.transform.registry import Op, OpContext, register

Columns = list[str]
Scalar = StrictBool | StrictInt | StrictFloat | StrictStr | datetime | date | None
"""A literal a spec may give: YAML reads dates and timestamps as such."""

_BOOLEANS = {"true": True, "t": True, "yes": True, "y": True, "1": True}
_BOOLEANS |= {"false": False, "f": False, "no": False, "n": False, "0": False}
_ACROSS_ROWS = {"Agg", "Over", "Len", "Rolling"}
"""Nodes of a serialized Polars expression that read other rows (aggregates, windows, row counts)."""


def _scalars(values: Any) -> Any:
    """Literal values, one per column: a list or mapping is a mistake worth a clear message."""
    if isinstance(values, dict):
        for column, value in values.items():
            if isinstance(value, list | dict | tuple | set):
                raise ValueError(
                    f"{column}: {value!r} is not a single value (text, number, true/false, date...)"
                )
    return values


def _distinct(columns: list[str]) -> list[str]:
    if len(set(columns)) != len(columns):
        raise ValueError(f"columns are listed more than once: {columns}")
    return columns


def converted(expr: pl.Expr, source: PolarsDataType, target: PolarsDataType, strict: bool) -> pl.Expr:
    """`expr` (of type `source`) as `target`. Strings are parsed: dates and datetimes (a UTC offset in
    the text converts the time to UTC), times, and true/false, t/f, yes/no, y/n, 1/0 in any case.
    A float or decimal with a fraction does not convert to an integer (Polars would truncate it).
    Failures raise when strict, else become null."""
    if source == pl.String and (target == pl.Date or isinstance(target, pl.Datetime)):
        zone = target.time_zone if isinstance(target, pl.Datetime) else None
        parsed = expr.str.to_datetime(time_zone=zone or "UTC", strict=strict)
        return (parsed if zone else parsed.dt.replace_time_zone(None)).cast(target)
    if source == pl.String and target == pl.Time:
        return expr.str.to_time(strict=strict)
    if source == pl.String and target == pl.Boolean:
        words = expr.str.strip_chars().str.to_lowercase()
        unmapped: dict[str, Any] = {} if strict else {"default": None}
        return words.replace_strict(_BOOLEANS, return_dtype=pl.Boolean, **unmapped)
    if target.is_integer() and (source.is_float() or source.is_decimal()):
        whole = expr == expr.floor()  # NaN and infinity are left to the cast
        if not strict:
            return pl.when(whole).then(expr).cast(target, strict=False)
        fractions = pl.when(~whole).then(expr.cast(pl.String)).cast(target, strict=True)  # names them
        return pl.coalesce(fractions, expr.cast(target, strict=True))
    return expr.cast(target, strict=strict)


def literal(value: Any, dtype: PolarsDataType | None = None) -> pl.Expr:
    """A literal of `value`, converted strictly to `dtype` if given (strings are parsed as by `cast`);
    raises a Polars error when it does not convert. Untyped: int -> Int64, float -> Float64."""
    series = pl.Series("value", [value], dtype=pl.String if isinstance(value, str) else None)
    if dtype is not None:
        series = series.to_frame().select(converted(pl.col("value"), series.dtype, dtype, True))["value"]
    return pl.lit(series.item(), dtype=series.dtype)


def _across_rows(expr: pl.Expr) -> bool:
    def walk(node: Any) -> bool:
        if isinstance(node, dict):
            return any(key in _ACROSS_ROWS or walk(value) for key, value in node.items())
        if isinstance(node, list):
            return any(walk(value) for value in node)
        return node in _ACROSS_ROWS

    return walk(json.loads(expr.meta.serialize(format="json")))


@register
class Select(Op):
    name: ClassVar[str] = "select"
    category: ClassVar[str] = "columns"
    description: ClassVar[str] = "Keep only these columns, in this order."
    example: ClassVar[str] = "select: [carrier, flights]"
    shorthand: ClassVar[str | None] = "columns"
    columns: Columns = Field(..., min_length=1, description="Columns to keep, in the order wanted.")

    _distinct = field_validator("columns")(_distinct)

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        return frame.select(self.columns)


@register
class Reorder(Op):
    name: ClassVar[str] = "reorder"
    category: ClassVar[str] = "columns"
    description: ClassVar[str] = "Put these columns first, in this order; the others follow in their order."
    example: ClassVar[str] = "reorder: [flight_date, carrier]"
    shorthand: ClassVar[str | None] = "columns"
    columns: Columns = Field(..., min_length=1, description="Columns to put first, in the order wanted.")

    _distinct = field_validator("columns")(_distinct)

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        return frame.select(*self.columns, pl.exclude(self.columns))


@register
class Drop(Op):
    name: ClassVar[str] = "drop"
    category: ClassVar[str] = "columns"
    description: ClassVar[str] = "Remove these columns."
    example: ClassVar[str] = "drop: [tailnum]"
    shorthand: ClassVar[str | None] = "columns"
    columns: Columns = Field(..., min_length=1, description="Columns to remove; each must exist.")

    _distinct = field_validator("columns")(_distinct)

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        return frame.drop(self.columns, strict=True)


@register
class Rename(Op):
    name: ClassVar[str] = "rename"
    category: ClassVar[str] = "columns"
    description: ClassVar[str] = "Rename columns: old name -> new name."
    example: ClassVar[str] = "rename: {name: carrier_name}"
    shorthand: ClassVar[str | None] = "mapping"
    mapping: dict[str, str] = Field(..., min_length=1, description="Old name -> new name.")

    @field_validator("mapping")
    @classmethod
    def _targets(cls, v: dict[str, str]) -> dict[str, str]:
        _distinct(list(v.values()))
        return v

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        return frame.rename(self.mapping)

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {new: direct(old) for old, new in self.mapping.items()}


@register
class Cast(Op):
    name: ClassVar[str] = "cast"
    category: ClassVar[str] = "columns"
    description: ClassVar[str] = "Change column types; strict fails on a value that does not convert."
    example: ClassVar[str] = "cast: {columns: {dep_delay: float, time_hour: datetime_utc}}"
    shorthand: ClassVar[str | None] = "columns"
    columns: dict[str, str] = Field(
        ...,
        min_length=1,
        description="Column -> type name: int, float, string, bool, date, datetime, decimal(p,s)...",
    )
    strict: bool = Field(
        True, description="Fail on a value that does not convert; false: make it null and count it."
    )

    @field_validator("columns")
    @classmethod
    def _types(cls, v: dict[str, str]) -> dict[str, str]:
        for t in v.values():
            parse_dtype(t)
        return v

    def _converted(self, column: str, source_type: pl.DataType) -> pl.Expr:
        return converted(pl.col(column), source_type, parse_dtype(self.columns[column]), self.strict)

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        schema = frame.collect_schema()
        return frame.with_columns(self._converted(c, schema[c]).alias(c) for c in self.columns)

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {c: made_from([c], Kind.CALCULATION) for c in self.columns}

    def counters(self, schema: pl.Schema) -> dict[str, pl.Expr]:
        """With strict: false, how many non-null values of each column did not convert (now null)."""
        if self.strict:
            return {}
        return {
            f"{c}_failed": (pl.col(c).is_not_null() & self._converted(c, schema[c]).is_null()).sum()
            for c in self.columns
        }


@register
class Derive(Op):
    name: ClassVar[str] = "derive"
    category: ClassVar[str] = "columns"
    description: ClassVar[str] = "Add or replace columns computed by SQL expressions (each sees the input)."
    example: ClassVar[str] = 'derive: {gain: "dep_delay - arr_delay"}'
    shorthand: ClassVar[str | None] = "columns"
    columns: dict[str, str] = Field(..., min_length=1, description="New column -> SQL expression.")

    @field_validator("columns")
    @classmethod
    def _parses(cls, v: dict[str, str]) -> dict[str, str]:
        for text in v.values():
            parse_expr(text)
        return v

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        return frame.with_columns(parse_expr(text).alias(col) for col, text in self.columns.items())

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        """An aggregate or window (`avg(x)`, `count(*)`, `... OVER (...)`) is an aggregation."""
        out = {}
        for col, text in self.columns.items():
            expr = parse_expr(text)
            roots = expr.meta.root_names()
            if _across_rows(expr):
                out[col] = made_from(roots or [ALL_ROWS], Kind.AGGREGATION)
            else:
                out[col] = made_from(roots, Kind.CALCULATION if roots else Kind.DERIVED)
        return out


@register
class Coalesce(Op):
    name: ClassVar[str] = "coalesce"
    category: ClassVar[str] = "columns"
    description: ClassVar[str] = "Put the first non-null value of several columns (of one type) in a column."
    example: ClassVar[str] = "coalesce: {columns: [mobile, home_phone], as: phone}"
    columns: Columns = Field(..., min_length=2, description="Columns to take values from, in order.")
    output: str = Field(..., alias="as", description="The column that gets the values (new or existing).")

    _distinct = field_validator("columns")(_distinct)

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        schema = frame.collect_schema()
        types = {c: schema[c] for c in self.columns}
        if len(set(types.values())) > 1 and not all(t.is_numeric() for t in types.values()):
            shown = ", ".join(f"{c}: {t}" for c, t in types.items())
            raise pl.exceptions.InvalidOperationError(
                f"coalesce: the columns have different types ({shown}); cast them first"
            )
        return frame.with_columns(pl.coalesce(self.columns).alias(self.output))

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {self.output: made_from(self.columns, Kind.CALCULATION)}


@register
class Constant(Op):
    name: ClassVar[str] = "constant"
    category: ClassVar[str] = "columns"
    description: ClassVar[str] = "Add (or replace) columns holding one literal value each, optionally typed."
    example: ClassVar[str] = "constant: {columns: {source: feed_a, batch: 3}, types: {batch: int32}}"
    shorthand: ClassVar[str | None] = "columns"
    columns: dict[str, Scalar] = Field(
        ...,
        min_length=1,
        description="Column -> value: a string, number, true/false, date, timestamp or null.",
    )
    types: dict[str, str] = Field(
        default_factory=dict,
        description="Column -> type name (as for cast); needed for null, else inferred (int64, float64...).",
    )

    _scalars = field_validator("columns", mode="before")(_scalars)

    @model_validator(mode="after")
    def _values(self) -> Constant:
        if unknown := sorted(set(self.types) - set(self.columns)):
            raise ValueError(f"types for columns that get no value: {unknown}")
        for column, value in self.columns.items():
            if value is None and column not in self.types:
                raise ValueError(f"{column}: a null constant needs a type in `types`")
            self._literal(column)  # the value converts to its type
        return self

    def _literal(self, column: str) -> pl.Expr:
        dtype = parse_dtype(self.types[column]) if column in self.types else None
        try:
            return literal(self.columns[column], dtype)
        except pl.exceptions.PolarsError as exc:
            raise ValueError(
                f"{column}: {self.columns[column]!r} does not convert to {self.types[column]}"
            ) from exc

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        return frame.with_columns(self._literal(c).alias(c) for c in self.columns)

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {c: made_from([], Kind.DERIVED) for c in self.columns}


@register
class FillNull(Op):
    name: ClassVar[str] = "fill_null"
    category: ClassVar[str] = "columns"
    description: ClassVar[str] = (
        "Replace nulls: a value per column, or a strategy (forward, backward, mean, zero, min, max)."
    )
    example: ClassVar[str] = "fill_null: {values: {city: unknown}}"
    values: dict[str, Scalar] = Field(
        default_factory=dict,
        description="Column -> the value that replaces its nulls (converted to the column's type).",
    )
    columns: Columns = Field(default_factory=list, description="Columns to fill with `strategy`.")
    strategy: Literal["forward", "backward", "mean", "zero", "min", "max"] | None = Field(
        None,
        description="From the previous/next row, the column's mean (rounded for integers)/min/max, or zero.",
    )

    _scalars = field_validator("values", mode="before")(_scalars)

    @model_validator(mode="after")
    def _one(self) -> FillNull:
        if bool(self.values) == bool(self.strategy):
            raise ValueError("give either values, or columns with a strategy")
        if self.strategy and not self.columns:
            raise ValueError("a strategy needs the columns to fill")
        if self.values and self.columns:
            raise ValueError("columns go with a strategy; with values, name the columns in values")
        if none := sorted(c for c, v in self.values.items() if v is None):
            raise ValueError(f"null is not a value to fill with: {none}")
        _distinct(self.columns)
        return self

    def _value(self, column: str, dtype: pl.DataType) -> pl.Expr:
        try:
            return literal(self.values[column], dtype)
        except pl.exceptions.PolarsError as exc:
            raise pl.exceptions.InvalidOperationError(
                f"fill_null: {self.values[column]!r} does not convert to {column}'s type {dtype}"
            ) from exc

    def _filled(self, column: str, dtype: pl.DataType) -> pl.Expr:
        numeric = dtype.is_numeric()
        if self.strategy == "zero" and not numeric:
            raise pl.exceptions.InvalidOperationError(
                f"fill_null: zero needs a number column; {column} is {dtype}"
            )
        if self.strategy == "mean" and not (numeric or dtype.is_temporal()):
            raise pl.exceptions.InvalidOperationError(
                f"fill_null: mean needs a number or date; {column} is {dtype}"
            )
        if self.strategy == "mean" and dtype.is_integer():
            return pl.col(column).fill_null(pl.col(column).mean().round().cast(dtype))
        return pl.col(column).fill_null(strategy=self.strategy)

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        schema = frame.collect_schema()
        if self.values:
            return frame.with_columns(pl.col(c).fill_null(self._value(c, schema[c])) for c in self.values)
        return frame.with_columns(self._filled(c, schema[c]) for c in self.columns)

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        if self.values:
            return {c: made_from([c], Kind.CALCULATION) for c in self.values}
        kind = Kind.CALCULATION if self.strategy == "zero" else Kind.AGGREGATION  # uses other rows
        return {c: made_from([c], kind) for c in self.columns}
