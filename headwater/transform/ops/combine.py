"""Ops that combine this step's input with another step's output."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import polars as pl
from pydantic import Field, model_validator

from headwater.transform.lineage import ColumnLineage, Kind, Lineage, made_from
from headwater.transform.registry import Op, OpContext, register

Columns = list[str]


@register
class Join(Op):
    name: ClassVar[str] = "join"
    category: ClassVar[str] = "combine"
    description: ClassVar[str] = "Join another step's output (inner, left, full, semi, anti) on key columns."
    example: ClassVar[str] = "join: {with: extract_airlines, on: [carrier], how: left, select: [name]}"
    with_: str = Field(
        ..., alias="with", description="The step whose output is joined (must be in depends_on)."
    )
    on: Columns = Field(default_factory=list, description="Key columns with the same name on both sides.")
    left_on: Columns = Field(default_factory=list, description="Key columns on this side (with right_on).")
    right_on: Columns = Field(default_factory=list, description="Key columns on the other side.")
    how: Literal["inner", "left", "full", "semi", "anti"] = Field("left", description="Join type.")
    select: Columns = Field(default_factory=list, description="Columns to take from the other side.")
    suffix: str = Field("_right", description="Added to other-side columns whose names clash.")
    validate_: Literal["m:m", "m:1", "1:1", "1:m"] = Field(
        "m:m",
        alias="validate",
        description="Fail unless the keys have this cardinality (m:1: the other side is unique).",
    )

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
            other,
            how=self.how,
            suffix=self.suffix,
            validate=self.validate_,
            coalesce=True,
            maintain_order="left_right" if self.how == "full" else "left",  # deterministic output
            **kwargs,
        )

    def row_inputs(self) -> list[str]:
        return list(self.on or self.left_on)

    def matching_inputs(self) -> dict[str, list[str]]:
        return {self.with_: list(self.on or self.right_on)}

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
