"""Aggregations over groups of rows."""

from __future__ import annotations

from typing import ClassVar, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from headwater.transform.lineage import ALL_ROWS, Kind, Lineage, made_from
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


class Aggregation(BaseModel):
    """One output column of an aggregate: fn over column, optionally rounded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fn: Literal[
        "count", "count_null", "count_distinct", "sum", "mean", "median", "min", "max", "std", "first", "last"
    ]
    column: str | None = Field(None, description="The column aggregated (count without it counts rows).")
    round: int | None = Field(None, ge=0, le=15, description="Round the result to this many decimals.")

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
    by: Columns = Field(..., min_length=1, description="Group-by columns.")
    aggs: dict[str, Aggregation] = Field(
        ..., min_length=1, description="Output column -> {fn, column, round}."
    )

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        return frame.group_by(self.by, maintain_order=True).agg(a.expr(n) for n, a in self.aggs.items())

    def row_inputs(self) -> list[str]:
        return list(self.by)

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {
            name: made_from([agg.column or ALL_ROWS], Kind.AGGREGATION) for name, agg in self.aggs.items()
        }
