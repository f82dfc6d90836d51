"""Number ops: round, bound, bucket, scale, parse."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from itertools import pairwise
from typing import ClassVar, Literal

import polars as pl
from pydantic import Field, model_validator

from headwater.transform.lineage import Kind, Lineage, made_from
from headwater.transform.registry import Op, OpContext, register

Columns = list[str]
Number = int | float


def require_numeric(schema: pl.Schema, columns: Iterable[str], op: str) -> None:
    """Fail from the schema alone, with a message that names the column and its type."""
    for column in columns:
        if column not in schema:
            raise pl.exceptions.ColumnNotFoundError(
                f'unable to find column "{column}"; valid columns: {list(schema)}'
            )
        if not schema[column].is_numeric():
            raise pl.exceptions.SchemaError(
                f"{op} needs a numeric column, but {column} is {schema[column]}: cast it first"
            )


Arithmetic = Literal["float", "decimal"]
RoundMode = Literal["half_to_even", "half_away_from_zero", "to_zero"]

FLOAT_SCALE = 18
"""Decimal places a float is read to in decimal arithmetic. Decimal(38, 18) leaves 20 integer digits."""


def as_decimal(column: str, dtype: pl.DataType, scale: int = 0) -> tuple[pl.Expr, int]:
    """The column's values as Decimal(38, s) and s (at least `scale`). A float is read from its shortest
    text, the digits it prints as (1.005 -> 1.005, not the binary 1.00499...), to FLOAT_SCALE places;
    integers and decimals convert exactly. NaN, infinity or a float of 1e20 or more fail the cast."""
    value = pl.col(column)
    if isinstance(dtype, pl.Decimal):
        s = max(dtype.scale, scale)
    elif dtype.is_float():
        s = max(FLOAT_SCALE, scale)
        value = value.cast(pl.String)
    else:  # integers and Null (all values null)
        s = scale
    return value.cast(pl.Decimal(38, s)), s


def round_decimal(value: pl.Expr, scale: int, decimals: int, mode: RoundMode) -> pl.Expr:
    """Round a Decimal(38, scale) expression to Decimal(38, decimals) (Polars rounds Decimals exactly)."""
    if scale > decimals:
        value = value.truncate(decimals) if mode == "to_zero" else value.round(decimals, mode=mode)
    return value.cast(pl.Decimal(38, decimals))


def decimal_ulp(scale: int) -> pl.Expr:
    """The smallest step of Decimal(38, scale), as a literal of that type."""
    return pl.lit(Decimal(1).scaleb(-scale), dtype=pl.Decimal(38, scale))


class _NumberColumns(Op):
    """An op that rewrites each of `columns` (numeric) in place, value by value."""

    columns: Columns = Field(..., min_length=1, description="Numeric columns to change in place.")

    def _expr(self, column: str, dtype: pl.DataType) -> pl.Expr:
        raise NotImplementedError

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        schema = frame.collect_schema()
        require_numeric(schema, self.columns, self.name)
        return frame.with_columns(self._expr(c, schema[c]).alias(c) for c in self.columns)

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {c: made_from([c], Kind.CALCULATION) for c in self.columns}


@register
class Round(_NumberColumns):
    name: ClassVar[str] = "round"
    category: ClassVar[str] = "numbers"
    description: ClassVar[str] = (
        "Round to a number of decimals: ties to even or away from zero, or truncate; arithmetic: decimal "
        "for money (exact ties)."
    )
    example: ClassVar[str] = "round: {columns: [price_gbp], decimals: 2, arithmetic: decimal}"
    shorthand: ClassVar[str | None] = "columns"
    decimals: int = Field(
        0,
        ge=0,
        le=38,
        description="Decimal places to keep (float arithmetic leaves integer columns unchanged; "
        "decimal arithmetic allows at most 17).",
    )
    mode: RoundMode | None = Field(
        None,
        description="Ties to even (banker's), ties away from zero (commercial, as accountants and Excel), "
        "or to_zero (truncate). Default: half_to_even in float arithmetic, half_away_from_zero in decimal.",
    )
    arithmetic: Arithmetic = Field(
        "float",
        description="float: round the binary value, so 1.005 (stored as 1.00499...) rounds to 1.0 and "
        "1.015 to 1.01; right for measurements. decimal: read each value as the digits it prints as (floats "
        f"to {FLOAT_SCALE} places, below 1e20) and round those exactly, so 1.005 -> 1.01: use it for money "
        "and any value whose decimal ties matter. Every column becomes Decimal(38, decimals); "
        "NaN and infinity fail the run. An all-null (Null-typed) column stays null (Float64 in float).",
    )

    @model_validator(mode="after")
    def _decimal_places(self) -> Round:
        if self.arithmetic == "decimal" and self.decimals >= FLOAT_SCALE:
            raise ValueError(
                f"decimal arithmetic keeps at most {FLOAT_SCALE - 1} decimals (floats are read to "
                f"{FLOAT_SCALE} places), not {self.decimals}"
            )
        return self

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        schema = frame.collect_schema()  # a Null column (all null, e.g. from an empty source) stays null
        require_numeric(schema, [c for c in self.columns if schema.get(c) != pl.Null], self.name)
        return frame.with_columns(self._expr(c, schema[c]).alias(c) for c in self.columns)

    def _expr(self, column: str, dtype: pl.DataType) -> pl.Expr:
        if self.arithmetic == "decimal":
            value, scale = as_decimal(column, dtype)
            return round_decimal(value, scale, self.decimals, self.mode or "half_away_from_zero")
        if dtype == pl.Null:
            return pl.col(column).cast(pl.Float64)
        if dtype.is_integer():
            return pl.col(column)
        if self.mode == "to_zero":  # Polars 2.1 documents round(mode="to_zero") but rejects it
            return pl.col(column).truncate(self.decimals)
        return pl.col(column).round(self.decimals, mode=self.mode or "half_to_even")


_INT_RANGES: dict[type[pl.DataType], tuple[int, int]] = {
    dtype: (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    for dtype, bits, signed in [
        (pl.Int8, 8, True),
        (pl.Int16, 16, True),
        (pl.Int32, 32, True),
        (pl.Int64, 64, True),
        (pl.Int128, 128, True),
        (pl.UInt8, 8, False),
        (pl.UInt16, 16, False),
        (pl.UInt32, 32, False),
        (pl.UInt64, 64, False),
        (pl.UInt128, 128, False),
    ]
}


@register
class Clip(_NumberColumns):
    name: ClassVar[str] = "clip"
    category: ClassVar[str] = "numbers"
    description: ClassVar[str] = "Limit values to lower and/or upper bounds; nulls and NaN stay as they are."
    example: ClassVar[str] = "clip: {columns: [discount_pct], lower: 0, upper: 100}"
    lower: Number | None = Field(None, description="Values below this become this (omit: no lower bound).")
    upper: Number | None = Field(None, description="Values above this become this (omit: no upper bound).")

    @model_validator(mode="after")
    def _bounds(self) -> Clip:
        if self.lower is None and self.upper is None:
            raise ValueError("give lower, upper or both")
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ValueError(f"lower ({self.lower}) is above upper ({self.upper})")
        return self

    def _expr(self, column: str, dtype: pl.DataType) -> pl.Expr:
        bounds = [self.lower, self.upper]
        if dtype.is_integer():
            if any(b is not None and b != int(b) for b in bounds):
                raise pl.exceptions.InvalidOperationError(
                    f"clip bounds {self.lower}, {self.upper} are not whole numbers but {column} is {dtype}: "
                    "cast it to float first"
                )
            low, high = _INT_RANGES[type(dtype)]  # a bound past the type's range bounds nothing
            bounds = [None if b is None else min(max(int(b), low), high) for b in bounds]
        return pl.col(column).clip(*bounds)


@register
class Bucket(Op):
    name: ClassVar[str] = "bucket"
    category: ClassVar[str] = "numbers"
    description: ClassVar[str] = (
        "Put numbers into labelled bins between breaks; null and NaN get no bin (null)."
    )
    example: ClassVar[str] = (
        "bucket: {column: price_gbp, breaks: [500, 2000], labels: [budget, mid, premium], as: price_band}"
    )
    column: str = Field(..., description="Numeric column to bin.")
    breaks: list[Number] = Field(..., min_length=1, description="Bin edges, strictly increasing.")
    labels: list[str] = Field(
        default_factory=list,
        description="One label per bin (one more than breaks); default: intervals such as [500, 2000).",
    )
    closed: Literal["left", "right"] = Field(
        "left", description="left: bins are [a, b) (a break starts the next bin); right: (a, b]."
    )
    output_type: Literal["string", "category"] = Field(
        "string", description="string, or category: a Polars Enum whose categories are the labels in order."
    )
    output: str | None = Field(
        None, alias="as", description="Column to write (default: the column name + `_bucket`)."
    )

    @model_validator(mode="after")
    def _check(self) -> Bucket:
        if any(b >= a for b, a in pairwise(self.breaks)):
            raise ValueError(f"breaks must be strictly increasing: {self.breaks}")
        if self.labels and len(self.labels) != len(self.breaks) + 1:
            raise ValueError(
                f"{len(self.breaks)} breaks make {len(self.breaks) + 1} bins, but {len(self.labels)} labels"
            )
        if len(set(self.bin_labels())) != len(self.bin_labels()):
            raise ValueError("labels must differ")
        return self

    def bin_labels(self) -> list[str]:
        if self.labels:
            return list(self.labels)
        edges = ["-inf", *(repr(b) for b in self.breaks), "inf"]
        opening, closing = ("[", ")") if self.closed == "left" else ("(", "]")
        return [
            f"{'(' if i == 0 else opening}{a}, {b}{')' if i == len(self.breaks) else closing}"
            for i, (a, b) in enumerate(pairwise(edges))
        ]

    def _target(self) -> str:
        return self.output or f"{self.column}_bucket"

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        schema = frame.collect_schema()
        require_numeric(schema, [self.column], self.name)
        value = pl.col(self.column)
        if not schema[self.column].is_integer():
            value = value.cast(pl.Float64)
        labels = self.bin_labels()
        below = value.__lt__ if self.closed == "left" else value.__le__
        binned = pl.lit(labels[-1])
        for label, edge in reversed(list(zip(labels, self.breaks, strict=False))):
            binned = pl.when(below(edge)).then(pl.lit(label)).otherwise(binned)
        out = pl.when(value.is_null() | value.is_nan()).then(pl.lit(None, dtype=pl.String)).otherwise(binned)
        dtype = pl.Enum(labels) if self.output_type == "category" else pl.String
        return frame.with_columns(out.cast(dtype).alias(self._target()))

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {self._target(): made_from([self.column], Kind.CALCULATION)}


class _Scale(_NumberColumns):
    """Scale each column by statistics of the whole column: NaN is left out of them and stays NaN;
    nulls stay null. Output is Float64."""

    suffix: str | None = Field(
        None,
        min_length=1,
        description="Write to the column name + suffix, keeping the column (default: replace it).",
    )

    def _scaled(self, value: pl.Expr) -> pl.Expr:
        raise NotImplementedError

    def _expr(self, column: str, dtype: pl.DataType) -> pl.Expr:
        value = pl.col(column).cast(pl.Float64)
        return self._scaled(value)

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        schema = frame.collect_schema()
        require_numeric(schema, self.columns, self.name)
        return frame.with_columns(self._expr(c, schema[c]).alias(self._target(c)) for c in self.columns)

    def _target(self, column: str) -> str:
        return f"{column}{self.suffix}" if self.suffix else column

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {self._target(c): made_from([c], Kind.AGGREGATION) for c in self.columns}


@register
class ScaleMinmax(_Scale):
    name: ClassVar[str] = "scale_minmax"
    category: ClassVar[str] = "numbers"
    description: ClassVar[str] = (
        "Rescale columns to 0..1 by their min and max over all rows; a constant column becomes 0.0."
    )
    example: ClassVar[str] = "scale_minmax: {columns: [price_gbp], suffix: _scaled}"
    shorthand: ClassVar[str | None] = "columns"

    def _scaled(self, value: pl.Expr) -> pl.Expr:
        low, spread = value.min(), value.max() - value.min()  # min/max skip NaN
        return pl.when(spread == 0).then(value * 0.0).otherwise((value - low) / spread)


@register
class ScaleZscore(_Scale):
    name: ClassVar[str] = "scale_zscore"
    category: ClassVar[str] = "numbers"
    description: ClassVar[str] = (
        "Standardise columns: (value - mean) / standard deviation over all rows; zero spread gives 0.0."
    )
    example: ClassVar[str] = "scale_zscore: {columns: [price_gbp], ddof: 1}"
    shorthand: ClassVar[str | None] = "columns"
    ddof: Literal[0, 1] = Field(
        0,
        description="0: population standard deviation (as scikit-learn); 1: sample (as SQL STDDEV). "
        "With no spread, or too few values for it, every value becomes 0.0.",
    )

    def _scaled(self, value: pl.Expr) -> pl.Expr:
        known = value.fill_nan(None)
        mean, std = known.mean(), known.std(ddof=self.ddof)
        spread = pl.when(std > 0).then(std)  # null when 0 or undefined
        return pl.when(spread.is_null()).then(value * 0.0).otherwise((value - mean) / spread)


_CURRENCY = r"[A-Za-z]{0,3}\p{Sc}|[A-Za-z]{3}"  # £, €, US$, R$, or an ISO code such as GBP
_AMOUNT = (
    rf"^(?P<lead>[-+\x{{2212}}])?\s*(?P<open1>\()?\s*(?P<pre>{_CURRENCY})?\s*(?P<open2>\()?\s*(?P<mid>[-+\x{{2212}}])?\s*"
    r"(?P<num>[0-9](?:[0-9.,'\x{2019}\s]*[0-9])?|[.,][0-9]+)\s*"
    rf"(?P<post>{_CURRENCY})?\s*(?P<close1>\))?\s*(?P<post2>{_CURRENCY})?\s*(?P<close2>\))?$"
)
_NUMBER = {  # thousands may be grouped by the other mark, an apostrophe or a space
    ".": r"^(?:[0-9]{1,3}(?:[,'\x{2019}\s][0-9]{3})+|[0-9]+)(?:\.[0-9]+)?$|^\.[0-9]+$",
    ",": r"^(?:[0-9]{1,3}(?:[.'\x{2019}\s][0-9]{3})+|[0-9]+)(?:,[0-9]+)?$|^,[0-9]+$",
}


@register
class ParseCurrency(Op):
    name: ClassVar[str] = "parse_currency"
    category: ClassVar[str] = "numbers"
    description: ClassVar[str] = (
        'Parse money text ("£1,200.50", "(45.00)", "1.200,50 €") to numbers; blank -> null, unparseable '
        "-> null (counted)."
    )
    example: ClassVar[str] = "parse_currency: {column: price, as: price_gbp, currency_column: price_currency}"
    column: str = Field(..., description="Text column holding the amounts.")
    decimal: Literal[".", ","] = Field(
        ".", description="The decimal mark; the other mark, a space or an apostrophe may group thousands."
    )
    output: str | None = Field(None, alias="as", description="Column to write (default: replace the column).")
    currency_column: str | None = Field(
        None, description="Also write the currency symbol or ISO code found (£, US$, EUR), null if none."
    )

    def _parts(self) -> pl.Expr:
        return pl.col(self.column).str.strip_chars().str.extract_groups(_AMOUNT)

    def _amount(self) -> pl.Expr:
        part = self._parts().struct.field
        opens = part("open1").is_not_null().cast(pl.Int8) + part("open2").is_not_null().cast(pl.Int8)
        closes = part("close1").is_not_null().cast(pl.Int8) + part("close2").is_not_null().cast(pl.Int8)
        signs = part("lead").is_not_null().cast(pl.Int8) + part("mid").is_not_null().cast(pl.Int8)
        currencies = pl.sum_horizontal(part(p).is_not_null().cast(pl.Int8) for p in ("pre", "post", "post2"))
        sign = pl.coalesce(part("lead"), part("mid"))
        negative = (opens == 1) | (sign.is_not_null() & (sign != "+"))
        valid = (
            part("num").str.contains(_NUMBER[self.decimal])
            & (opens == closes)
            & (opens + signs <= 1)
            & (currencies <= 1)
        )
        digits = (
            part("num")
            .str.replace_all(rf"[^0-9{self.decimal}]", "")
            .str.replace(self.decimal, ".", literal=True)
        )
        value = digits.cast(pl.Float64, strict=False)
        return pl.when(valid).then(pl.when(negative & (value != 0)).then(-value).otherwise(value))

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        schema = frame.collect_schema()
        if self.column not in schema:
            raise pl.exceptions.ColumnNotFoundError(
                f'unable to find column "{self.column}"; valid columns: {list(schema)}'
            )
        if schema[self.column] != pl.String:
            raise pl.exceptions.SchemaError(
                f"parse_currency needs a text column, but {self.column} is {schema[self.column]}"
            )
        amount = self._amount()
        columns = [amount.alias(self.output or self.column)]
        if self.currency_column:
            part = self._parts().struct.field
            found = pl.coalesce(part("pre"), part("post"), part("post2")).str.to_uppercase()
            columns.append(pl.when(amount.is_not_null()).then(found).alias(self.currency_column))
        return frame.with_columns(columns)

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        out = [self.output or self.column, *([self.currency_column] if self.currency_column else [])]
        return {c: made_from([self.column], Kind.CALCULATION) for c in out}

    def counters(self, schema: pl.Schema) -> dict[str, pl.Expr]:
        """How many non-blank values did not parse as an amount (now null)."""
        text = pl.col(self.column).str.strip_chars()
        return {f"{self.column}_invalid": ((text.str.len_chars() > 0) & self._amount().is_null()).sum()}
