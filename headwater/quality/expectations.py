"""Expectations evaluated on Polars. Each class mirrors one Great Expectations 1.x expectation type
(same name, same kwargs, same semantics: map expectations ignore nulls except not_null, `mostly`
allows a fraction of failures); GX stays the reference and tests/quality proves both agree.

A *map* expectation gives a boolean expression that is true on the rows that fail it, so failing
rows can be quarantined. An *aggregate* expectation observes one value for the whole table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

EXPECTATIONS: dict[str, type[Expectation]] = {}


@dataclass
class QualityContext:
    """What expectations may read besides the frame: other tables' values (referential integrity)
    and the evaluation time (freshness)."""

    tables: Mapping[str, pl.DataFrame] = field(default_factory=dict)
    now: Any = None


class Expectation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: ClassVar[str]
    kind: ClassVar[Literal["map", "aggregate"]]
    description: ClassVar[str]

    def columns(self) -> list[str]:
        cols = [getattr(self, n) for n in ("column", "column_A", "column_B") if getattr(self, n, None)]
        return cols + list(getattr(self, "column_list", None) or [])

    # map expectations
    def failing(self, schema: pl.Schema, ctx: QualityContext) -> pl.Expr:
        """True on the rows that break the expectation (null where the row is not considered)."""
        raise NotImplementedError

    def considered(self) -> pl.Expr:
        """Rows the expectation looks at (GX: non-missing values of its columns)."""
        return (
            pl.all_horizontal(pl.col(c).is_not_null() for c in self.columns())
            if self.columns()
            else pl.lit(True)
        )

    # aggregate expectations
    def observe(self, schema: pl.Schema, ctx: QualityContext) -> pl.Expr:
        raise NotImplementedError

    def check(self, observed: Any) -> bool:
        raise NotImplementedError

    def references(self) -> list[str]:
        return []


def register(cls: type[Expectation]) -> type[Expectation]:
    EXPECTATIONS[cls.type] = cls
    return cls


def between(value: Any, low: Any, high: Any, strict_min: bool = False, strict_max: bool = False) -> bool:
    if value is None:
        return False
    if low is not None and (value <= low if strict_min else value < low):
        return False
    return not (high is not None and (value >= high if strict_max else value > high))


class MapExpectation(Expectation):
    kind: ClassVar[Literal["map", "aggregate"]] = "map"
    mostly: float = Field(1.0, ge=0.0, le=1.0, description="Fraction of considered values that must pass.")


class ColumnMap(MapExpectation):
    column: str


@register
class NotNull(ColumnMap):
    type: ClassVar[str] = "expect_column_values_to_not_be_null"
    description: ClassVar[str] = "values are not null"

    def considered(self) -> pl.Expr:
        return pl.lit(True)

    def failing(self, schema: pl.Schema, ctx: QualityContext) -> pl.Expr:
        return pl.col(self.column).is_null()


@register
class Unique(ColumnMap):
    type: ClassVar[str] = "expect_column_values_to_be_unique"
    description: ClassVar[str] = "values are unique (every row of a repeated value fails)"

    def failing(self, schema: pl.Schema, ctx: QualityContext) -> pl.Expr:
        col = pl.col(self.column)
        return pl.when(col.is_not_null()).then(col.is_duplicated())


@register
class Between(ColumnMap):
    type: ClassVar[str] = "expect_column_values_to_be_between"
    description: ClassVar[str] = "values lie between min_value and max_value"
    min_value: Any = None
    max_value: Any = None
    strict_min: bool = False
    strict_max: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> Between:
        if self.min_value is None and self.max_value is None:
            raise ValueError("give min_value, max_value or both")
        return self

    def failing(self, schema: pl.Schema, ctx: QualityContext) -> pl.Expr:
        col = pl.col(self.column)
        bad = pl.lit(False)
        if self.min_value is not None:
            bad = bad | ((col <= self.min_value) if self.strict_min else (col < self.min_value))
        if self.max_value is not None:
            bad = bad | ((col >= self.max_value) if self.strict_max else (col > self.max_value))
        return pl.when(col.is_not_null()).then(bad)


@register
class InSet(ColumnMap):
    type: ClassVar[str] = "expect_column_values_to_be_in_set"
    description: ClassVar[str] = "values are in value_set"
    value_set: list[Any]

    def failing(self, schema: pl.Schema, ctx: QualityContext) -> pl.Expr:
        col = pl.col(self.column)
        return pl.when(col.is_not_null()).then(
            ~col.is_in(pl.lit(pl.Series(self.value_set)), nulls_equal=False)
        )


@register
class NotInSet(ColumnMap):
    type: ClassVar[str] = "expect_column_values_to_not_be_in_set"
    description: ClassVar[str] = "values are not in value_set"
    value_set: list[Any]

    def failing(self, schema: pl.Schema, ctx: QualityContext) -> pl.Expr:
        col = pl.col(self.column)
        return pl.when(col.is_not_null()).then(
            col.is_in(pl.lit(pl.Series(self.value_set)), nulls_equal=False)
        )


@register
class MatchRegex(ColumnMap):
    type: ClassVar[str] = "expect_column_values_to_match_regex"
    description: ClassVar[str] = "values contain a match of regex"
    regex: str

    @model_validator(mode="after")
    def _compiles(self) -> MatchRegex:
        import re

        re.compile(self.regex)
        return self

    def failing(self, schema: pl.Schema, ctx: QualityContext) -> pl.Expr:
        col = pl.col(self.column)
        return pl.when(col.is_not_null()).then(~col.cast(pl.String).str.contains(self.regex))


@register
class NotMatchRegex(MatchRegex):
    type: ClassVar[str] = "expect_column_values_to_not_match_regex"
    description: ClassVar[str] = "values contain no match of regex"

    def failing(self, schema: pl.Schema, ctx: QualityContext) -> pl.Expr:
        col = pl.col(self.column)
        return pl.when(col.is_not_null()).then(col.cast(pl.String).str.contains(self.regex))


class AggregateExpectation(Expectation):
    kind: ClassVar[Literal["map", "aggregate"]] = "aggregate"


@register
class RowCountBetween(AggregateExpectation):
    type: ClassVar[str] = "expect_table_row_count_to_be_between"
    description: ClassVar[str] = "the table has between min_value and max_value rows"
    min_value: int | None = None
    max_value: int | None = None

    def observe(self, schema: pl.Schema, ctx: QualityContext) -> pl.Expr:
        return pl.len()

    def check(self, observed: Any) -> bool:
        return between(observed, self.min_value, self.max_value)


class ColumnStatBetween(AggregateExpectation):
    column: str
    min_value: Any = None
    max_value: Any = None
    strict_min: bool = False
    strict_max: bool = False
    stat: ClassVar[str]

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
