"""Row-level (map) expectations on one column, a pair of columns or a list of columns."""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

import polars as pl
from pydantic import Field, field_validator, model_validator

from headwater.quality.expectations_base import (
    ColumnMap,
    MapExpectation,
    QualityContext,
    check_bounds,
    every_row,
    register,
    string_column,
)


@register
class NotNull(ColumnMap):
    type: ClassVar[str] = "expect_column_values_to_not_be_null"
    description: ClassVar[str] = "values are not null"

    def considered(self) -> pl.Expr:
        return every_row()

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
        check_bounds(self.min_value, self.max_value, self.strict_min, self.strict_max)
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
            ~col.is_in(pl.Series(self.value_set).implode(), nulls_equal=False)
        )


@register
class NotInSet(ColumnMap):
    type: ClassVar[str] = "expect_column_values_to_not_be_in_set"
    description: ClassVar[str] = "values are not in value_set"
    value_set: list[Any]

    def failing(self, schema: pl.Schema, ctx: QualityContext) -> pl.Expr:
        col = pl.col(self.column)
        return pl.when(col.is_not_null()).then(
            col.is_in(pl.Series(self.value_set).implode(), nulls_equal=False)
        )


@register
class MatchRegex(ColumnMap):
    """re.search semantics (a match anywhere; anchor with ^...$). On a non-string column GX matches
    pandas' str() of each value, Headwater Polars' cast to String: the same for strings and
    integers without nulls, not for integers holding nulls (pandas: '1.0') or big floats."""

    type: ClassVar[str] = "expect_column_values_to_match_regex"
    description: ClassVar[str] = "values contain a match of regex"
    regex: str

    @field_validator("regex")
    @classmethod
    def _compiles(cls, regex: str) -> str:
        """GX runs Python's `re`, Headwater Polars' Rust regex: the pattern must compile in both (Rust
        has no look-around or back-references)."""
        try:
            re.compile(regex)
        except re.error as exc:  # not a ValueError: pydantic would let it escape parse_suite
            raise ValueError(f"regex {regex!r} does not compile: {exc}") from None
        try:
            pl.select(pl.lit("").str.contains(regex))
        except pl.exceptions.PolarsError as exc:
            raise ValueError(
                f"regex {regex!r} is valid in Python but not in Polars (Rust regex: no look-around "
                f"or back-references): {str(exc).splitlines()[0]}"
            ) from None
        return regex

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


@register
class ValueLengthsBetween(ColumnMap):
    type: ClassVar[str] = "expect_column_value_lengths_to_be_between"
    description: ClassVar[str] = (
        "string lengths (in characters) lie between min_value and max_value; an empty string has "
        "length 0 and is checked, a null is not"
    )
    min_value: int | None = None
    max_value: int | None = None
    strict_min: bool = False
    strict_max: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> ValueLengthsBetween:
        if self.min_value is None and self.max_value is None:
            raise ValueError("min_value and max_value cannot both be None")
        check_bounds(self.min_value, self.max_value, self.strict_min, self.strict_max, floor=0)
        return self

    def failing(self, schema: pl.Schema, ctx: QualityContext) -> pl.Expr:
        col = string_column(self.column, schema, self.type)
        length = col.str.len_chars()
        bad = pl.lit(False)
        if self.min_value is not None:
            bad = bad | ((length <= self.min_value) if self.strict_min else (length < self.min_value))
        if self.max_value is not None:
            bad = bad | ((length >= self.max_value) if self.strict_max else (length > self.max_value))
        return pl.when(col.is_not_null()).then(bad)


@register
class PairAGreaterThanB(MapExpectation):
    """GX 1.x spells the type in lower case (0.x had ..._A_to_be_greater_than_B). With the default
    ignore_row_if, a row where only one value is missing is checked and fails (pandas compares NaN
    as False); only rows missing both values are skipped."""

    type: ClassVar[str] = "expect_column_pair_values_a_to_be_greater_than_b"
    description: ClassVar[str] = (
        "column_A is greater than (or_equal: at least) column_B; a row missing one value fails"
    )
    column_A: str
    column_B: str
    or_equal: bool | None = None
    ignore_row_if: Literal["both_values_are_missing", "either_value_is_missing", "neither"] = (
        "both_values_are_missing"
    )

    def considered(self) -> pl.Expr:
        present = [pl.col(self.column_A).is_not_null(), pl.col(self.column_B).is_not_null()]
        if self.ignore_row_if == "both_values_are_missing":
            return pl.any_horizontal(present)
        if self.ignore_row_if == "either_value_is_missing":
            return pl.all_horizontal(present)
        return every_row()

    def failing(self, schema: pl.Schema, ctx: QualityContext) -> pl.Expr:
        a, b = pl.col(self.column_A), pl.col(self.column_B)
        passes = (a >= b) if self.or_equal else (a > b)
        return pl.when(self.considered()).then(~passes.fill_null(False))


@register
class CompoundColumnsUnique(MapExpectation):
    """Rows whose combination of values repeats fail, every copy (pandas duplicated(keep=False)).
    Missing values compare equal to each other, so (1, null) twice is a duplicate."""

    type: ClassVar[str] = "expect_compound_columns_to_be_unique"
    description: ClassVar[str] = "the combination of column_list values is unique per row"
    column_list: list[str] = Field(min_length=2)
    ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = (
        "all_values_are_missing"
    )

    @field_validator("column_list")
    @classmethod
    def _distinct(cls, columns: list[str]) -> list[str]:
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise ValueError(f"column_list names {', '.join(repeated)} more than once")
        return columns

    def considered(self) -> pl.Expr:
        present = [pl.col(c).is_not_null() for c in self.column_list]
        if self.ignore_row_if == "all_values_are_missing":
            return pl.any_horizontal(present)
        if self.ignore_row_if == "any_value_is_missing":
            return pl.all_horizontal(present)
        return every_row()

    def failing(self, schema: pl.Schema, ctx: QualityContext) -> pl.Expr:
        # Skipped rows cannot equal a considered one (they have a null where it has a value, or are
        # all null where it has one), so duplicates over the whole frame are duplicates among the
        # considered rows.
        return pl.when(self.considered()).then(pl.struct(self.column_list).is_duplicated())
