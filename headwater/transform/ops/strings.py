"""String ops: clean, reshape and standardise text.

Patterns are regular expressions in the syntax of Rust's `regex` crate (what Polars runs), and must also
compile with Python's `re`, so they are checked when the spec is validated. Look-around and
backreferences are not supported; name groups as `(?P<name>...)`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import ClassVar, Literal

import polars as pl
from pydantic import Field, field_validator, model_validator

from headwater.transform.lineage import Kind, Lineage, made_from
from headwater.transform.registry import Op, OpContext, register

Columns = list[str]
Scalar = str | bool | int | float | None


def require_text(schema: pl.Schema, columns: Iterable[str], op: str, integers: bool = False) -> None:
    """Fail from the schema alone (Polars defers `.str` type errors to collect time)."""
    for column in columns:
        if column not in schema:
            raise pl.exceptions.ColumnNotFoundError(
                f'unable to find column "{column}"; valid columns: {list(schema)}'
            )
        dtype = schema[column]
        if dtype != pl.String and not (integers and dtype.is_integer()):
            raise pl.exceptions.SchemaError(
                f"{op} needs a text column, but {column} is {dtype}: cast it to string first"
            )


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The pattern compiled by Python; ValueError unless both Python and Polars accept it."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from None
    try:
        pl.select(pl.lit("", dtype=pl.String).str.contains(pattern))
    except pl.exceptions.PolarsError as exc:
        reason = [line.strip() for line in str(exc).splitlines() if line.strip().startswith("error:")]
        detail = reason[0].removeprefix("error: ") if reason else str(exc).splitlines()[0]
        raise ValueError(f"pattern {pattern!r} is not supported by Polars: {detail}") from None
    return compiled


def _calculated(columns: Iterable[str], output: Iterable[str] | None = None) -> Lineage:
    return {out: made_from([c], Kind.CALCULATION) for c, out in zip(columns, output or columns, strict=True)}


class _TextColumns(Op):
    """An op that rewrites each of `columns` in place with `_expr`."""

    columns: Columns = Field(..., min_length=1, description="Text columns to change in place.")
    integers: ClassVar[bool] = False
    """Integer columns are accepted too (the op makes them text)."""

    def _expr(self, column: str) -> pl.Expr:
        raise NotImplementedError

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        require_text(frame.collect_schema(), self.columns, self.name, self.integers)
        return frame.with_columns(self._expr(c).alias(c) for c in self.columns)

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return _calculated(self.columns)


@register
class Trim(_TextColumns):
    name: ClassVar[str] = "trim"
    category: ClassVar[str] = "strings"
    description: ClassVar[str] = "Strip leading and trailing whitespace (or the given characters) from text."
    example: ClassVar[str] = "trim: [vendor_name, city]"
    shorthand: ClassVar[str | None] = "columns"
    characters: str | None = Field(
        None, min_length=1, description="Characters to strip, in any order (default: Unicode whitespace)."
    )
    side: Literal["both", "start", "end"] = Field("both", description="Which ends to strip.")

    def _expr(self, column: str) -> pl.Expr:
        text = pl.col(column).str
        strip = {"both": text.strip_chars, "start": text.strip_chars_start, "end": text.strip_chars_end}
        return strip[self.side](self.characters)


@register
class ChangeCase(_TextColumns):
    name: ClassVar[str] = "change_case"
    category: ClassVar[str] = "strings"
    description: ClassVar[str] = (
        "Convert text to upper, lower or title case (Unicode-aware: straße -> STRASSE)."
    )
    example: ClassVar[str] = "change_case: {columns: [city], to: title}"
    to: Literal["upper", "lower", "title"] = Field(
        ..., description="upper, lower, or title (first letter of each word upper, the rest lower)."
    )

    def _expr(self, column: str) -> pl.Expr:
        text = pl.col(column).str
        return {"upper": text.to_uppercase, "lower": text.to_lowercase, "title": text.to_titlecase}[self.to]()


_GROUP_REF = re.compile(r"\$(?:\$|\{([^}]*)\}|([0-9A-Za-z_]+))")


@register
class RegexReplace(_TextColumns):
    name: ClassVar[str] = "regex_replace"
    category: ClassVar[str] = "strings"
    description: ClassVar[str] = (
        "Replace every match of a regular expression; the replacement may use $1 or ${name}."
    )
    example: ClassVar[str] = 'regex_replace: {columns: [postcode], pattern: "\\\\s+", replacement: ""}'
    pattern: str = Field(..., min_length=1, description="Regular expression (Rust syntax, no look-around).")
    replacement: str = Field(
        "", description="Text for each match; $1 / ${1} / ${name} insert a group, $$ a dollar sign."
    )

    @model_validator(mode="after")
    def _check(self) -> RegexReplace:
        compiled = compile_pattern(self.pattern)
        if re.search(r"\\[0-9]", self.replacement):
            raise ValueError(f"replacement {self.replacement!r}: refer to a group as $1 or ${{1}}, not \\1")
        for braced, bare in _GROUP_REF.findall(self.replacement):
            ref = braced or bare
            if not ref:  # "$$"
                continue
            if ref not in compiled.groupindex and not (ref.isdigit() and int(ref) <= compiled.groups):
                hint = " (write ${1}x for group 1 followed by x)" if bare and bare[0].isdigit() else ""
                raise ValueError(f"replacement refers to group {ref!r}, which the pattern lacks{hint}")
        return self

    def _expr(self, column: str) -> pl.Expr:
        return pl.col(column).str.replace_all(self.pattern, self.replacement)


@register
class RegexExtract(Op):
    name: ClassVar[str] = "regex_extract"
    category: ClassVar[str] = "strings"
    description: ClassVar[str] = (
        "Put a capture group of a regular expression into a column; null where it does not match."
    )
    example: ClassVar[str] = 'regex_extract: {column: email, pattern: "@(.+)$", as: email_domain}'
    column: str = Field(..., description="Text column to search.")
    pattern: str = Field(..., min_length=1, description="Regular expression (Rust syntax, no look-around).")
    group: int | str = Field(1, description="Capture group to take: its number (0: whole match) or name.")
    output: str = Field(..., alias="as", description="Column to write (may be the searched column).")

    @model_validator(mode="after")
    def _check(self) -> RegexExtract:
        self._index()
        return self

    def _index(self) -> int:
        compiled = compile_pattern(self.pattern)
        if isinstance(self.group, str):
            if self.group not in compiled.groupindex:
                raise ValueError(f"pattern has no group named {self.group!r}")
            return compiled.groupindex[self.group]
        if not 0 <= self.group <= compiled.groups:
            raise ValueError(f"group {self.group} does not exist: the pattern has {compiled.groups} group(s)")
        return self.group

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        require_text(frame.collect_schema(), [self.column], self.name)
        return frame.with_columns(
            pl.col(self.column).str.extract(self.pattern, self._index()).alias(self.output)
        )

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return _calculated([self.column], [self.output])


@register
class Split(Op):
    name: ClassVar[str] = "split"
    category: ClassVar[str] = "strings"
    description: ClassVar[str] = (
        "Split text by a separator into a list column, or into named columns (missing parts null)."
    )
    example: ClassVar[str] = 'split: {column: full_name, by: " ", into: [first_name, last_name]}'
    column: str = Field(..., description="Text column to split.")
    by: str = Field(..., min_length=1, description="Separator, taken literally (not a pattern).")
    into: Columns = Field(
        default_factory=list, description="Names of the columns for the first parts; omit for a list column."
    )
    remainder: Literal["keep", "drop"] = Field(
        "keep", description="With into: keep the rest of the text in the last column, or drop it."
    )
    output: str | None = Field(
        None, alias="as", description="Without into: the list column to write (default: replace the column)."
    )

    @model_validator(mode="after")
    def _check(self) -> Split:
        if self.into and self.output is not None:
            raise ValueError("give either into (named columns) or as (a list column), not both")
        if len(set(self.into)) != len(self.into):
            raise ValueError("the names in into must differ")
        return self

    def _outputs(self) -> list[str]:
        return list(self.into) or [self.output or self.column]

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        require_text(frame.collect_schema(), [self.column], self.name)
        text = pl.col(self.column).str
        if not self.into:
            return frame.with_columns(text.split(self.by).alias(self._outputs()[0]))
        n = len(self.into)
        parts = text.splitn(self.by, n) if self.remainder == "keep" else text.split_exact(self.by, n - 1)
        return frame.with_columns(
            parts.struct.field(f"field_{i}").alias(name) for i, name in enumerate(self.into)
        )

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {out: made_from([self.column], Kind.CALCULATION) for out in self._outputs()}


@register
class Pad(_TextColumns):
    name: ClassVar[str] = "pad"
    category: ClassVar[str] = "strings"
    description: ClassVar[str] = (
        "Pad text (or integers, as text) on the left or right to a width; longer values stay."
    )
    example: ClassVar[str] = 'pad: {columns: [account_no], width: 8, fill_char: "0"}'
    integers: ClassVar[bool] = True
    width: int = Field(..., ge=1, description="Width in characters (Unicode code points).")
    fill_char: str = Field(" ", min_length=1, max_length=1, description="The one character to pad with.")
    side: Literal["left", "right"] = Field("left", description="Where the fill goes.")

    def _expr(self, column: str) -> pl.Expr:
        text = pl.col(column).cast(pl.String).str
        return (text.pad_start if self.side == "left" else text.pad_end)(self.width, self.fill_char)


@register
class NormalizeWhitespace(_TextColumns):
    name: ClassVar[str] = "normalize_whitespace"
    category: ClassVar[str] = "strings"
    description: ClassVar[str] = (
        "Collapse each run of whitespace (tabs, newlines, Unicode spaces) to one space, and trim."
    )
    example: ClassVar[str] = "normalize_whitespace: [vendor_name]"
    shorthand: ClassVar[str | None] = "columns"

    def _expr(self, column: str) -> pl.Expr:
        return pl.col(column).str.replace_all(r"\s+", " ").str.strip_chars()


class _Validated(_TextColumns):
    """Normalise text and make what fails a check null; blank text becomes null without counting."""

    def _candidate(self, text: pl.Expr) -> pl.Expr:
        raise NotImplementedError

    def _valid(self, candidate: pl.Expr) -> pl.Expr:
        raise NotImplementedError

    def _expr(self, column: str) -> pl.Expr:
        candidate = self._candidate(pl.col(column).str.strip_chars())
        return pl.when(self._valid(candidate)).then(candidate)

    def counters(self, schema: pl.Schema) -> dict[str, pl.Expr]:
        """Per column, how many non-blank values were invalid and are now null."""
        return {
            f"{c}_invalid": (
                pl.col(c).str.strip_chars().str.len_chars().gt(0) & self._expr(c).is_null()
            ).sum()
            for c in self.columns
        }


_EMAIL_ATOM = r"[\p{L}\p{N}!#$%&'*+/=?^_`{|}~-]+"
_EMAIL_LABEL = r"[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?"
_EMAIL = (
    rf"^{_EMAIL_ATOM}(?:\.{_EMAIL_ATOM})*@(?:{_EMAIL_LABEL}\.)+(?:\p{{L}}{{2,63}}|xn--[a-z0-9-]{{1,59}})$"
)


@register
class NormalizeEmail(_Validated):
    name: ClassVar[str] = "normalize_email"
    category: ClassVar[str] = "strings"
    description: ClassVar[str] = (
        "Trim and lowercase email addresses; make invalid ones null (counted) and blanks null."
    )
    example: ClassVar[str] = "normalize_email: [email]"
    shorthand: ClassVar[str | None] = "columns"

    def _candidate(self, text: pl.Expr) -> pl.Expr:
        return text.str.to_lowercase()

    def _valid(self, candidate: pl.Expr) -> pl.Expr:
        return candidate.str.contains(_EMAIL) & (candidate.str.len_chars() <= 254)


@register
class NormalizePhone(_Validated):
    name: ClassVar[str] = "normalize_phone"
    category: ClassVar[str] = "strings"
    description: ClassVar[str] = (
        "Rewrite phone numbers in E.164 form (+442079460958); invalid ones become null (counted)."
    )
    example: ClassVar[str] = 'normalize_phone: {columns: [phone], default_country_code: "44"}'
    shorthand: ClassVar[str | None] = "columns"
    default_country_code: str | None = Field(
        None,
        description="Country code for numbers written without one (44: 020 7946 0958 -> +442079460958); "
        "without it such numbers are invalid.",
    )
    trunk_prefix: str = Field(
        "0",
        pattern=r"^[0-9]*$",
        description="National prefix dropped before the country code (US: 1, Italy: '').",
    )
    international_prefix: str = Field(
        "00", pattern=r"^[0-9]*$", description="Dialling prefix that stands for + (US: 011; '' for none)."
    )

    @field_validator("default_country_code", mode="before")
    @classmethod
    def _code(cls, v: object) -> object:
        if isinstance(v, int) and not isinstance(v, bool):
            v = str(v)
        if isinstance(v, str):
            v = v.strip().removeprefix("+")
            if not re.fullmatch(r"[1-9][0-9]{0,2}", v):
                raise ValueError(f"default_country_code {v!r} is not a country calling code (1 to 3 digits)")
        return v

    def _candidate(self, text: pl.Expr) -> pl.Expr:
        text = text.str.normalize("NFKC").str.replace(r"(?i)\s*(?:ext\.?|extension|x|#)\s*[0-9]+$", "")
        plus = text.str.starts_with("+")
        digits = pl.when(plus).then(text.str.replace_all(r"\(0\)", "")).otherwise(text)
        digits = digits.str.replace_all(r"[^0-9]", "")
        number = pl.lit(None, dtype=pl.String)  # national, without a default country: invalid
        if self.default_country_code:
            rest = digits.str.strip_prefix(self.trunk_prefix) if self.trunk_prefix else digits
            number = pl.lit(self.default_country_code) + rest
        if self.international_prefix:
            prefix = self.international_prefix
            number = (
                pl.when(digits.str.starts_with(prefix))
                .then(digits.str.strip_prefix(prefix))
                .otherwise(number)
            )
        number = pl.when(plus).then(digits).otherwise(number)
        shaped = text.str.contains(r"^\+?[0-9\s\-.()/]+$")
        return pl.when(shaped).then(pl.lit("+") + number)

    def _valid(self, candidate: pl.Expr) -> pl.Expr:
        return candidate.str.contains(r"^\+[1-9][0-9]{6,14}$")


@register
class MapValues(_TextColumns):
    name: ClassVar[str] = "map_values"
    category: ClassVar[str] = "strings"
    description: ClassVar[str] = (
        "Standardise categories through a mapping; unmapped values kept, or set to a default."
    )
    example: ClassVar[str] = (
        "map_values: {columns: [category], mapping: {flowers: florist, photo: photographer}, "
        "case_insensitive: true}"
    )
    mapping: dict[str, Scalar] = Field(..., min_length=1, description="Value found -> standard value.")
    default: Scalar = Field(
        None, description="Value for non-null values not in the mapping (null allowed); omit to keep them."
    )
    case_insensitive: bool = Field(False, description="Match the mapping's keys ignoring case (lowercased).")

    @model_validator(mode="after")
    def _check(self) -> MapValues:
        kinds = self._kinds()
        if len(kinds) > 1:
            raise ValueError(f"mapping values (and default) mix types: {', '.join(sorted(kinds))}")
        if kinds and kinds != {"string"} and "default" not in self.model_fields_set:
            raise ValueError("mapping to non-text values needs a default (null allowed) for unmapped values")
        if self.case_insensitive:
            seen: dict[str, Scalar] = {}
            for key, value in self.mapping.items():
                if seen.setdefault(key.lower(), value) != value:
                    raise ValueError(f"keys that differ only in case map to different values: {key!r}")
        return self

    def _targets(self) -> list[Scalar]:
        return [*self.mapping.values(), *([self.default] if "default" in self.model_fields_set else [])]

    def _kinds(self) -> set[str]:
        kinds = {_kind(v) for v in self._targets()} - {None}
        return {"float"} if kinds == {"int", "float"} else kinds  # type: ignore[return-value]

    def _dtype(self) -> type[pl.DataType]:
        kind = next(iter(self._kinds()), "string")
        return {"string": pl.String, "bool": pl.Boolean, "int": pl.Int64, "float": pl.Float64}[kind]

    def _key(self, column: str) -> pl.Expr:
        return pl.col(column).str.to_lowercase() if self.case_insensitive else pl.col(column)

    def _lookup(self) -> dict[str, Scalar]:
        return (
            {k.lower(): v for k, v in self.mapping.items()} if self.case_insensitive else dict(self.mapping)
        )

    def _expr(self, column: str) -> pl.Expr:
        lookup = self._lookup()
        keep = "default" not in self.model_fields_set
        default = pl.col(column) if keep else pl.lit(self.default, dtype=self._dtype())
        mapped = self._key(column).replace_strict(
            list(lookup), list(lookup.values()), default=default, return_dtype=self._dtype()
        )
        return pl.when(pl.col(column).is_not_null()).then(mapped)  # null stays null, even with a default

    def counters(self, schema: pl.Schema) -> dict[str, pl.Expr]:
        """Per column, how many non-null values the mapping did not cover (kept, or set to the default)."""
        keys = list(self._lookup())
        return {
            f"{c}_unmapped": (pl.col(c).is_not_null() & ~self._key(c).is_in(keys)).sum() for c in self.columns
        }


def _kind(value: Scalar) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    return "string" if isinstance(value, str) else "int" if isinstance(value, int) else "float"
