"""Privacy ops: de-identification (HIPAA Safe Harbor) and masking.

Keyed hashes are HMAC-SHA256 with a secret salt as the key. Polars has no cryptographic hash
expression (`Expr.hash` is neither cryptographic nor stable across versions), so they are computed
batch-wise: `map_batches` takes a column's distinct values, hashes each with `hmac.digest` (OpenSSL)
and joins the digests back. That is a loop over distinct values, not rows: about 2 µs per distinct
value on one core (a million distinct ids take ~2 s; a million rows of 1,000 ids ~0.05 s)."""

from __future__ import annotations

import hmac
import re
from typing import Any, ClassVar, Literal

import polars as pl
from pydantic import Field, SecretStr, field_validator, model_validator

from headwater.transform.lineage import Kind, Lineage, made_from
from headwater.transform.registry import Op, OpContext, register

Columns = list[str]
MIN_SALT = 16
_ENV_PLACEHOLDER = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")


class _Salted(Op):
    """An op keyed by a secret salt. A bare `${NAME}` passes validation (docs and examples show it;
    the spec loader always interpolates it) but is refused when the op is applied."""

    salt: SecretStr = Field(
        ...,
        description=f'The secret key, at least {MIN_SALT} characters, from the environment: "${{HASH_SALT}}"',
    )

    @field_validator("salt")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        if not _ENV_PLACEHOLDER.match(text) and len(text) < MIN_SALT:
            raise ValueError(f"salt must be at least {MIN_SALT} characters; set it from ${{HASH_SALT}}")
        return value

    def key(self) -> bytes:
        text = self.salt.get_secret_value()
        if _ENV_PLACEHOLDER.match(text):
            raise ValueError(f"{self.name}: salt {text} was not interpolated; load the spec with headwater")
        return text.encode()


def _text(column: str, dtype: pl.DataType, op: str) -> pl.Expr:
    if dtype.is_nested() or dtype == pl.Binary:
        raise pl.exceptions.SchemaError(f"{op}: column {column!r} is {dtype}; it takes scalar values")
    return pl.col(column) if dtype == pl.String else pl.col(column).cast(pl.String)


class _Digests:
    """HMAC-SHA256 hex of each value's text, computed once per distinct value. The key stays out
    of reprs (Polars shows a UDF as `python_udf()`, and this class hides it too)."""

    def __init__(self, key: bytes, column: str, prefix: str = "", length: int = 64, unique: bool = False):
        self._key, self.column, self.prefix, self.length, self.unique = key, column, prefix, length, unique

    def __repr__(self) -> str:
        return f"_Digests({self.column!r})"

    def __call__(self, text: pl.Series) -> pl.Series:
        distinct = text.drop_nulls().unique()
        digests = pl.Series(
            [
                self.prefix + hmac.digest(self._key, v.encode(), "sha256").hex()[: self.length]
                for v in distinct
            ],
            dtype=pl.String,
        )
        if self.unique and digests.n_unique() < distinct.len():
            raise pl.exceptions.ComputeError(
                f"pseudonymize: {distinct.len() - digests.n_unique()} distinct values of {self.column!r} "
                f"share a pseudonym of {self.length} hex digits; use a longer length"
            )
        mapping = pl.DataFrame({"k": distinct, "h": digests})
        joined = pl.DataFrame({"k": text}).join(mapping, on="k", how="left", maintain_order="left")
        return joined["h"].alias(text.name)


def _digest_expr(text: pl.Expr, digests: _Digests) -> pl.Expr:
    return text.map_batches(digests, return_dtype=pl.String, is_elementwise=True)


@register
class HashColumns(_Salted):
    name: ClassVar[str] = "hash_columns"
    category: ClassVar[str] = "privacy"
    description: ClassVar[str] = "Replace values by their keyed hash: HMAC-SHA256 (hex) with a secret salt."
    example: ClassVar[str] = 'hash_columns: {columns: [email], salt: "${HASH_SALT}"}'
    columns: Columns = Field(..., min_length=1, description="Columns to hash (values hashed as text).")

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        schema, key = frame.collect_schema(), self.key()
        return frame.with_columns(
            _digest_expr(_text(c, schema[c], self.name), _Digests(key, c)).alias(c) for c in self.columns
        )

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {c: made_from([c], Kind.DERIVED) for c in self.columns}


