"""Aggregations over groups of rows."""

from __future__ import annotations

from typing import ClassVar, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from headwater.transform.lineage import ALL_ROWS, Kind, Lineage, made_from
from headwater.transform.ops.numbers import FLOAT_SCALE, Arithmetic, as_decimal, decimal_ulp, round_decimal
from headwater.transform.registry import Op, OpContext, register

Columns = list[str]


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


_NUMBER_FNS = ("sum", "mean", "median", "std")
"""Functions that need numbers (or booleans: a sum counts the trues, a mean is the share of them)."""
_DECIMAL_FNS = ("sum", "mean", "min", "max", "first", "last")


class Aggregation(BaseModel):
    """One output column of an aggregate: fn over column, optionally rounded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fn: Literal[
        "count", "count_null", "count_distinct", "sum", "mean", "median", "min", "max", "std", "first", "last"
    ] = Field(..., description="The function; first/last take the first/last non-null value, in row order.")
    column: str | None = Field(None, description="The column aggregated (count without it counts rows).")
    round: int | None = Field(
        None,
        ge=0,
        le=15,
        description="Round the result to this many decimals (float arithmetic: ties to even, on the binary "
        "value; decimal: ties away from zero, exactly).",
    )
    arithmetic: Arithmetic = Field(
        "float",
        description="float (measurements), or decimal (money: exact sums and ties; needs round; sum, mean, "
        "min, max, first, last). The result is Decimal(38, round).",
    )

    @model_validator(mode="after")
    def _column(self) -> Aggregation:
        if self.fn != "count" and self.column is None:
            raise ValueError(f"{self.fn} needs a column")
        if self.arithmetic == "decimal":
            if self.fn not in _DECIMAL_FNS:
                raise ValueError(f"decimal arithmetic works with {', '.join(_DECIMAL_FNS)}, not {self.fn}")
            if self.round is None:
                raise ValueError("decimal arithmetic needs round: the decimal places of the result")
        return self

    def check(self, output: str, schema: pl.Schema) -> None:
        """Fail from the schema alone, naming the output, the function, the column and the fix."""
        if self.column is None or self.fn in ("count", "count_null", "count_distinct"):
            return
        if self.column not in schema:
            raise pl.exceptions.ColumnNotFoundError(
                f'unable to find column "{self.column}"; valid columns: {list(schema)}'
            )
        dtype = schema[self.column]
        if dtype.is_numeric() or dtype == pl.Null:
            return
        cast = "cast it to a number first (the cast op)"
        if self.arithmetic == "decimal":
            needs, fix = f"{self.fn} in decimal arithmetic", cast
        elif self.fn in _NUMBER_FNS and dtype != pl.Boolean:
            needs, fix = self.fn, f"{cast}, or use count, min, max, first or last"
        elif self.round is not None and self.fn not in _NUMBER_FNS:
            needs, fix = f"{self.fn} with round", f"{cast}, or leave out round"
        else:
            return
        raise pl.exceptions.SchemaError(
            f"aggregate {output}: {needs} needs a numeric column, but {self.column} is {dtype}: {fix}"
        )

    def expr(self, output: str, schema: pl.Schema) -> pl.Expr:
        """The aggregation, named output, over a frame of this schema (checked by `check`)."""
        dtype = schema.get(self.column) if self.column else None
        if self.arithmetic == "decimal" and self.column and dtype is not None and self.round is not None:
            return self._decimal(self.column, dtype, self.round).alias(output)
        if self.column is None:  # count rows
            e = pl.len()
        else:
            col = pl.col(self.column)
            if dtype == pl.Null and (self.fn in _NUMBER_FNS or self.round is not None):
                col = col.cast(pl.Float64)  # all null (e.g. an empty source): a null number, as in SQL
            match self.fn:
                case "count":
                    e = col.count()
                case "count_null":
                    e = col.null_count()
                case "count_distinct":
                    e = col.drop_nulls().n_unique()
                case "first" | "last":
                    e = getattr(col, self.fn)(ignore_nulls=True)
                case "sum":  # as in SQL: no values is null, not 0
                    e = pl.when(col.count() > 0).then(col.sum())
                case _:
                    e = getattr(col, self.fn)()
        if self.round is not None:
            e = e.round(self.round)
        return e.alias(output)

    def _decimal(self, column: str, dtype: pl.DataType, decimals: int) -> pl.Expr:
        """In Decimal: sum exact; mean = the sum over the count, truncated at a scale past `decimals`
        (so rounding it is rounding the exact quotient); every result rounded half away from zero."""
        value, scale = as_decimal(column, dtype, decimals + 1 if self.fn == "mean" else 0)
        count = value.count()
        match self.fn:
            case "sum":
                e = pl.when(count > 0).then(value.sum())
            case "mean":
                total = value.sum()
                n = pl.max_horizontal(count, 1).cast(pl.Decimal(38, 0))  # no division by zero
                quotient = total / n  # Polars rounds it to the nearest step of the scale...
                over = (quotient * n).abs() > total.abs()  # ...so step back towards zero if it went past
                step = pl.when(total > 0).then(decimal_ulp(scale)).otherwise(-decimal_ulp(scale))
                e = pl.when(count > 0).then(pl.when(over).then(quotient - step).otherwise(quotient))
            case "first" | "last":
                e = getattr(value, self.fn)(ignore_nulls=True)
            case _:
                e = getattr(value, self.fn)()
        return round_decimal(e, scale, decimals, "half_away_from_zero")


@register
class Aggregate(Op):
    name: ClassVar[str] = "aggregate"
    category: ClassVar[str] = "aggregate"
    description: ClassVar[str] = (
        f"Group by and aggregate ({', '.join(_AGG_FNS)}), ignoring nulls; arithmetic: decimal for money."
    )
    example: ClassVar[str] = (
        "aggregate: {by: [account], aggs: {rows: {fn: count}, "
        "total: {fn: sum, column: amount, round: 2, arithmetic: decimal}}}"
    )
    by: Columns = Field(..., min_length=1, description="Group-by columns.")
    aggs: dict[str, Aggregation] = Field(
        ...,
        min_length=1,
        description="Output column -> {fn, column, round, arithmetic}. round: decimals of the result "
        "(float arithmetic rounds the binary value, ties to even). arithmetic: float (default; "
        "measurements) or decimal (money, and any value whose exact decimal ties matter; with sum, mean, "
        "min, max, first, last, and needs round): each value is read as the digits it prints as "
        f"(floats to {FLOAT_SCALE} places, below 1e20: 1.005 is 1.005), sums are exact, a mean is the "
        "exact sum over the count, and the result is rounded half away from zero (1.005 -> 1.01, as "
        "accountants and Excel) to a Decimal(38, round). An all-null (Null-typed) column aggregates to "
        "null, as in SQL.",
    )

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        schema = frame.collect_schema()
        for name, agg in self.aggs.items():
            agg.check(name, schema)
        return frame.group_by(self.by, maintain_order=True).agg(
            a.expr(n, schema) for n, a in self.aggs.items()
        )

    def row_inputs(self) -> list[str]:
        return list(self.by)

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {
            name: made_from([agg.column or ALL_ROWS], Kind.AGGREGATION) for name, agg in self.aggs.items()
        }


def _over(
    e: pl.Expr, partition_by: Columns, order_by: Columns | None = None, descending: bool = False
) -> pl.Expr:
    """`e` within partitions (and in an order: nulls last, ties in input order); the whole frame if none."""
    if not partition_by and not order_by:
        return e
    return e.over(partition_by or None, order_by=order_by or None, descending=descending, nulls_last=True)


def _all_present(columns: Columns) -> pl.Expr:
    return pl.all_horizontal(pl.col(c).is_not_null() for c in columns)


class WindowAgg(BaseModel):
    """One output column of a window: fn over column."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fn: Literal["sum", "mean", "min", "max", "count"] = Field(
        ..., description="The function (nulls ignored)."
    )
    column: str | None = Field(None, description="The column aggregated (count without it counts rows).")

    @model_validator(mode="after")
    def _column(self) -> WindowAgg:
        if self.fn != "count" and self.column is None:
            raise ValueError(f"{self.fn} needs a column")
        return self

    def expr(self, rows: int | None) -> pl.Expr:
        if self.column is None:
            return (
                pl.len()
                if rows is None
                else pl.min_horizontal(pl.int_range(1, pl.len() + 1), rows).cast(pl.UInt32)
            )
        col = pl.col(self.column)
        if self.fn == "count":
            return (
                col.count()
                if rows is None
                else col.is_not_null().cast(pl.UInt32).rolling_sum(rows, min_samples=1)
            )
        if rows is None:
            return pl.when(col.count() > 0).then(col.sum()) if self.fn == "sum" else getattr(col, self.fn)()
        return getattr(col, f"rolling_{self.fn}")(rows, min_samples=1)


