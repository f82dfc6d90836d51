"""Structure ops: nested values, reshaping, unions."""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Literal

import polars as pl
from pydantic import Field, field_validator, model_validator

from headwater.transform.expressions import parse_dtype
from headwater.transform.lineage import ColumnLineage, Kind, Lineage, made_from
from headwater.transform.registry import Op, OpContext, register

Columns = list[str]


def _schema_error(message: str) -> pl.exceptions.SchemaError:
    return pl.exceptions.SchemaError(message)


@register
class Explode(Op):
    name: ClassVar[str] = "explode"
    category: ClassVar[str] = "structure"
    description: ClassVar[str] = "Turn list columns into rows: one row per element, other columns repeated."
    example: ClassVar[str] = "explode: [tags]"
    shorthand: ClassVar[str | None] = "columns"
    columns: Columns = Field(
        ..., min_length=1, description="List columns exploded together (each row's lists of equal length)."
    )
    keep_empty: bool = Field(
        True, description="Keep a row whose list is empty or null once, with a null; false: drop it."
    )

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        schema = frame.collect_schema()
        for c in self.columns:
            if not isinstance(schema[c], pl.List):
                raise _schema_error(f"explode: column {c!r} is {schema[c]}, not a list")
        return frame.explode(self.columns, empty_as_null=self.keep_empty, keep_nulls=self.keep_empty)

    def row_inputs(self) -> list[str]:
        return list(self.columns)  # the lists' lengths decide how many rows there are

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {c: made_from([c], Kind.CALCULATION) for c in self.columns}


@register
class Unnest(Op):
    name: ClassVar[str] = "unnest"
    category: ClassVar[str] = "structure"
    description: ClassVar[str] = (
        "Spread a struct column, or a JSON text column decoded with a declared schema, into columns."
    )
    example: ClassVar[str] = "unnest: {column: payload, json_schema: {id: int, amount: float}, prefix: p_}"
    column: str = Field(..., description="The struct (or JSON text) column; it is replaced by its fields.")
    json_schema: dict[str, str] = Field(
        default_factory=dict,
        description="For a JSON text column: field -> type (int, float, string, bool, date, datetime...); "
        "invalid JSON fails the step, a missing field is null.",
    )
    prefix: str = Field("", description="Put before each new column's name.")

    @field_validator("json_schema")
    @classmethod
    def _types(cls, v: dict[str, str]) -> dict[str, str]:
        for t in v.values():
            parse_dtype(t)
        return v

    def _fields(self, schema: pl.Schema) -> list[str]:
        dtype = schema[self.column]
        if dtype == pl.String and self.json_schema:
            return list(self.json_schema)
        if isinstance(dtype, pl.Struct) and not self.json_schema:
            return [f.name for f in dtype.fields]
        if isinstance(dtype, pl.Struct):
            raise _schema_error(f"unnest: column {self.column!r} is already a struct; drop json_schema")
        raise _schema_error(
            f"unnest: column {self.column!r} is {dtype}: give a struct, or JSON text with json_schema"
        )

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        schema = frame.collect_schema()
        fields = self._fields(schema)
        struct = pl.col(self.column)
        if self.json_schema:
            dtype = pl.Struct({k: parse_dtype(t) for k, t in self.json_schema.items()})
            struct = struct.str.json_decode(dtype)
        clash = [
            self.prefix + f for f in fields if self.prefix + f in schema and self.prefix + f != self.column
        ]
        if clash:
            raise _schema_error(f"unnest: columns {clash} exist already; set a prefix")
        spread = [struct.struct.field(f).alias(self.prefix + f) for f in fields]
        out = [c for name in schema for c in (spread if name == self.column else [pl.col(name)])]
        return frame.select(out)

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        kind = Kind.CALCULATION if self.json_schema else Kind.DIRECT  # decoding vs taking a field
        return {self.prefix + f: made_from([self.column], kind) for f in self._fields(schema)}