@register
class Pseudonymize(_Salted):
    name: ClassVar[str] = "pseudonymize"
    category: ClassVar[str] = "privacy"
    description: ClassVar[str] = (
        "Replace ids by stable pseudonyms: prefix + the first hex digits of their keyed hash."
    )
    example: ClassVar[str] = 'pseudonymize: {columns: [patient_id], prefix: P-, salt: "${HASH_SALT}"}'
    columns: Columns = Field(
        ..., min_length=1, description="Id columns to replace (same id, same pseudonym)."
    )
    prefix: str = Field("", max_length=20, description='Text before the digits, e.g. "P-".')
    length: int = Field(
        16, ge=8, le=64, description="Hex digits kept; a collision between two ids fails the step."
    )

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        schema, key = frame.collect_schema(), self.key()
        return frame.with_columns(
            _digest_expr(
                _text(c, schema[c], self.name), _Digests(key, c, self.prefix, self.length, unique=True)
            ).alias(c)
            for c in self.columns
        )

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {c: made_from([c], Kind.DERIVED) for c in self.columns}


@register
class Mask(Op):
    name: ClassVar[str] = "mask"
    category: ClassVar[str] = "privacy"
    description: ClassVar[str] = "Mask values except their first and/or last characters, e.g. XXX-XX-6789."
    example: ClassVar[str] = "mask: {columns: [ssn], keep_last: 4}"
    shorthand: ClassVar[str | None] = "columns"
    columns: Columns = Field(..., min_length=1, description="Columns to mask (non-text values as text).")
    keep_last: int = Field(4, ge=0, le=100, description="Characters kept at the end.")
    keep_first: int = Field(0, ge=0, le=100, description="Characters kept at the start.")
    char: str = Field("X", min_length=1, max_length=1, description="The masking character.")
    keep_separators: bool = Field(
        True, description="Mask only letters and digits, keeping dashes, spaces, dots as they are."
    )

    def _masked(self, text: pl.Expr) -> pl.Expr:
        maskable = r"[\p{L}\p{N}]" if self.keep_separators else r"(?s)."
        char = self.char.replace("$", "$$")
        kept = self.keep_first + self.keep_last
        length = text.str.len_chars()
        middle = text.str.slice(self.keep_first, length - kept).str.replace_all(maskable, char)
        partly = pl.concat_str(text.str.head(self.keep_first), middle, text.str.tail(self.keep_last))
        # a value no longer than what is kept would be shown whole: mask it all
        return pl.when(length <= kept).then(text.str.replace_all(maskable, char)).otherwise(partly)

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        schema = frame.collect_schema()
        return frame.with_columns(self._masked(_text(c, schema[c], self.name)).alias(c) for c in self.columns)

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {c: made_from([c], Kind.CALCULATION) for c in self.columns}


@register
class GeneralizeDate(Op):
    name: ClassVar[str] = "generalize_date"
    category: ClassVar[str] = "privacy"
    description: ClassVar[str] = (
        "Keep only the year of dates (Safe Harbor) or the month (not Safe Harbor), as date, integer or text."
    )
    example: ClassVar[str] = "generalize_date: {columns: [service_date], to: year, format: integer}"
    shorthand: ClassVar[str | None] = "columns"
    columns: Columns = Field(..., min_length=1, description="Date or datetime columns, changed in place.")
    to: Literal["year", "month"] = Field(
        "year", description="year: Safe Harbor; month keeps a date element Safe Harbor removes."
    )
    format: Literal["date", "integer", "text"] = Field(
        "date",
        description="date: truncated, same type; integer: 2024 (month: 202403); text: 2024 (month: 2024-03).",
    )

    def _generalized(self, column: str, dtype: pl.DataType) -> pl.Expr:
        if dtype != pl.Date and not isinstance(dtype, pl.Datetime):
            raise pl.exceptions.SchemaError(
                f"generalize_date: column {column!r} is {dtype}, not a date; cast it to date first"
            )
        col = pl.col(column)
        if self.format == "date":
            return col.dt.truncate("1y" if self.to == "year" else "1mo")
        if self.format == "integer":
            year = col.dt.year().cast(pl.Int32)
            return year if self.to == "year" else year * 100 + col.dt.month().cast(pl.Int32)
        return col.dt.strftime("%Y" if self.to == "year" else "%Y-%m")

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        schema = frame.collect_schema()
        return frame.with_columns(self._generalized(c, schema[c]).alias(c) for c in self.columns)

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {c: made_from([c], Kind.CALCULATION) for c in self.columns}


SAFE_HARBOR_ZIP3 = (
    "036", "059", "063", "102", "203", "556", "692", "790", "821",
    "823", "830", "831", "878", "879", "884", "890", "893",
)  # fmt: skip
"""3-digit ZIP prefixes of areas with 20,000 people or fewer (HHS Safe Harbor guidance, 2000 census)."""
_ZIP = r"^([0-9]{3,5})(?:[- ]?([0-9]{4}))?$"
"""ZIP or ZIP+4, allowing leading zeros lost to an integer type or a spreadsheet (02134 -> 2134)."""


