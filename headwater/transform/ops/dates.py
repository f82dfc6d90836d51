"""Date and time ops."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
from pydantic import Field, field_validator, model_validator

from headwater.transform.lineage import Kind, Lineage, made_from
from headwater.transform.registry import Op, OpContext, register

Columns = list[str]
Ambiguous = Literal["earliest", "latest", "null", "raise"]
_AMBIGUOUS_DOC = "A local time that occurs twice (DST ends): earliest, latest, null or raise."
_OFFSET = re.compile(r"%[#:]*z")


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as Europe/Paris or UTC"
        ) from None
    return name


def _is_datetime(dtype: pl.DataType) -> bool:
    return isinstance(dtype, pl.Datetime)


def _zone_of(dtype: pl.DataType) -> str | None:
    return dtype.time_zone if isinstance(dtype, pl.Datetime) else None


def _temporal(op: str, column: str, dtype: pl.DataType, dates: bool = True) -> None:
    if not (_is_datetime(dtype) or (dates and dtype == pl.Date)):
        wanted = "a date or datetime" if dates else "a datetime"
        raise pl.exceptions.SchemaError(f"{op}: column {column!r} is {dtype}, not {wanted}")


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
    strict: bool = Field(
        True,
        description="Fail on parts that make no date (2023-02-29); false: null, counted (years 1-9999).",
    )

    def _date(self) -> pl.Expr:
        y, m, d = (pl.col(c).cast(pl.Int64, strict=self.strict) for c in (self.year, self.month, self.day))
        if self.strict:
            return pl.date(y, m, d)
        month_ok = y.is_between(1, 9999) & m.is_between(1, 12)
        safe_y, safe_m = pl.when(month_ok).then(y).otherwise(2000), pl.when(month_ok).then(m).otherwise(1)
        ok = month_ok & d.is_between(1, pl.date(safe_y, safe_m, 1).dt.days_in_month())
        made = pl.date(safe_y, safe_m, pl.when(ok).then(d).otherwise(1))
        return pl.when(ok).then(made)

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        return frame.with_columns(self._date().alias(self.output))

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {self.output: made_from([self.year, self.month, self.day], Kind.CALCULATION)}

    def counters(self, schema: pl.Schema) -> dict[str, pl.Expr]:
        """With strict: false, rows whose parts are all present but make no date."""
        if self.strict:
            return {}
        present = pl.all_horizontal(pl.col(c).is_not_null() for c in (self.year, self.month, self.day))
        return {f"{self.output}_invalid": (present & self._date().is_null()).sum()}


@register
class ParseDatetime(Op):
    name: ClassVar[str] = "parse_datetime"
    category: ClassVar[str] = "dates"
    description: ClassVar[str] = (
        "Parse strings into dates or datetimes, trying formats in order; unparseable values become null."
    )
    example: ClassVar[str] = 'parse_datetime: {column: sold_at, formats: ["%Y-%m-%d %H:%M", "%d/%m/%Y"]}'
    column: str = Field(..., description="The string column to parse.")
    formats: list[str] = Field(
        ..., min_length=1, description="strftime formats tried in order; the first that parses wins."
    )
    to: Literal["datetime", "date"] = Field("datetime", description="Make datetimes or dates.")
    time_zone: str | None = Field(
        None,
        description="Zone of the result: times without an offset are local times there, times with "
        "one (%z) are converted. Without it, %z formats give UTC.",
    )
    ambiguous: Ambiguous = Field("earliest", description=_AMBIGUOUS_DOC)
    output: str | None = Field(None, alias="as", description="New column name (default: replace column).")

    @field_validator("formats")
    @classmethod
    def _formats(cls, v: list[str]) -> list[str]:
        for fmt in v:
            offset = bool(_OFFSET.search(fmt))
            sample = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC if offset else None)
            try:
                text = pl.Series([sample]).dt.strftime(fmt)
                back = text.str.to_datetime(fmt, strict=False).dt.date().item()
            except pl.exceptions.PolarsError:
                back = None
            if back != sample.date():
                raise ValueError(f"format {fmt!r} does not read a full date (year, month and day)")
        return v

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        return v if v is None else _zone(v)

    @model_validator(mode="after")
    def _offsets(self) -> ParseDatetime:
        offsets = {bool(_OFFSET.search(f)) for f in self.formats}
        if len(offsets) > 1 and self.time_zone is None:
            raise ValueError("formats with an offset (%z) and without one need a time_zone to agree on")
        return self

    def _parsed(self) -> pl.Expr:
        tries = []
        for fmt in self.formats:
            e = pl.col(self.column).str.to_datetime(fmt, time_unit="us", strict=False)
            if self.time_zone and _OFFSET.search(fmt):
                e = e.dt.convert_time_zone(self.time_zone)
            elif self.time_zone:
                e = e.dt.replace_time_zone(self.time_zone, ambiguous=self.ambiguous, non_existent="null")
            tries.append(e.dt.date() if self.to == "date" else e)
        return pl.coalesce(tries)

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        dtype = frame.collect_schema()[self.column]
        if dtype != pl.String:
            raise pl.exceptions.SchemaError(f"parse_datetime: column {self.column!r} is {dtype}, not text")
        return frame.with_columns(self._parsed().alias(self.output or self.column))

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {self.output or self.column: made_from([self.column], Kind.CALCULATION)}

    def counters(self, schema: pl.Schema) -> dict[str, pl.Expr]:
        """Values that no format read (or local times that do not exist in time_zone): now null."""
        return {
            f"{self.column}_unparsed": (pl.col(self.column).is_not_null() & self._parsed().is_null()).sum()
        }


@register
class ConvertTimezone(Op):
    name: ClassVar[str] = "convert_timezone"
    category: ClassVar[str] = "dates"
    description: ClassVar[str] = (
        "Convert datetimes to another time zone; datetimes without a zone are first read as local to `from`."
    )
    example: ClassVar[str] = "convert_timezone: {columns: [time_hour], from: America/New_York, to: UTC}"
    columns: Columns = Field(..., min_length=1, description="Datetime columns to convert, in place.")
    to: str = Field(..., description="Target IANA time zone, e.g. UTC or Europe/Paris.")
    from_: str | None = Field(
        None, alias="from", description="Zone of the columns without one (a zone-aware column keeps its own)."
    )
    ambiguous: Ambiguous = Field("earliest", description=_AMBIGUOUS_DOC)

    @field_validator("to", "from_")
    @classmethod
    def _zones(cls, v: str | None) -> str | None:
        return v if v is None else _zone(v)

    def _converted(self, column: str, dtype: pl.DataType) -> pl.Expr:
        _temporal("convert_timezone", column, dtype, dates=False)
        e = pl.col(column)
        if _zone_of(dtype) is None:
            if self.from_ is None:
                raise pl.exceptions.SchemaError(
                    f"convert_timezone: column {column!r} has no time zone; say which with `from`"
                )
            e = e.dt.replace_time_zone(self.from_, ambiguous=self.ambiguous, non_existent="null")
        return e.dt.convert_time_zone(self.to)

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        schema = frame.collect_schema()
        return frame.with_columns(self._converted(c, schema[c]).alias(c) for c in self.columns)

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {c: made_from([c], Kind.CALCULATION) for c in self.columns}

    def counters(self, schema: pl.Schema) -> dict[str, pl.Expr]:
        """Local times that do not exist in `from` (skipped by a DST change), or ambiguous ones with
        ambiguous: null, now null."""
        if self.from_ is None:
            return {}
        naive = [c for c in self.columns if _is_datetime(schema[c]) and _zone_of(schema[c]) is None]
        return {
            f"{c}_not_local_time": (pl.col(c).is_not_null() & self._converted(c, schema[c]).is_null()).sum()
            for c in naive
        }


_TRUNCATE = {"day": "1d", "week": "1w", "month": "1mo", "quarter": "1q", "year": "1y"}


@register
class TruncateDate(Op):
    name: ClassVar[str] = "truncate_date"
    category: ClassVar[str] = "dates"
    description: ClassVar[str] = (
        "Round dates or datetimes down to the start of their day, week (Monday), month, quarter or year."
    )
    example: ClassVar[str] = "truncate_date: {columns: [flight_date], unit: month}"
    columns: Columns = Field(..., min_length=1, description="Date or datetime columns, changed in place.")
    unit: Literal["day", "week", "month", "quarter", "year"] = Field(
        ..., description="Truncate to this unit; zone-aware datetimes go to local midnight."
    )

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        schema = frame.collect_schema()
        for c in self.columns:
            _temporal("truncate_date", c, schema[c])
        return frame.with_columns(pl.col(c).dt.truncate(_TRUNCATE[self.unit]) for c in self.columns)

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {c: made_from([c], Kind.CALCULATION) for c in self.columns}


_PARTS: dict[str, str] = {
    "year": "year",
    "quarter": "quarter",
    "month": "month",
    "week": "week",  # ISO week number
    "day": "day",
    "weekday": "weekday",  # ISO: Monday 1 .. Sunday 7
    "day_of_year": "ordinal_day",
    "hour": "hour",
    "minute": "minute",
    "second": "second",
}
_TIME_PARTS = {"hour", "minute", "second"}
Part = Literal[
    "year", "quarter", "month", "week", "day", "weekday", "day_of_year", "hour", "minute", "second"
]


@register
class DatePart(Op):
    name: ClassVar[str] = "date_part"
    category: ClassVar[str] = "dates"
    description: ClassVar[str] = (
        "Extract parts of a date or datetime (year, quarter, month, ISO week, weekday, hour...) as columns."
    )
    example: ClassVar[str] = "date_part: {column: flight_date, parts: [year, month, weekday]}"
    column: str = Field(..., description="The date or datetime column (zone-aware: parts of local time).")
    parts: list[Part] = Field(
        ...,
        min_length=1,
        description="Parts: year, quarter, month, week (ISO), day, weekday (Mon=1..Sun=7), day_of_year, "
        "hour, minute, second.",
    )
    prefix: str | None = Field(None, description="Prefix of the new columns (default: '<column>_').")

    def _name(self, part: str) -> str:
        return f"{self.prefix if self.prefix is not None else self.column + '_'}{part}"

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        dtype = frame.collect_schema()[self.column]
        _temporal("date_part", self.column, dtype)
        if dtype == pl.Date and _TIME_PARTS & set(self.parts):
            raise pl.exceptions.SchemaError(
                f"date_part: column {self.column!r} is a date: it has no time parts"
            )
        col = pl.col(self.column).dt
        return frame.with_columns(
            getattr(col, _PARTS[p])().cast(pl.Int32).alias(self._name(p)) for p in self.parts
        )

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {self._name(p): made_from([self.column], Kind.CALCULATION) for p in self.parts}


@register
class DateDiff(Op):
    name: ClassVar[str] = "date_diff"
    category: ClassVar[str] = "dates"
    description: ClassVar[str] = (
        "Elapsed time from a start to an end date/datetime column in days, hours, minutes or seconds."
    )
    example: ClassVar[str] = "date_diff: {start: ordered_at, end: shipped_at, unit: hours, as: hours_to_ship}"
    start: str = Field(..., description="The earlier date or datetime column.")
    end: str = Field(..., description="The later one; end before start gives a negative difference.")
    unit: Literal["days", "hours", "minutes", "seconds"] = Field(
        "days", description="Unit of the result; a day is 24 hours of elapsed time (also across DST)."
    )
    fractional: bool = Field(False, description="Give a float; false: whole units, truncated toward zero.")
    output: str = Field(..., alias="as", description="Name of the new column.")

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        schema = frame.collect_schema()
        types = [schema[self.start], schema[self.end]]
        for column, dtype in zip((self.start, self.end), types, strict=True):
            _temporal("date_diff", column, dtype)
        zoned = [_zone_of(t) is not None for t in types]
        if any(zoned) and not all(zoned):
            raise pl.exceptions.SchemaError(
                f"date_diff: one of {self.start!r}, {self.end!r} has a time zone and the other not; "
                "use convert_timezone first"
            )
        start, end = (
            pl.col(c).dt.convert_time_zone("UTC") if z else pl.col(c).cast(pl.Datetime("us"))
            for c, z in zip((self.start, self.end), zoned, strict=True)
        )
        total = getattr((end - start).dt, f"total_{self.unit}")(fractional=self.fractional)
        return frame.with_columns(total.alias(self.output))

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        return {self.output: made_from([self.start, self.end], Kind.CALCULATION)}


@register
class Age(Op):
    name: ClassVar[str] = "age"
    category: ClassVar[str] = "dates"
    description: ClassVar[str] = "Whole years from a birth date to a reference date column or a fixed date."
    example: ClassVar[str] = "age: {birth: born_on, at: 2026-01-01, as: age_at_new_year}"
    birth: str = Field(..., description="The birth date (or datetime) column.")
    on: str | None = Field(None, description="Reference date column (give on or at).")
    at: date | None = Field(
        None, description="A fixed reference date (give on or at); never today implicitly."
    )
    leap_birthdays: Literal["mar_1", "feb_28"] = Field(
        "mar_1", description="When someone born on Feb 29 turns a year older in common years."
    )
    output: str = Field(
        ..., alias="as", description="Name of the new column; null if born after the reference."
    )

    @model_validator(mode="after")
    def _reference(self) -> Age:
        if (self.on is None) == (self.at is None):
            raise ValueError("give the reference date as either on (a column) or at (a date)")
        return self

    def _dates(self, schema: pl.Schema) -> tuple[pl.Expr, pl.Expr]:
        out = []
        for column in (self.birth, self.on):
            if column is None:
                out.append(pl.lit(self.at, pl.Date))
                continue
            _temporal("age", column, schema[column])
            out.append(pl.col(column).dt.date() if _is_datetime(schema[column]) else pl.col(column))
        return out[0], out[1]

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        born, ref = self._dates(frame.collect_schema())
        born_md = born.dt.month().cast(pl.Int32) * 100 + born.dt.day()
        if self.leap_birthdays == "feb_28":
            born_md = pl.when((born_md == 229) & ~ref.dt.is_leap_year()).then(228).otherwise(born_md)
        ref_md = ref.dt.month().cast(pl.Int32) * 100 + ref.dt.day()
        years = ref.dt.year() - born.dt.year() - (ref_md < born_md).cast(pl.Int32)
        return frame.with_columns(pl.when(born <= ref).then(years).alias(self.output))

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        sources = [self.birth] if self.on is None else [self.birth, self.on]
        return {self.output: made_from(sources, Kind.CALCULATION)}

    def counters(self, schema: pl.Schema) -> dict[str, pl.Expr]:
        """Rows born after their reference date (age null)."""
        born, ref = self._dates(schema)
        return {f"{self.output}_born_after_reference": (born > ref).sum()}
