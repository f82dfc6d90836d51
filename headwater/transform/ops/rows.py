"""Row ops: filter, deduplicate, order."""

from __future__ import annotations

from typing import ClassVar, Literal

import polars as pl
from pydantic import Field, field_validator

from headwater.transform.expressions import parse_expr
from headwater.transform.registry import Op, OpContext, register

Columns = list[str]


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
class Dedupe(Op):
    name: ClassVar[str] = "dedupe"
    category: ClassVar[str] = "rows"
    description: ClassVar[str] = (
        "Keep one row per key: the first or last by an order, or drop all duplicates."
    )
    example: ClassVar[str] = "dedupe: {key: [vendor_id], order_by: [updated_at], keep: last}"
    key: Columns = Field(..., min_length=1, description="Columns that identify a row.")
    keep: Literal["first", "last", "none"] = Field(
        "last", description="Which row of each key to keep (none: drop every duplicated key)."
    )
    order_by: Columns = Field(
        default_factory=list, description="Order that decides first and last (default: input order)."
    )
    descending: bool = Field(False, description="Order descending.")

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        if self.order_by:
            frame = frame.sort(
                self.order_by, descending=self.descending, nulls_last=True, maintain_order=True
            )
        return frame.unique(subset=self.key, keep=self.keep, maintain_order=True)

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
