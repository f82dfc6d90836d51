"""Date and time ops."""

from __future__ import annotations

from typing import ClassVar

import polars as pl
from pydantic import Field

from headwater.transform.lineage import Kind, Lineage, made_from
from headwater.transform.registry import Op, OpContext, register

Columns = list[str]


@register
class MakeDate(Op):
    name: ClassVar[str] = "make_date"
    category: ClassVar[str] = "dates"
    description: ClassVar[str] = "Build a date column from year, month and day columns."
    example: ClassVar[str] = "make_date: {year: year, month: month, day: day, as: flight_date}"
    year: str = Field(..., description="Column holding the year.")
    month: str = Field(..., description="Column holding the month (1-12).")
    day: str = Field(..., description="Column holding the day of the month.")
    output: str = Field(..., alias="as", description="Name of the new date column.")

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        return frame.with_columns(
            pl.date(pl.col(self.year), pl.col(self.month), pl.col(self.day)).alias(self.output)
        )

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {self.output: made_from([self.year, self.month, self.day], Kind.CALCULATION)}
