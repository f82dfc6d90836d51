"""Aggregate expectations: one value observed for the whole table, then checked."""

from __future__ import annotations

from typing import Any, ClassVar

import polars as pl
from pydantic import model_validator

from headwater.quality.expectations_base import (
    AggregateExpectation,
    QualityContext,
    between,
    check_bounds,
    register,
)


@register
class RowCountBetween(AggregateExpectation):
    type: ClassVar[str] = "expect_table_row_count_to_be_between"
    description: ClassVar[str] = "the table has between min_value and max_value rows"
    min_value: int | None = None
    max_value: int | None = None

    @model_validator(mode="after")
    def _bounds(self) -> RowCountBetween:
        check_bounds(self.min_value, self.max_value, floor=0)
        return self

    def observe(self, schema: pl.Schema, ctx: QualityContext) -> pl.Expr:
        return pl.len()

    def check(self, observed: Any) -> bool:
        return between(observed, self.min_value, self.max_value)


@register
class TableColumnsMatchSet(AggregateExpectation):
    """Observed: the frame's column names, sorted. Names compare case-sensitively (GX's pandas
    backend; its SQL backends ignore case). exact_match false (or null) allows extra columns."""

    type: ClassVar[str] = "expect_table_columns_to_match_set"
    description: ClassVar[str] = "the table's columns are column_set (exact_match false: at least those)"
    column_set: list[str]
    exact_match: bool | None = True

    def observe(self, schema: pl.Schema, ctx: QualityContext) -> pl.Expr:
        names = sorted(schema.names())
        return pl.lit(pl.Series("columns", [names], dtype=pl.List(pl.String)))

    def check(self, observed: Any) -> bool:
        actual, expected = set(observed or ()), set(self.column_set)
        if actual == expected:
            return True
        return not self.exact_match and expected <= actual


class ColumnStatBetween(AggregateExpectation):
    column: str
    min_value: Any = None
    max_value: Any = None
    strict_min: bool = False
    strict_max: bool = False
    stat: ClassVar[str]
    floor: ClassVar[float | None] = None

    @model_validator(mode="after")
    def _bounds(self) -> ColumnStatBetween:
        check_bounds(self.min_value, self.max_value, self.strict_min, self.strict_max, floor=self.floor)
        return self

    def observe(self, schema: pl.Schema, ctx: QualityContext) -> pl.Expr:
        col = pl.col(self.column)
        return getattr(col, self.stat)()

    def check(self, observed: Any) -> bool:
        return between(observed, self.min_value, self.max_value, self.strict_min, self.strict_max)


@register
class MeanBetween(ColumnStatBetween):
    type: ClassVar[str] = "expect_column_mean_to_be_between"
    description: ClassVar[str] = "the column mean lies between min_value and max_value"
    stat: ClassVar[str] = "mean"


@register
class MinBetween(ColumnStatBetween):
    type: ClassVar[str] = "expect_column_min_to_be_between"
    description: ClassVar[str] = "the column minimum lies between min_value and max_value"
    stat: ClassVar[str] = "min"


@register
class MaxBetween(ColumnStatBetween):
    type: ClassVar[str] = "expect_column_max_to_be_between"
    description: ClassVar[str] = "the column maximum lies between min_value and max_value"
    stat: ClassVar[str] = "max"


@register
class MedianBetween(ColumnStatBetween):
    """The median of the non-missing values; an even count averages the middle two (pandas)."""

    type: ClassVar[str] = "expect_column_median_to_be_between"
    description: ClassVar[str] = "the column median lies between min_value and max_value"
    stat: ClassVar[str] = "median"


@register
class StdevBetween(ColumnStatBetween):
    """The sample standard deviation (ddof=1, as pandas): fewer than two values give no stdev,
    observed null, and the rule fails."""

    type: ClassVar[str] = "expect_column_stdev_to_be_between"
    description: ClassVar[str] = "the column's sample standard deviation lies between min_value and max_value"
    stat: ClassVar[str] = "std"
    floor: ClassVar[float | None] = 0.0


@register
class ProportionOfUniqueBetween(ColumnStatBetween):
    """Distinct non-missing values / non-missing values; 0 (not null) when every value is missing or
    the table is empty, as GX reports it."""

    type: ClassVar[str] = "expect_column_proportion_of_unique_values_to_be_between"
    description: ClassVar[str] = (
        "distinct values / non-null values (0 on an empty column) lies between min_value and max_value"
    )
    floor: ClassVar[float | None] = 0.0
    min_value: float | None = None
    max_value: float | None = None

    @model_validator(mode="after")
    def _at_most_one(self) -> ProportionOfUniqueBetween:
        if self.min_value is not None and (self.min_value > 1 or (self.strict_min and self.min_value == 1)):
            raise ValueError(f"min_value {self.min_value!r} is above 1, the largest possible proportion")
        return self

    def observe(self, schema: pl.Schema, ctx: QualityContext) -> pl.Expr:
        col = pl.col(self.column)
        count = col.count()
        return pl.when(count > 0).then(col.drop_nulls().n_unique() / count).otherwise(pl.lit(0.0))