@register
class Window(Op):
    name: ClassVar[str] = "window"
    category: ClassVar[str] = "aggregate"
    description: ClassVar[str] = (
        "Aggregate over partitions without collapsing rows: the whole partition, or a rolling frame of rows."
    )
    example: ClassVar[str] = (
        "window: {partition_by: [carrier], order_by: [flight_date], rows: 7, "
        "aggs: {delay_7d: {fn: mean, column: dep_delay}}}"
    )
    partition_by: Columns = Field(default_factory=list, description="Partition columns (none: all rows).")
    order_by: Columns = Field(
        default_factory=list, description="Order of the rolling frame (nulls last, ties in input order)."
    )
    rows: int | None = Field(
        None, ge=1, description="Rolling frame: the row and the rows-1 before it (needs order_by)."
    )
    aggs: dict[str, WindowAgg] = Field(
        ..., min_length=1, description="New column -> {fn: sum|mean|min|max|count, column}."
    )

    @model_validator(mode="after")
    def _frame(self) -> Window:
        if bool(self.order_by) != (self.rows is not None):
            raise ValueError("order_by and rows go together: the frame is the last `rows` rows in that order")
        return self

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        return frame.with_columns(
            _over(a.expr(self.rows), self.partition_by, self.order_by).alias(n) for n, a in self.aggs.items()
        )

    def row_inputs(self) -> list[str]:
        return [*self.partition_by, *self.order_by]

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {n: made_from([a.column or ALL_ROWS], Kind.AGGREGATION) for n, a in self.aggs.items()}


