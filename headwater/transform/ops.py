"""The first ops: enough for a real pipeline. Each is an expression over a LazyFrame; none loops over rows."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import polars as pl
from pydantic import Field, field_validator, model_validator

from headwater.transform.expressions import parse_dtype, parse_expr
from headwater.transform.lineage import ALL_ROWS, ColumnLineage, Kind, Lineage, direct, made_from
from headwater.transform.registry import Op, OpContext, register

Columns = list[str]


@register
class Select(Op):
    name: ClassVar[str] = "select"
    category: ClassVar[str] = "columns"
    description: ClassVar[str] = "Keep only these columns, in this order."
    example: ClassVar[str] = "select: [carrier, flights]"
    shorthand: ClassVar[str | None] = "columns"
    columns: Columns = Field(..., min_length=1)

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        return frame.select(self.columns)


@register
class Drop(Op):
    name: ClassVar[str] = "drop"
    category: ClassVar[str] = "columns"
    description: ClassVar[str] = "Remove these columns."
    example: ClassVar[str] = "drop: [tailnum]"
    shorthand: ClassVar[str | None] = "columns"
    columns: Columns = Field(..., min_length=1)

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        return frame.drop(self.columns, strict=True)


@register
class Rename(Op):
    name: ClassVar[str] = "rename"
    category: ClassVar[str] = "columns"
    description: ClassVar[str] = "Rename columns: old name -> new name."
    example: ClassVar[str] = "rename: {name: carrier_name}"
    shorthand: ClassVar[str | None] = "mapping"
    mapping: dict[str, str] = Field(..., min_length=1)

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
    columns: dict[str, str] = Field(..., min_length=1)
    strict: bool = True

    @field_validator("columns")
    @classmethod
    def _types(cls, v: dict[str, str]) -> dict[str, str]:
        for t in v.values():
            parse_dtype(t)
        return v

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        exprs = []
        for col, type_name in self.columns.items():
            dtype = parse_dtype(type_name)
            source = pl.col(col)
            if dtype in (pl.Date,) or isinstance(dtype, pl.Datetime):
                schema_type = frame.collect_schema()[col]
                if schema_type == pl.String:
                    exprs.append(
                        source.str.to_datetime(
                            time_zone=getattr(dtype, "time_zone", None), strict=self.strict
                        ).cast(dtype)
                    )
                    continue
            exprs.append(source.cast(dtype, strict=self.strict))
        return frame.with_columns(exprs)

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {c: made_from([c], Kind.CALCULATION) for c in self.columns}


@register
class Filter(Op):
    name: ClassVar[str] = "filter"
    category: ClassVar[str] = "rows"
    description: ClassVar[str] = "Keep the rows where a SQL boolean expression is true."
    example: ClassVar[str] = "filter: \"dep_delay > 15 AND origin = 'JFK'\""
    shorthand: ClassVar[str | None] = "where"
    where: str

    @field_validator("where")
    @classmethod
    def _parses(cls, v: str) -> str:
        parse_expr(v)
        return v

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        return frame.filter(parse_expr(self.where))

    def row_inputs(self) -> list[str]:
        return parse_expr(self.where).meta.root_names()


@register
class Derive(Op):
    name: ClassVar[str] = "derive"
    category: ClassVar[str] = "columns"
    description: ClassVar[str] = "Add or replace columns computed by SQL expressions."
    example: ClassVar[str] = 'derive: {gain: "dep_delay - arr_delay"}'
    shorthand: ClassVar[str | None] = "columns"
    columns: dict[str, str] = Field(..., min_length=1)

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
class MakeDate(Op):
    name: ClassVar[str] = "make_date"
    category: ClassVar[str] = "dates"
    description: ClassVar[str] = "Build a date column from year, month and day columns."
    example: ClassVar[str] = "make_date: {year: year, month: month, day: day, as: flight_date}"
    year: str
    month: str
    day: str
    output: str = Field(..., alias="as")

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        return frame.with_columns(
            pl.date(pl.col(self.year), pl.col(self.month), pl.col(self.day)).alias(self.output)
        )

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {self.output: made_from([self.year, self.month, self.day], Kind.CALCULATION)}


@register
class FillNull(Op):
    name: ClassVar[str] = "fill_null"
    category: ClassVar[str] = "columns"
    description: ClassVar[str] = (
        "Replace nulls: a value per column, or a strategy (forward, backward, mean, zero)."
    )
    example: ClassVar[str] = "fill_null: {values: {city: unknown}}"
    values: dict[str, Any] = Field(default_factory=dict)
    columns: Columns = Field(default_factory=list)
    strategy: Literal["forward", "backward", "mean", "zero", "min", "max"] | None = None

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


@register
class Dedupe(Op):
    name: ClassVar[str] = "dedupe"
    category: ClassVar[str] = "rows"
    description: ClassVar[str] = (
        "Keep one row per key: the first or last by an order, or drop all duplicates."
    )
    example: ClassVar[str] = "dedupe: {key: [vendor_id], order_by: [updated_at], keep: last}"
    key: Columns = Field(..., min_length=1)
    keep: Literal["first", "last", "none"] = "last"
    order_by: Columns = Field(default_factory=list)
    descending: bool = False

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        if self.order_by:
            frame = frame.sort(
                self.order_by, descending=self.descending, nulls_last=True, maintain_order=True
            )
        return frame.unique(subset=self.key, keep=self.keep, maintain_order=True)

    def row_inputs(self) -> list[str]:
        return [*self.key, *self.order_by]


@register
class Join(Op):
    name: ClassVar[str] = "join"
    category: ClassVar[str] = "combine"
    description: ClassVar[str] = "Join another step's output (inner, left, full, semi, anti) on key columns."
    example: ClassVar[str] = "join: {with: extract_airlines, on: [carrier], how: left, select: [name]}"
    with_: str = Field(..., alias="with")
    on: Columns = Field(default_factory=list)
    left_on: Columns = Field(default_factory=list)
    right_on: Columns = Field(default_factory=list)
    how: Literal["inner", "left", "full", "semi", "anti"] = "left"
    select: Columns = Field(default_factory=list, description="Columns to take from the other side.")
    suffix: str = "_right"
    validate_: Literal["m:m", "m:1", "1:1", "1:m"] = Field("m:m", alias="validate")

    @model_validator(mode="after")
    def _keys(self) -> Join:
        if bool(self.on) == bool(self.left_on or self.right_on):
            raise ValueError("give either on, or left_on with right_on")
        if len(self.left_on) != len(self.right_on):
            raise ValueError("left_on and right_on need the same number of columns")
        return self

    def references(self) -> list[str]:
        return [self.with_]

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        other = ctx.frame(self.with_)
        right_keys = self.on or self.right_on
        if self.select:
            other = other.select([*right_keys, *[c for c in self.select if c not in right_keys]])
        kwargs: dict[str, Any] = (
            {"on": self.on} if self.on else {"left_on": self.left_on, "right_on": self.right_on}
        )
        return frame.join(
            other, how=self.how, suffix=self.suffix, validate=self.validate_, coalesce=True, **kwargs
        )

    def row_inputs(self) -> list[str]:
        return list(self.on or self.left_on)

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        """Columns from the other side come by join; with a full join, the keys come from both."""
        other = ctx.frame(self.with_).collect_schema()
        out: Lineage = {}
        for column in self.output_schema(schema, ctx):
            base = column.removesuffix(self.suffix) if column.endswith(self.suffix) else column
            if column not in schema and base in other:
                out[column] = made_from([base], Kind.JOIN, self.with_)
        if self.how == "full":
            for left, right in zip(self.on or self.left_on, self.on or self.right_on, strict=True):
                sources = (
                    made_from([left], Kind.JOIN).sources | made_from([right], Kind.JOIN, self.with_).sources
                )
                out[left] = ColumnLineage(sources, Kind.JOIN)
        return out


_AGG_FNS = (
    "count",
    "count_null",
    "count_distinct",
    "sum",
    "mean",
    "median",
    "min",
    "max",
    "std",
    "first",
    "last",
)


class Aggregation(Op):
    """One output column of an aggregate: fn over column, optionally rounded."""

    fn: Literal[
        "count", "count_null", "count_distinct", "sum", "mean", "median", "min", "max", "std", "first", "last"
    ]
    column: str | None = None
    round: int | None = Field(None, ge=0, le=15)

    @model_validator(mode="after")
    def _column(self) -> Aggregation:
        if self.fn != "count" and self.column is None:
            raise ValueError(f"{self.fn} needs a column")
        return self

    def expr(self, output: str) -> pl.Expr:
        if self.column is None:  # count rows
            e = pl.len()
        else:
            col = pl.col(self.column)
            match self.fn:
                case "count":
                    e = col.count()
                case "count_null":
                    e = col.null_count()
                case "count_distinct":
                    e = col.n_unique()
                case _:
                    e = getattr(col, self.fn)()
        if self.round is not None:
            e = e.round(self.round)
        return e.alias(output)


@register
class Aggregate(Op):
    name: ClassVar[str] = "aggregate"
    category: ClassVar[str] = "aggregate"
    description: ClassVar[str] = f"Group by columns and aggregate ({', '.join(_AGG_FNS)}); nulls are ignored."
    example: ClassVar[str] = "aggregate: {by: [carrier], aggs: {flights: {fn: count}}}"
    by: Columns = Field(..., min_length=1)
    aggs: dict[str, Aggregation] = Field(..., min_length=1)

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        return frame.group_by(self.by, maintain_order=True).agg(a.expr(n) for n, a in self.aggs.items())

    def row_inputs(self) -> list[str]:
        return list(self.by)

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {
            name: made_from([agg.column or ALL_ROWS], Kind.AGGREGATION) for name, agg in self.aggs.items()
        }


@register
class Sort(Op):
    name: ClassVar[str] = "sort"
    category: ClassVar[str] = "rows"
    description: ClassVar[str] = "Sort rows by columns."
    example: ClassVar[str] = "sort: {by: [flight_date, carrier]}"
    shorthand: ClassVar[str | None] = "by"
    by: Columns = Field(..., min_length=1)
    descending: bool = False
    nulls_last: bool = True

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        return frame.sort(
            self.by, descending=self.descending, nulls_last=self.nulls_last, maintain_order=True
        )

    def row_inputs(self) -> list[str]:
        return list(self.by)
