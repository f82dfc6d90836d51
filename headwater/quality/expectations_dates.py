"""Date strings: strftime formats (Python's strptime, exactly) and dateutil-parseable values (the
common shapes), checked with vectorised Polars regexes plus calendar arithmetic."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import ClassVar

import polars as pl
from pydantic import field_validator

from headwater.quality.expectations_base import ColumnMap, QualityContext, register, string_column

# Directives that fill the day of the year from week numbers: their validity rules are not mirrored.
_UNSUPPORTED = {"j": "day of the year", "U": "week number", "W": "week number", "G": "ISO year"}
_UNSUPPORTED |= {"V": "ISO week", "u": "ISO weekday"}
_ALL, _OK = "hw_all", "hw_ok"  # the whole match; the verdict, added to the groups' struct
_PROBE = datetime(2001, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)  # GX probes with now(); a fixed time here


def _int(group: pl.Expr) -> pl.Expr:
    return group.str.strip_chars().cast(pl.Int32, strict=False)


def calendar_ok(year: pl.Expr, month: pl.Expr, day: pl.Expr) -> pl.Expr:
    """The proleptic Gregorian calendar has this year (1-9999), month and day."""
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    days = (
        pl.when(month == 2)
        .then(pl.when(leap).then(29).otherwise(28))
        .when(month.is_in([4, 6, 9, 11]))
        .then(30)
        .otherwise(31)
    )
    return (year >= 1) & (year <= 9999) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= days)


def _months(names: list[str]) -> dict[str, int]:
    return {name.lower(): i for i, name in enumerate(names, start=1) if name}


@functools.lru_cache(maxsize=128)
def strptime_regex(strftime_format: str) -> tuple[str, tuple[str, ...]]:
    """The regex Python's `datetime.strptime` matches the format with (its own, from `_strptime`),
    anchored and case-insensitive for Polars, and its directive groups in order. Raises ValueError
    for a format GX rejects or Headwater cannot mirror."""
    import _strptime

    try:  # GX's own check: a time formatted with the format parses back with it
        datetime.strptime(datetime.strftime(_PROBE, strftime_format), strftime_format)
        pattern = _strptime.TimeRE().pattern(strftime_format)
        groups = tuple(re.compile(pattern, re.IGNORECASE).groupindex)
    except (ValueError, re.error) as exc:
        raise ValueError(f"Unable to use provided strftime_format {strftime_format!r}: {exc}") from None
    unsupported = [f"%{g} ({_UNSUPPORTED[g]})" for g in groups if g in _UNSUPPORTED]
    if unsupported:
        raise ValueError(
            f"strftime_format {strftime_format!r} uses {', '.join(unsupported)}: Headwater checks dates "
            "from year, month and day directives only"
        )
    regex = f"(?i)^(?P<{_ALL}>{pattern})$"
    try:
        pl.select(pl.lit("").str.contains(regex))
    except pl.exceptions.PolarsError as exc:
        raise ValueError(
            f"strftime_format {strftime_format!r} gives a regex Polars cannot run: {exc}"
        ) from None
    return regex, groups


def _verdict(col: pl.Expr, regex: str, verdict: pl.Expr) -> pl.Expr:
    """`verdict`, written with pl.field(<group>), on the regex's groups: extracted once, as a struct
    (struct.field on the extraction would run the regex once per field)."""
    groups = col.str.extract_groups(regex)
    return groups.struct.with_fields(verdict.alias(_OK)).struct.field(_OK).fill_null(False)


def strptime_ok(col: pl.Expr, strftime_format: str) -> pl.Expr:
    """True where `datetime.strptime(value, strftime_format)` succeeds: the value matches Python's
    regex for the format in full, and the date and time it names exist (a missing year is 1900, so
    '02-29' fails with '%m-%d', as in Python)."""
    import _strptime

    regex, groups = strptime_regex(strftime_format)
    g = pl.field
    locale = _strptime.LocaleTime()
    year, month, day = pl.lit(1900), pl.lit(1), pl.lit(1)
    for name in groups:  # Python keeps the last of several directives for one field
        if name == "Y":
            year = _int(g("Y"))
        elif name == "y":
            yy = _int(g("y"))
            year = pl.when(yy <= 68).then(yy + 2000).otherwise(yy + 1900)
        elif name == "m":
            month = _int(g("m"))
        elif name in ("b", "B"):
            names = _months(locale.a_month[1:] if name == "b" else locale.f_month[1:])
            month = g(name).str.to_lowercase().replace_strict(names, default=None, return_dtype=pl.Int32)
        elif name == "d":
            day = _int(g("d"))
    ok = g(_ALL).is_not_null() & calendar_ok(year, month, day)
    if "S" in groups:  # the regex allows 60 and 61; datetime() does not
        ok = ok & (_int(g("S")) <= 59)
    if "z" in groups:  # +HH:MM[:SS[.f]] or +HHMM[SS[.f]], under 24 hours; the regex allows more
        z = g("z")
        form = z.str.contains(r"^(Z|[+-]\d\d:\d\d(:\d\d(\.\d{1,6})?)?|[+-]\d\d\d\d(\d\d(\.\d{1,6})?)?)$")
        ok = ok & (z.is_null() | (z == "Z") | (form & (_int(z.str.slice(1, 2)) <= 23)))
    return _verdict(col, regex, ok)


@register
class MatchStrftimeFormat(ColumnMap):
    """Exactly Python's `datetime.strptime(value, strftime_format)` (what GX runs per value), as a
    vectorised regex from Python's own `_strptime` plus calendar checks, not Polars' chrono parser,
    which differs from Python: it accepts a signed or 5-digit %Y, second 60, 7-9 fraction digits,
    no space where the format has one, and it rejects 'Z' for %z. Unsupported, rejected at load:
    %j, %U, %W, %G, %V, %u."""

    type: ClassVar[str] = "expect_column_values_to_match_strftime_format"
    description: ClassVar[str] = "string values parse with strftime_format (Python strptime rules)"
    strftime_format: str

    @field_validator("strftime_format")
    @classmethod
    def _usable(cls, strftime_format: str) -> str:
        strptime_regex(strftime_format)
        return strftime_format

    def failing(self, schema: pl.Schema, ctx: QualityContext) -> pl.Expr:
        col = string_column(self.column, schema, self.type)
        return pl.when(col.is_not_null()).then(~strptime_ok(col, self.strftime_format))


MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september"]
MONTHS += ["october", "november", "december"]
MONTH_NUMBER = {m: i for i, m in enumerate(MONTHS, 1)} | {m[:3]: i for i, m in enumerate(MONTHS, 1)}
MONTH_NUMBER["sept"] = 9
_MONTH = "|".join(sorted(MONTH_NUMBER, key=len, reverse=True))
_DAY = "|".join(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"])
_DAY += "|mon|tue|wed|thu|fri|sat|sun"  # dateutil knows no 'Tues' or 'Thurs'


def _dateutil_branches() -> list[tuple[str, str]]:
    """(kind, regex) per shape; '#' in group names becomes the branch number (Rust regex wants
    unique names)."""
    time = r"(?P<H#>\d{1,2}):(?P<M#>\d{1,2})(?::(?P<S#>\d{1,2})(?:[.,]\d+)?)?"
    time += r"(?:\s*(?P<w#>[A-Za-z]+))?(?:\s*(?P<v#>[A-Za-z]+))?(?:\s*[+-]\d\d(?::?\d\d)?)?"
    year = r"(?:(?P<Y#>\d{4})|(?P<y#>\d\d))"
    sep = r"(?:[-/.]|\s+)"
    day = r"(?P<d#>\d{1,2})(?:st|nd|rd|th)?"
    month = f"(?P<b#>(?i:{_MONTH}))\\.?"
    weekday = f"(?:(?i:{_DAY})\\.?,?\\s+)?"
    shapes = [
        ("ymd", rf"(?P<Y#>\d{{4}}){sep}(?P<m#>\d{{1,2}}){sep}(?P<d#>\d{{1,2}})"),
        ("ymd", r"(?P<Y#>\d{4})(?P<m#>\d\d)(?P<d#>\d\d)"),
        ("either", rf"(?P<m#>\d{{1,2}}){sep}(?P<d#>\d{{1,2}}){sep}{year}"),
        ("named", rf"{weekday}{month}\s*{day},?\s+{year}"),
        ("named", rf"{weekday}{day}(?:\s+|-){month}(?:,?\s+|-){year}"),
    ]
    branches = [(kind, rf"{shape}(?:(?:T|\s+){time})?") for kind, shape in shapes] + [("time", f"T?{time}")]
    return [(kind, regex.replace("#", str(n))) for n, (kind, regex) in enumerate(branches)]


@functools.lru_cache(maxsize=1)
def dateutil_regex() -> tuple[str, tuple[str, ...]]:
    branches = _dateutil_branches()
    return "^(?:" + "|".join(f"(?:{regex})" for _, regex in branches) + ")$", tuple(k for k, _ in branches)


def _time_ok(n: int) -> pl.Expr:
    """H:MM[:SS], then an am/pm word and/or a zone word, in either order (dateutil: am/pm in any case
    comes first; a zone is 1-5 upper-case letters or 'z'): hours to 23, or to 12 with am/pm; minutes
    and seconds to 59."""
    g = pl.field
    words = [g(f"w{n}"), g(f"v{n}")]
    ampm = [w.str.to_lowercase().is_in(["am", "pm", "a", "p"]).fill_null(False) for w in words]
    zone = [w.str.contains(r"^(?:[A-Z]{1,5}|z)$").fill_null(False) for w in words]
    first_ok = words[0].is_null() | ampm[0] | zone[0]
    second_ok = words[1].is_null() | (ampm[0] & zone[1] & ~ampm[1]) | (~ampm[0] & ampm[1])
    hour = _int(g(f"H{n}"))
    return hour.is_null() | (
        (hour <= pl.when(ampm[0] | ampm[1]).then(12).otherwise(23))
        & (_int(g(f"M{n}")) <= 59)
        & (_int(g(f"S{n}")).fill_null(0) <= 59)
        & first_ok
        & second_ok
    )


def dateutil_ok(col: pl.Expr) -> pl.Expr:
    """True where the stripped value has a shape DateutilParseable lists and names a real date and
    time."""
    regex, kinds = dateutil_regex()
    g = pl.field
    verdicts = []
    for n, kind in enumerate(kinds):
        if kind == "time":
            verdicts.append(g(f"H{n}").is_not_null() & _time_ok(n))
            continue
        year = _int(g(f"Y{n}"))
        if kind != "ymd":
            yy = _int(g(f"y{n}"))
            year = pl.coalesce(year, pl.when(yy <= 68).then(yy + 2000).otherwise(yy + 1900))
        day = _int(g(f"d{n}"))
        if kind == "named":
            names = g(f"b{n}").str.to_lowercase()
            date_ok = calendar_ok(
                year, names.replace_strict(MONTH_NUMBER, default=None, return_dtype=pl.Int32), day
            )
        else:
            date_ok = calendar_ok(year, _int(g(f"m{n}")), day)
            if kind == "either":  # month first, or day first when that is the only reading
                date_ok = date_ok | calendar_ok(year, day, _int(g(f"m{n}")))
        verdicts.append(g(f"d{n}").is_not_null() & date_ok & _time_ok(n))
    return _verdict(col.str.strip_chars(), regex, pl.any_horizontal(v.fill_null(False) for v in verdicts))


@register
class DateutilParseable(ColumnMap):
    """dateutil's parser guesses at almost anything, and fills what is missing from today's date, so
    its verdict on a partial value can change with the day it runs ('31' parses in December, not in
    November). Headwater never reads the clock; it accepts the shapes dates are written in, when
    they name a real date and time:

    - year first: 2020-01-05, 2020/1/5, 2020.01.05, 2020 01 05, 20200105;
    - year last, month first or (when the first number cannot be a month) day first, with a 4- or
      2-digit year: 01/05/2020, 13.01.2020, 1-5-20;
    - month names (any case, abbreviated, 'Sept'), an optional weekday: Jan 5, 2020; 5 January 2020;
      05-Jan-20; Sat, 05 Jan 2020;
    - each optionally followed (after 'T' or spaces) by a time H:MM[:SS[.fraction]], am/pm, an
      upper-case zone name (UTC, EST, Z) and/or an offset (+01:00, -0530, +01), or that time alone
      (optionally after 'T').

    dateutil also accepts, and Headwater rejects: a bare number ('2020', '12'), a partial date
    ('2020-01', 'March 2020', 'March', 'Monday'), an hour without minutes ('5pm', '2020-01-05T10'),
    2-digit years first ('99-12-31'), words around the date ('3rd of May 2020'), 'YYYYMMDDTHHMMSS'.
    Both reject '', 'N/A', '2020-02-30', hours past 23, seconds past 59 and lower-case zone names.
    dateutil warns that it will reject unknown zone names ('PST') in a future version; it takes them
    today, and so does Headwater."""

    type: ClassVar[str] = "expect_column_values_to_be_dateutil_parseable"
    description: ClassVar[str] = "string values are dates or times in a common written form"

    def failing(self, schema: pl.Schema, ctx: QualityContext) -> pl.Expr:
        col = string_column(self.column, schema, self.type)
        return pl.when(col.is_not_null()).then(~dateutil_ok(col))