@register
class Rank(Op):
    name: ClassVar[str] = "rank"
    category: ClassVar[str] = "aggregate"
    description: ClassVar[str] = "Rank rows within partitions by order columns (dense, ordinal, min or max)."
    example: ClassVar[str] = (
        "rank: {by: [dep_delay], partition_by: [carrier], descending: true, as: delay_rank}"
    )
    by: Columns = Field(..., min_length=1, description="Columns ranked on, most significant first.")
    partition_by: Columns = Field(
        default_factory=list, description="Rank within these groups (none: all rows)."
    )
    method: Literal["dense", "ordinal", "min", "max"] = Field(
        "min",
        description="Ties: min (SQL RANK: 1,1,3), dense (1,1,2), max (2,2,3), ordinal (1,2,3, input order).",
    )
    descending: bool = Field(False, description="Rank 1 is the largest.")
    output: str = Field(..., alias="as", description="New column; null where an order value is null.")

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        key = (
            pl.col(self.by[0])
            if len(self.by) == 1
            else pl.when(_all_present(self.by)).then(pl.struct(self.by))
        )
        rank = key.rank(self.method, descending=self.descending)
        return frame.with_columns(_over(rank, self.partition_by).alias(self.output))

    def row_inputs(self) -> list[str]:
        return list(self.partition_by)

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {self.output: made_from(self.by, Kind.AGGREGATION)}


@register
class RunningTotal(Op):
    name: ClassVar[str] = "running_total"
    category: ClassVar[str] = "aggregate"
    description: ClassVar[str] = (
        "Cumulative sum of a column within partitions, in the order of other columns."
    )
    example: ClassVar[str] = (
        "running_total: {column: amount, partition_by: [account], order_by: [booked_at], as: balance}"
    )
    column: str = Field(..., description="The numeric column summed (nulls add nothing).")
    order_by: Columns = Field(
        ..., min_length=1, description="Order of accumulation (nulls last, ties in input order)."
    )
    partition_by: Columns = Field(default_factory=list, description="Restart the total in each group.")
    output: str = Field(..., alias="as", description="New column; null until the first non-null value.")

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        col = pl.col(self.column)
        total = pl.when(col.is_not_null().cum_sum() > 0).then(col.fill_null(0).cum_sum())
        return frame.with_columns(_over(total, self.partition_by, self.order_by).alias(self.output))

    def row_inputs(self) -> list[str]:
        return [*self.partition_by, *self.order_by]

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {self.output: made_from([self.column], Kind.AGGREGATION)}


@register
class TopN(Op):
    name: ClassVar[str] = "top_n"
    category: ClassVar[str] = "aggregate"
    description: ClassVar[str] = "Keep the n rows of each group that come first by an order (largest first)."
    example: ClassVar[str] = "top_n: {n: 3, by: [carrier], order_by: dep_delay}"
    n: int = Field(..., ge=1, description="Rows kept per group.")
    by: Columns = Field(default_factory=list, description="Groups (none: the whole frame).")
    order_by: str = Field(..., description="Column ordering the rows; nulls come last.")
    descending: bool = Field(True, description="Largest first; false: smallest first.")
    ties: Literal["first", "all"] = Field(
        "first", description="At the n-th place: first keeps exactly n (input order), all keeps every tie."
    )

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        col = pl.col(self.order_by)
        if self.ties == "first":
            place = _over(pl.int_range(1, pl.len() + 1), self.by, [self.order_by], self.descending)
        else:  # rank as in SQL RANK; the nulls share the place after the last value
            place = _over(
                pl.when(col.is_null())
                .then(col.count() + 1)
                .otherwise(col.rank("min", descending=self.descending)),
                self.by,
            )
        return frame.filter(place <= self.n)

    def row_inputs(self) -> list[str]:
        return [*self.by, self.order_by]