PivotAgg = Literal["single", "first", "last", "sum", "mean", "min", "max", "count"]


def _pivot_agg(fn: str) -> pl.Expr | None:
    e = pl.element()
    match fn:
        case "single":
            return None  # Polars fails on a second value
        case "first" | "last":
            return getattr(e.drop_nulls(), fn)()
        case "count":
            return e.count()
        case _:
            return pl.when(e.count() > 0).then(getattr(e, fn)())  # null, not 0, over no values


@register
class Pivot(Op):
    name: ClassVar[str] = "pivot"
    category: ClassVar[str] = "structure"
    description: ClassVar[str] = (
        "Long to wide: one column per listed value of names_from, filled from values_from per index row."
    )
    example: ClassVar[str] = (
        "pivot: {index: [store], names_from: month, values_from: sales, columns: [jan, feb], agg: sum}"
    )
    index: Columns = Field(
        default_factory=list, description="Columns identifying an output row (default: all the others)."
    )
    names_from: str = Field(..., description="Column whose values name the new columns.")
    values_from: str = Field(..., description="Column whose values fill them.")
    columns: list[str | int | float | date] = Field(
        ...,
        min_length=1,
        description="The values of names_from that become columns, in order (needed for a lazy schema); "
        "rows with other values are left out and counted.",
    )
    agg: PivotAgg = Field(
        "single",
        description="How values of one cell combine: single (fail on a second), first/last (non-null), "
        "sum, mean, min, max, count. Nulls are ignored; no values: null (count: 0).",
    )

    @model_validator(mode="after")
    def _distinct(self) -> Pivot:
        names = [str(c) for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError("columns must be distinct")
        if self.names_from == self.values_from or {self.names_from, self.values_from} & set(self.index):
            raise ValueError("index, names_from and values_from must be different columns")
        return self

    def _index(self, schema: pl.Schema) -> list[str]:
        return self.index or [c for c in schema if c not in (self.names_from, self.values_from)]

    def _names(self, schema: pl.Schema) -> pl.Series:
        dtype = schema[self.names_from]
        try:
            text = pl.Series(self.names_from, [str(c) for c in self.columns])
            return text.str.to_date() if dtype == pl.Date else text.cast(dtype, strict=True)
        except pl.exceptions.PolarsError:
            raise _schema_error(
                f"pivot: columns {self.columns} are not all values of a {dtype} column"
            ) from None

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        schema = frame.collect_schema()
        index = self._index(schema)
        clash = [str(c) for c in self.columns if str(c) in index]
        if clash:
            raise _schema_error(f"pivot: new columns {clash} have the names of index columns")
        names = self._names(schema)
        return frame.pivot(
            self.names_from,
            names,
            index=index,
            values=self.values_from,
            aggregate_function=_pivot_agg(self.agg),
            maintain_order=True,
        ).rename({str(v): str(c) for v, c in zip(names.to_list(), self.columns, strict=True)})

    def row_inputs(self) -> list[str]:
        return list(self.index)

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        both = [self.values_from, self.names_from]
        return {str(c): made_from(both, Kind.AGGREGATION) for c in self.columns}

    def counters(self, schema: pl.Schema) -> dict[str, pl.Expr]:
        """Rows whose names_from value is not among `columns` (or is null): left out of the result."""
        listed = pl.col(self.names_from).is_in(self._names(schema).implode()).fill_null(False)
        return {"rows_not_pivoted": (~listed).sum()}


@register
class Unpivot(Op):
    name: ClassVar[str] = "unpivot"
    category: ClassVar[str] = "structure"
    description: ClassVar[str] = (
        "Wide to long: one row per index row and unpivoted column (column by column), as name and value."
    )
    example: ClassVar[str] = (
        "unpivot: {index: [store], columns: [jan, feb], names_to: month, values_to: sales}"
    )
    index: Columns = Field(default_factory=list, description="Columns kept on every output row.")
    columns: Columns = Field(
        default_factory=list,
        description="Columns turned into rows (default: all but index); of one type, or all numeric.",
    )
    names_to: str = Field("name", description="New column holding the unpivoted column's name.")
    values_to: str = Field("value", description="New column holding its value.")

    def _columns(self, schema: pl.Schema) -> list[str]:
        return self.columns or [c for c in schema if c not in self.index]

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        schema = frame.collect_schema()
        columns = self._columns(schema)
        types = {schema[c] for c in columns} - {pl.Null()}
        if len(types) > 1 and not all(t.is_numeric() for t in types):
            found = ", ".join(f"{c}: {schema[c]}" for c in columns)
            raise _schema_error(f"unpivot: the columns differ in type ({found}); cast them first")
        if not columns:
            raise _schema_error("unpivot: no columns left to unpivot")
        parts = [  # column by column, in a fixed order (Polars' lazy unpivot interleaves chunks)
            frame.select(
                *self.index, pl.lit(c, pl.String).alias(self.names_to), pl.col(c).alias(self.values_to)
            )
            for c in columns
        ]
        return pl.concat(parts, how="vertical_relaxed")

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {
            self.names_to: made_from([], Kind.DERIVED),
            self.values_to: made_from(self._columns(schema), Kind.DIRECT),
        }


@register
class Union(Op):
    name: ClassVar[str] = "union"
    category: ClassVar[str] = "structure"
    description: ClassVar[str] = (
        "Stack other steps' rows under this input's, by column name; missing columns are null."
    )
    example: ClassVar[str] = "union: {with: [extract_eu, extract_us], source_column: region_feed}"
    with_: list[str] = Field(
        ..., alias="with", min_length=1, description="Steps whose rows are added, in order."
    )
    source_column: str | None = Field(
        None, description="New column naming the step each row came from (this input's rows: input_label)."
    )
    input_label: str = Field("input", description="The source_column value of this input's own rows.")

    @field_validator("with_")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("each step can be added once")
        return v

    def references(self) -> list[str]:
        return list(self.with_)

    def _frames(self, frame: pl.LazyFrame, ctx: OpContext) -> list[tuple[str, pl.LazyFrame]]:
        frames = [(self.input_label, frame), *((s, ctx.frame(s)) for s in self.with_)]
        if self.source_column:
            for label, f in frames:
                if self.source_column in f.collect_schema():
                    raise _schema_error(f"union: {label} has a column {self.source_column!r} already")
            frames = [(label, f.with_columns(pl.lit(label).alias(self.source_column))) for label, f in frames]
        return frames

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        frames = self._frames(frame, ctx)
        seen: dict[str, tuple[str, pl.DataType]] = {}
        for label, f in frames:
            for column, dtype in f.collect_schema().items():
                first = seen.setdefault(column, (label, dtype))
                pair = {first[1], dtype} - {pl.Null()}
                if len(pair) > 1 and not all(t.is_numeric() for t in pair):
                    raise _schema_error(
                        f"union: column {column!r} is {first[1]} in {first[0]} but {dtype} in {label}; "
                        "cast one first"
                    )
        return pl.concat([f for _, f in frames], how="diagonal_relaxed")

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        sources: dict[str, set[tuple[str, str]]] = {}
        for step in self.with_:
            for column in ctx.frame(step).collect_schema():
                sources.setdefault(column, set()).add((step, column))
        out: Lineage = {}
        for column, origins in sources.items():
            if self.source_column == column:
                continue
            merged = made_from([column], Kind.DIRECT) if column in schema else None
            for step, col in origins:
                extra = made_from([col], Kind.DIRECT, frame=step)
                merged = (
                    extra if merged is None else ColumnLineage(merged.sources | extra.sources, Kind.DIRECT)
                )
            assert merged is not None
            out[column] = merged
        if self.source_column:
            out[self.source_column] = made_from([], Kind.DERIVED)
        return out