@register
class GeneralizeZip(Op):
    name: ClassVar[str] = "generalize_zip"
    category: ClassVar[str] = "privacy"
    description: ClassVar[str] = (
        "US ZIP codes to their first 3 digits, 000 for the sparsely populated prefixes (Safe Harbor)."
    )
    example: ClassVar[str] = "generalize_zip: [zip]"
    shorthand: ClassVar[str | None] = "columns"
    columns: Columns = Field(
        ..., min_length=1, description="ZIP or ZIP+4 columns, text or integer; invalid values become null."
    )
    restricted: list[str] = Field(
        default_factory=lambda: list(SAFE_HARBOR_ZIP3),
        description="Prefixes written as 000 (default: the 17 of the Safe Harbor guidance).",
    )

    @field_validator("restricted")
    @classmethod
    def _three_digits(cls, v: list[str]) -> list[str]:
        bad = [p for p in v if not re.fullmatch(r"[0-9]{3}", str(p))]
        if bad:
            raise ValueError(f"restricted prefixes must be 3 digits as text, e.g. '036'; not {bad}")
        return v

    def _zip3(self, column: str, dtype: pl.DataType) -> pl.Expr:
        if dtype != pl.String and not dtype.is_integer():
            raise pl.exceptions.SchemaError(
                f"generalize_zip: column {column!r} is {dtype}, not text or integer"
            )
        five = pl.col(column).cast(pl.String).str.strip_chars().str.extract(_ZIP, 1)
        prefix = five.str.zfill(5).str.head(3)
        return pl.when(prefix.is_in(self.restricted)).then(pl.lit("000")).otherwise(prefix)

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        schema = frame.collect_schema()
        return frame.with_columns(self._zip3(c, schema[c]).alias(c) for c in self.columns)

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {c: made_from([c], Kind.CALCULATION) for c in self.columns}

    def counters(self, schema: pl.Schema) -> dict[str, pl.Expr]:
        """Values that are not a ZIP or ZIP+4 (now null), per column."""
        return {
            f"{c}_invalid": (pl.col(c).is_not_null() & self._zip3(c, schema[c]).is_null()).sum()
            for c in self.columns
        }


@register
class GeneralizeAge(Op):
    name: ClassVar[str] = "generalize_age"
    category: ClassVar[str] = "privacy"
    description: ClassVar[str] = (
        "Ages of 90 and over become 90 (or a label such as 90+); optionally ages in bands (40-49)."
    )
    example: ClassVar[str] = "generalize_age: {columns: [age], width: 10}"
    shorthand: ClassVar[str | None] = "columns"
    columns: Columns = Field(..., min_length=1, description="Age columns in years (integer or float).")
    width: int | None = Field(
        None,
        ge=2,
        le=90,
        description='Band width in years: text labels "0-9"... up to 89, then the top label.',
    )
    top_label: str | None = Field(
        None,
        min_length=1,
        description='Label for 90 and over, e.g. "90+" (makes the column text; default 90).',
    )

    def _generalized(self, column: str, dtype: pl.DataType) -> pl.Expr:
        if not dtype.is_numeric() or dtype.is_decimal():
            raise pl.exceptions.SchemaError(f"generalize_age: column {column!r} is {dtype}, not a number")
        age = pl.col(column).fill_nan(None) if dtype.is_float() else pl.col(column)
        old, valid = age >= 90, age >= 0  # NaN and negative ages are not ages: null
        if self.width is None and self.top_label is None:
            return pl.when(old).then(pl.lit(90).cast(dtype)).when(valid).then(age)
        years = age.floor().cast(pl.Int64, strict=False)
        label = years.cast(pl.String)
        if self.width is not None:
            low = years // self.width * self.width
            label = pl.concat_str(low, pl.lit("-"), pl.min_horizontal(low + self.width - 1, 89))
        top = self.top_label or ("90+" if self.width is not None else "90")
        return pl.when(old).then(pl.lit(top)).when(valid).then(label)

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        schema = frame.collect_schema()
        return frame.with_columns(self._generalized(c, schema[c]).alias(c) for c in self.columns)

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {c: made_from([c], Kind.CALCULATION) for c in self.columns}

    def counters(self, schema: pl.Schema) -> dict[str, pl.Expr]:
        """Values that are not ages (negative, NaN), now null, per column."""
        return {
            f"{c}_invalid": (pl.col(c).is_not_null() & self._generalized(c, schema[c]).is_null()).sum()
            for c in self.columns
        }


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_HEX = r"[0-9A-Fa-f]{1,4}"
PATTERNS: dict[str, str] = {
    "url": r"(?i)\b(?:https?://|ftp://|www\.)[^\s<>\"']*[^\s<>\"'.,;:!?)\]]",
    "email": r"[\p{L}\p{N}._%+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)*\.\p{L}{2,}",
    "ip": rf"\b(?:{_OCTET}\.){{3}}{_OCTET}\b|\b(?:{_HEX}:){{7}}{_HEX}\b"
    rf"|\b(?:{_HEX}:){{1,6}}:(?:{_HEX}(?::{_HEX}){{0,5}})?|::(?:{_HEX}:){{0,5}}{_HEX}\b",
    "ssn": r"\b[0-9]{3}[- ][0-9]{2}[- ][0-9]{4}\b",
    "phone": r"(?:\+?1[\s.-]?)?(?:\([0-9]{3}\)\s?|\b[0-9]{3}[\s.-])[0-9]{3}[\s.-][0-9]{4}\b"
    r"|\+[0-9]{1,3}(?:[\s.-]?[0-9]{2,4}){2,5}\b",
}
"""Rust regex syntax (no look-around); applied in this order, so an email inside a URL goes with it.
Names are not found: free text that may name people needs dropping (or NLP), not these."""
Kind_ = Literal["url", "email", "ip", "ssn", "phone"]
KINDS: list[Kind_] = ["url", "email", "ip", "ssn", "phone"]


