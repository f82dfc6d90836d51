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
        if self.how in ("semi", "anti") and (self.validate_ != "m:m" or self.select):
            raise ValueError(f"a {self.how} join only keeps or drops rows: it takes no validate or select")
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
        out: Lineage = {}
        right_keys = self.on or self.right_on
        taken = (
            []
            if self.how in ("semi", "anti")
            else self.select or list(ctx.frame(self.with_).collect_schema())
        )
        for column in taken:
            if column not in right_keys:  # coalesced into the left keys
                out[column + self.suffix if column in schema else column] = made_from(
                    [column], Kind.JOIN, self.with_
                )
        if self.how == "full":
            for left, right in zip(self.on or self.left_on, self.on or self.right_on, strict=True):
                sources = (
                    made_from([left], Kind.JOIN).sources | made_from([right], Kind.JOIN, self.with_).sources
                )
                out[left] = ColumnLineage(sources, Kind.JOIN)
        return out


def _typed(value: Any, dtype: pl.DataType, column: str) -> Any:
    """The default `value` as a value of `dtype`; fails (at validation) on a lossy or wrong one."""
    given = pl.Series([value])
    try:
        if given.dtype == pl.String and dtype == pl.Date:
            return given.str.to_date().item()
        typed = given.cast(dtype, strict=True)
        if typed.cast(given.dtype, strict=True).equals(given):
            return typed.item()
    except pl.exceptions.PolarsError:
        pass
    raise pl.exceptions.InvalidOperationError(f"lookup: default {value!r} for {column!r} is not a {dtype}")


@register
class Lookup(Op):
    name: ClassVar[str] = "lookup"
    category: ClassVar[str] = "combine"
    description: ClassVar[str] = (
        "Add columns from another step by key, with defaults for misses; fails if its keys repeat."
    )
    example: ClassVar[str] = (
        "lookup: {with: extract_airlines, on: [carrier], values: {name: carrier_name}, "
        "default: {carrier_name: unknown}}"
    )
    with_: str = Field(..., alias="with", description="The step looked up (must be in depends_on).")
    on: Columns = Field(default_factory=list, description="Key columns with the same name on both sides.")
    left_on: Columns = Field(default_factory=list, description="Key columns on this side (with right_on).")
    right_on: Columns = Field(default_factory=list, description="Key columns on the other side.")
    values: Columns | dict[str, str] = Field(
        ..., min_length=1, description="Columns to take: a list, or other-side name -> new name."
    )
    default: dict[str, Any] = Field(
        default_factory=dict,
        description="New column -> value for rows whose key is not found (a null key is never found).",
    )

    @model_validator(mode="after")
    def _params(self) -> Lookup:
        if bool(self.on) == bool(self.left_on or self.right_on):
            raise ValueError("give either on, or left_on with right_on")
        if len(self.left_on) != len(self.right_on):
            raise ValueError("left_on and right_on need the same number of columns")
        unknown = set(self.default) - set(self._values().values())
        if unknown:
            raise ValueError(f"default names columns the lookup does not add: {', '.join(sorted(unknown))}")
        return self

    def _values(self) -> dict[str, str]:
        return dict(self.values) if isinstance(self.values, dict) else {v: v for v in self.values}

    def references(self) -> list[str]:
        return [self.with_]

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        schema = frame.collect_schema()
        other = ctx.frame(self.with_)
        other_schema = other.collect_schema()
        values = self._values()
        clash = [new for new in values.values() if new in schema]
        if clash:
            raise pl.exceptions.DuplicateError(f"lookup: columns {clash} exist already; name them in values")
        hit = "__lookup_hit"
        while hit in schema or hit in other_schema:
            hit += "_"
        keys = list(self.on or self.left_on)
        right = other.select(
            *(pl.col(r).alias(k) for k, r in zip(keys, self.on or self.right_on, strict=True)),
            *(pl.col(src).alias(new) for src, new in values.items()),
            pl.lit(True).alias(hit),
        )
        defaults = []
        for new, value in self.default.items():
            dtype = other_schema[next(src for src, n in values.items() if n == new)]
            fill = pl.lit(_typed(value, dtype, new), dtype=dtype)
            defaults.append(pl.when(pl.col(hit).is_null()).then(fill).otherwise(pl.col(new)).alias(new))
        joined = frame.join(right, on=keys, how="left", validate="m:1", maintain_order="left", coalesce=True)
        return joined.with_columns(defaults).drop(hit)

    def row_inputs(self) -> list[str]:
        return list(self.on or self.left_on)  # they decide which values each row gets

    def matching_inputs(self) -> dict[str, list[str]]:
        return {self.with_: list(self.on or self.right_on)}

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {new: made_from([src], Kind.JOIN, self.with_) for src, new in self._values().items()}
