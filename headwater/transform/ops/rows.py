"""Row ops: filter, flag, deduplicate, order, limit and sample rows."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import polars as pl
from pydantic import Field, field_validator, model_validator

from headwater.transform.expressions import parse_expr
from headwater.transform.lineage import Kind, Lineage, made_from
from headwater.transform.registry import Op, OpContext, register

Columns = list[str]
_ROW = "__headwater_row"
"""A temporary column holding each row's input position."""


def _parses(text: str) -> str:
    parse_expr(text)
    return text


@register
class Filter(Op):
    name: ClassVar[str] = "filter"
    category: ClassVar[str] = "rows"
    description: ClassVar[str] = "Keep the rows where a SQL boolean expression is true."
    example: ClassVar[str] = "filter: \"dep_delay > 15 AND origin = 'JFK'\""
    shorthand: ClassVar[str | None] = "where"
    where: str = Field(
        ..., description="SQL boolean expression; rows where it is true are kept (null drops)."
    )

    _parses = field_validator("where")(_parses)

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        return frame.filter(parse_expr(self.where))

    def row_inputs(self) -> list[str]:
        return parse_expr(self.where).meta.root_names()


@register
class Flag(Op):
    name: ClassVar[str] = "flag"
    category: ClassVar[str] = "rows"
    description: ClassVar[str] = "Add a boolean column: true where a SQL condition holds, else false."
    example: ClassVar[str] = 'flag: {as: is_late, where: "arr_delay > 15"}'
    output: str = Field(..., alias="as", description="The boolean column to add (or replace).")
    where: str = Field(..., description="SQL boolean expression, e.g. `arr_delay > 15 OR cancelled`.")
    null_as: bool | None = Field(
        False, description="The flag where the condition is null (unknown): false, true, or null to keep it."
    )

    _parses = field_validator("where")(_parses)

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        condition = parse_expr(self.where)
        dtype = frame.select(condition.alias("flag")).collect_schema()["flag"]
        if dtype not in (pl.Boolean, pl.Null):
            raise pl.exceptions.InvalidOperationError(
                f"flag: the condition {self.where!r} gives {dtype}, not true/false"
            )
        flag = condition.cast(pl.Boolean)
        if self.null_as is not None:
            flag = flag.fill_null(self.null_as)
        return frame.with_columns(flag.alias(self.output))

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {self.output: made_from(parse_expr(self.where).meta.root_names(), Kind.DERIVED)}


@register
class DropNulls(Op):
    name: ClassVar[str] = "drop_nulls"
    category: ClassVar[str] = "rows"
    description: ClassVar[str] = (
        "Drop the rows with a null in any of these columns (none given: in any column)."
    )
    example: ClassVar[str] = "drop_nulls: [dep_time, arr_time]"
    shorthand: ClassVar[str | None] = "columns"
    columns: Columns = Field(
        default_factory=list,
        description="Columns that must not be null; empty (`drop_nulls: []` or nothing): every column.",
    )

    @field_validator("columns", mode="before")
    @classmethod
    def _nothing_is_every(cls, v: Any) -> Any:
        return [] if v is None else v

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        return frame.drop_nulls(subset=self.columns or None)  # subset=[] would check no column

    def row_inputs(self) -> list[str]:
        """The columns checked (with none given, every column decides, which only a schema knows; the
        lineage check does not need them, since values that change but stay non-null keep the row)."""
        return list(self.columns)


@register
class Dedupe(Op):
    name: ClassVar[str] = "dedupe"
    category: ClassVar[str] = "rows"
    description: ClassVar[str] = (
        "Keep one row per key: the first or last by an order, or drop all duplicates; rows keep their order."
    )
    example: ClassVar[str] = "dedupe: {key: [vendor_id], order_by: [updated_at], keep: last}"
    key: Columns = Field(..., min_length=1, description="Columns that identify a row (null matches null).")
    keep: Literal["first", "last", "none"] = Field(
        "last", description="Which row of each key to keep (none: drop every duplicated key)."
    )
    order_by: Columns = Field(
        default_factory=list,
        description="Order that decides first and last (default and ties: input order); a null never wins.",
    )
    descending: bool = Field(False, description="Order descending.")

    @model_validator(mode="after")
    def _order(self) -> Dedupe:
        if self.keep == "none" and (self.order_by or self.descending):
            raise ValueError("keep: none drops every duplicated key; order_by and descending do not apply")
        if self.descending and not self.order_by:
            raise ValueError("descending needs order_by (without it, input order decides)")
        return self

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        if not self.order_by:
            return frame.unique(subset=self.key, keep=self.keep, maintain_order=True)
        ranked = frame.with_row_index(_ROW).sort(
            [*self.order_by, _ROW],
            descending=[self.descending] * len(self.order_by) + [False],
            nulls_last=self.keep == "first",  # rows with a null order come last for first, first for last
        )
        return ranked.unique(subset=self.key, keep=self.keep, maintain_order=True).sort(_ROW).drop(_ROW)

    def row_inputs(self) -> list[str]:
        return [*self.key, *self.order_by]


@register
class Sort(Op):
    name: ClassVar[str] = "sort"
    category: ClassVar[str] = "rows"
    description: ClassVar[str] = "Sort rows by columns."
    example: ClassVar[str] = "sort: {by: [flight_date, carrier]}"
    shorthand: ClassVar[str | None] = "by"
    by: Columns = Field(..., min_length=1, description="Sort keys, most significant first.")
    descending: bool = Field(False, description="Sort descending.")
    nulls_last: bool = Field(True, description="Put nulls last.")

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        return frame.sort(
            self.by, descending=self.descending, nulls_last=self.nulls_last, maintain_order=True
        )

    def row_inputs(self) -> list[str]:
        return list(self.by)


@register
class Limit(Op):
    name: ClassVar[str] = "limit"
    category: ClassVar[str] = "rows"
    description: ClassVar[str] = "Keep the first n rows, after skipping `offset` rows."
    example: ClassVar[str] = "limit: {n: 100, offset: 200}"
    shorthand: ClassVar[str | None] = "n"
    n: int = Field(..., ge=0, strict=True, description="How many rows to keep (fewer if there are fewer).")
    offset: int = Field(0, ge=0, strict=True, description="How many rows to skip first.")

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        return frame.slice(self.offset, self.n)


@register
class Sample(Op):
    """Which rows are kept depends only on their positions, the row count and the seed, never on
    values: so no column is a row input, and every column passes through unchanged (direct)."""

    name: ClassVar[str] = "sample"
    category: ClassVar[str] = "rows"
    description: ClassVar[str] = (
        "Keep a random sample of rows (n, or a fraction), the same for the same seed and input."
    )
    example: ClassVar[str] = "sample: {n: 1000, seed: 42}"
    n: int | None = Field(None, ge=0, strict=True, description="How many rows (all if there are fewer).")
    fraction: float | None = Field(
        None, ge=0, le=1, description="Which share of the rows (rounded down), instead of n."
    )
    seed: int = Field(
        ..., ge=0, lt=2**64, strict=True, description="Seed of the random choice: same seed, same rows."
    )

    @model_validator(mode="after")
    def _size(self) -> Sample:
        if (self.n is None) == (self.fraction is None):
            raise ValueError("give either n or fraction")
        return self

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        size = pl.lit(self.n) if self.n is not None else (pl.len() * self.fraction).floor()
        return frame.filter(pl.int_range(pl.len()).shuffle(seed=self.seed) < size)  # input order kept
