"""Headwater's own expectations (no GX class): referential integrity, freshness, row conditions.
Each has a GX equivalent the conformance tests compare with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import polars as pl
from pydantic import Field, field_validator

from headwater.errors import PermanentError
from headwater.quality.expectations_base import (
    AggregateExpectation,
    ColumnMap,
    MapExpectation,
    QualityContext,
    register,
)
from headwater.transform.expressions import parse_expr


@register
class InTable(ColumnMap):
    """Referential integrity: every non-null value of `column` appears in `table_column` of the
    frame QualityContext.tables[table] (a step's output or a warehouse table the caller loaded).
    Nulls in either table are ignored. GX equivalent: expect_column_values_to_be_in_set with the
    other table's distinct values."""

    type: ClassVar[str] = "expect_column_values_to_be_in_table"
    description: ClassVar[str] = "values appear in table_column of table (referential integrity)"
    table: str = Field(min_length=1)
    table_column: str = Field(min_length=1)

    def references(self) -> list[str]:
        return [self.table]

    def keys(self, schema: pl.Schema, ctx: QualityContext) -> pl.Series:
        other = ctx.tables.get(self.table)
        if other is None:
            raise PermanentError(
                f"{self.type} on {self.column!r} reads table {self.table!r}, which the quality context "
                f"does not have (it has: {', '.join(sorted(ctx.tables)) or 'none'})",
                hint=f"pass QualityContext(tables={{{self.table!r}: frame}}) (a step: list it in depends_on)",
            )
        if self.table_column not in other.columns:
            raise PermanentError(
                f"{self.type}: table {self.table!r} has no column {self.table_column!r}",
                hint=f"use one of: {', '.join(other.columns)}",
            )
        keys = other.get_column(self.table_column).drop_nulls().unique()
        dtype = schema.get(self.column)
        if dtype is not None and keys.dtype != dtype:
            try:
                keys = keys.cast(dtype, strict=True)
            except pl.exceptions.PolarsError:
                raise PermanentError(
                    f"{self.type}: {self.column!r} is {dtype} but {self.table}.{self.table_column} is "
                    f"{keys.dtype}, and its values do not convert",
                    hint="cast one of the columns so both hold the same kind of key",
                ) from None
        return keys

    def failing(self, schema: pl.Schema, ctx: QualityContext) -> pl.Expr:
        col = pl.col(self.column)
        return pl.when(col.is_not_null()).then(
            ~col.is_in(self.keys(schema, ctx).implode(), nulls_equal=False)
        )


@register
class MaxToBeRecent(AggregateExpectation):
    """Freshness: the column's latest value is at most max_age_hours before QualityContext.now (a
    later value passes too). `now` is never the wall clock: the caller passes the run's time, and
    evaluating without one is an error. Naive timestamps (column or now) are taken as UTC; a date
    column counts from its midnight. Observed: {max, cutoff, recent}; an empty or all-null column
    fails. GX equivalent: expect_column_max_to_be_between with min_value = now - max_age_hours."""

    type: ClassVar[str] = "expect_column_max_to_be_recent"
    description: ClassVar[str] = "the latest value is at most max_age_hours older than the run"
    column: str
    max_age_hours: float = Field(gt=0, description="How old the newest value may be, in hours.")

    def cutoff(self, now: Any) -> datetime:
        if now is None:
            raise PermanentError(
                f"{self.type} on {self.column!r} needs the evaluation time, and QualityContext.now is None",
                hint="pass QualityContext(now=<the run's start time>)",
            )
        if not isinstance(now, datetime):
            raise PermanentError(f"{self.type}: QualityContext.now must be a datetime, not {now!r}")
        now = now.replace(tzinfo=UTC) if now.tzinfo is None else now
        return now - timedelta(hours=self.max_age_hours)

    def observe(self, schema: pl.Schema, ctx: QualityContext) -> pl.Expr:
        cutoff = self.cutoff(ctx.now)
        dtype = schema.get(self.column)
        col = pl.col(self.column)
        if dtype == pl.Date:
            latest = col.max().cast(pl.Datetime("us"))
            bound = pl.lit(cutoff.astimezone(UTC).replace(tzinfo=None))
        elif isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
            latest = col.max()
            bound = pl.lit(cutoff.astimezone(UTC).replace(tzinfo=None)).cast(dtype)
        elif isinstance(dtype, pl.Datetime):
            latest = col.max()
            bound = pl.lit(cutoff.astimezone(UTC)).cast(pl.Datetime(dtype.time_unit, "UTC"))
            bound = bound.dt.convert_time_zone(dtype.time_zone or "UTC")
        else:
            raise PermanentError(
                f"{self.type}: column {self.column!r} is {dtype}, not a date or timestamp",
                hint="parse the column into a datetime first (parse_dates / cast)",
            )
        return pl.struct(latest.alias("max"), bound.alias("cutoff"), (latest >= bound).alias("recent"))

    def check(self, observed: Any) -> bool:
        return bool(observed and observed.get("recent"))


@register
class RowCondition(MapExpectation):
    """A SQL boolean expression each row must satisfy, parsed once with Polars' SQL expression
    parser (never sent to a database, never concatenated into SQL): rows where it is false fail.
    A row where it is NULL (it reads a missing value) is not considered, as GX skips missing values
    and as SQL CHECK constraints let NULL pass: write `coalesce(<condition>, false)` to fail those
    rows. A condition with ';' or that does not parse is rejected when the suite loads."""

    type: ClassVar[str] = "expect_row_condition"
    description: ClassVar[str] = "every row satisfies a SQL boolean condition (NULL: not considered)"
    condition: str

    @field_validator("condition")
    @classmethod
    def _parses(cls, condition: str) -> str:
        parse_expr(condition)  # ValueError naming the problem (';', syntax)
        return condition

    def expression(self) -> pl.Expr:
        return parse_expr(self.condition)

    def columns(self) -> list[str]:
        return self.expression().meta.root_names()

    def considered(self) -> pl.Expr:
        return self.expression().is_not_null()

    def failing(self, schema: pl.Schema, ctx: QualityContext) -> pl.Expr:
        expr = self.expression()
        try:
            dtype = pl.LazyFrame(schema=schema).select(expr).collect_schema().dtypes()[0]
        except pl.exceptions.PolarsError as exc:
            raise PermanentError(
                f"{self.type}: condition {self.condition!r} does not apply to this frame: "
                f"{str(exc).splitlines()[0]}",
                hint=f"the frame has columns: {', '.join(schema.names())}",
            ) from None
        if dtype not in (pl.Boolean, pl.Null):
            raise PermanentError(
                f"{self.type}: condition {self.condition!r} gives {dtype}, not true/false",
                hint="write a comparison, e.g. dep_delay <= 120",
            )
        return pl.when(expr.is_not_null()).then(~expr)