def _check_regex(pattern: str) -> None:
    try:
        pl.select(pl.lit("").str.contains(pattern))
    except pl.exceptions.PolarsError as exc:
        raise ValueError(f"not a valid regex: {pattern!r}: {str(exc).splitlines()[0]}") from None


@register
class RedactText(Op):
    name: ClassVar[str] = "redact_text"
    category: ClassVar[str] = "privacy"
    description: ClassVar[str] = (
        "Replace emails, phone numbers, SSNs, URLs and IP addresses inside free text by [EMAIL], [PHONE]..."
    )
    example: ClassVar[str] = "redact_text: {columns: [notes], patterns: {MRN: 'MRN[:# ]*[0-9]+'}}"
    shorthand: ClassVar[str | None] = "columns"
    columns: Columns = Field(..., min_length=1, description="Text columns to redact in place.")
    kinds: list[Kind_] = Field(
        default_factory=lambda: list(KINDS), description="Which of url, email, ip, ssn, phone to replace."
    )
    patterns: dict[str, str] = Field(
        default_factory=dict,
        description="More: TOKEN -> regex (Rust syntax), replaced by [TOKEN] after the built-in kinds.",
    )

    @field_validator("patterns")
    @classmethod
    def _patterns(cls, v: dict[str, str]) -> dict[str, str]:
        for token, pattern in v.items():
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", token):
                raise ValueError(f"token {token!r} must be letters, digits and underscores")
            _check_regex(pattern)
        return v

    @model_validator(mode="after")
    def _something(self) -> RedactText:
        if not self.kinds and not self.patterns:
            raise ValueError("give at least one kind or pattern to redact")
        return self

    def _rules(self) -> list[tuple[str, str]]:
        order = [k for k in PATTERNS if k in self.kinds]
        return [*((k.upper(), PATTERNS[k]) for k in order), *self.patterns.items()]

    def _text(self, column: str, dtype: pl.DataType) -> pl.Expr:
        if dtype != pl.String:
            raise pl.exceptions.SchemaError(f"redact_text: column {column!r} is {dtype}, not text")
        return pl.col(column)

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        schema = frame.collect_schema()
        out = []
        for c in self.columns:
            text = self._text(c, schema[c])
            for token, pattern in self._rules():
                text = text.str.replace_all(pattern, f"[{token}]")
            out.append(text.alias(c))
        return frame.with_columns(out)

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {c: made_from([c], Kind.CALCULATION) for c in self.columns}

    def counters(self, schema: pl.Schema) -> dict[str, pl.Expr]:
        """How many of each kind were replaced, per column (counted in the order they are replaced)."""
        out: dict[str, Any] = {}
        for c in self.columns:
            text = self._text(c, schema[c])
            for token, pattern in self._rules():
                out[f"{c}_{token.lower()}"] = text.str.count_matches(pattern).sum()
                text = text.str.replace_all(pattern, f"[{token}]")
        return out
