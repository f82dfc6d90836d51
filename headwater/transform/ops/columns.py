"""Column ops: choose, rename, retype, compute and fill columns."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import polars as pl
from pydantic import Field, field_validator, model_validator

from headwater.transform.expressions import parse_dtype, parse_expr
from headwater.transform.lineage import Kind, Lineage, direct, made_from
from headwater.transform.registry import Op, OpContext, register

Columns = list[str]


@register
class Select(Op):
    name: ClassVar[str] = "select"
    category: ClassVar[str] = "columns"
    description: ClassVar[str] = "Keep only these columns, in this order."
    example: ClassVar[str] = "select: [carrier, flights]"
    shorthand: ClassVar[str | None] = "columns"
    columns: Columns = Field(..., min_length=1, description="Columns to keep, in the order wanted.")

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        return frame.select(self.columns)


@register
class Drop(Op):
    name: ClassVar[str] = "drop"
    category: ClassVar[str] = "columns"
    description: ClassVar[str] = "Remove these columns."
    example: ClassVar[str] = "drop: [tailnum]"
    shorthand: ClassVar[str | None] = "columns"
    columns: Columns = Field(..., min_length=1, description="Columns to remove; each must exist.")

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
        dtype = parse_dtype(self.columns[column])
        if source_type == pl.String and (dtype == pl.Date or isinstance(dtype, pl.Datetime)):
            zone = dtype.time_zone if isinstance(dtype, pl.Datetime) else None
            return pl.col(column).str.to_datetime(time_zone=zone, strict=self.strict).cast(dtype)
        return pl.col(column).cast(dtype, strict=self.strict)

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
    description: ClassVar[str] = "Add or replace columns computed by SQL expressions."
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
        out = {}
        for col, text in self.columns.items():
            roots = parse_expr(text).meta.root_names()
            out[col] = made_from(roots, Kind.CALCULATION if roots else Kind.DERIVED)
        return out


@register
class FillNull(Op):
    name: ClassVar[str] = "fill_null"
    category: ClassVar[str] = "columns"
    description: ClassVar[str] = (
        "Replace nulls: a value per column, or a strategy (forward, backward, mean, zero)."
    )
    example: ClassVar[str] = "fill_null: {values: {city: unknown}}"
    values: dict[str, Any] = Field(
        default_factory=dict, description="Column -> the value that replaces its nulls."
    )
    columns: Columns = Field(default_factory=list, description="Columns to fill with `strategy`.")
    strategy: Literal["forward", "backward", "mean", "zero", "min", "max"] | None = Field(
        None, description="How to fill: from the previous/next row, the column's mean/min/max, or zero."
    )

    @model_validator(mode="after")
    def _one(self) -> FillNull:
        if bool(self.values) == bool(self.strategy):
            raise ValueError("give either values, or columns with a strategy")
        if self.strategy and not self.columns:
            raise ValueError("a strategy needs the columns to fill")
        return self

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        if self.values:
            return frame.with_columns(pl.col(c).fill_null(pl.lit(v)) for c, v in self.values.items())
        return frame.with_columns(pl.col(c).fill_null(strategy=self.strategy) for c in self.columns)

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        if self.values:
            return {c: made_from([c], Kind.CALCULATION) for c in self.values}
        kind = Kind.CALCULATION if self.strategy == "zero" else Kind.AGGREGATION  # uses other rows
        return {c: made_from([c], kind) for c in self.columns}
