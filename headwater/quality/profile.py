"""Profile a frame (per-column statistics, top values, semantic type, dominant string pattern) and draft
a quality suite from the profile: GX-format rules whose pass rates on the profiled data come from
actually evaluating them, each with a threshold a little below what the data reached."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl

from headwater.quality.evaluate import evaluate
from headwater.quality.expectations import EXPECTATIONS
from headwater.quality.suite import parse_suite

log = logging.getLogger(__name__)

SemanticType = Literal[
    "empty", "boolean", "integer", "float", "date", "datetime", "time", "duration", "email", "phone",
    "zip", "currency", "identifier", "categorical", "code", "text", "other",
]  # fmt: skip
TOP_VALUES = 5
CATEGORICAL_MAX = 20
"""At most this many distinct values (each seen twice on average) make a column categorical."""
SEMANTIC_SHARE = 0.95
"""Share of non-null strings that must look like an email, a date... for the column to be one."""
PATTERN_SHARE = 95.0
"""A dominant pattern covering more than this % of values becomes a match_regex rule."""
NULL_PERCENT_MAX = 1.0
"""Columns with fewer nulls than this % get a not_null rule."""
THRESHOLD_MARGIN = 0.5
"""Map rules' thresholds sit this many points below the observed pass rate (rounded down to 0.1)."""
ROW_COUNT_RANGE = (0.5, 2.0)
VALUE_LENGTHS = "expect_column_value_lengths_to_be_between"

# Written for both Rust's regex (Polars) and Python's re (GX, parse_suite): ASCII classes, no \d.
SEMANTIC_REGEX: dict[str, str] = {
    "email": r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$",
    "datetime": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"
    r"( ?(Z|[+-][0-9]{2}:?[0-9]{2}))?$",
    "date": r"^([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{1,2}/[0-9]{1,2}/[0-9]{4})$",
    "currency": r"^[-+]?([$€£¥] ?[0-9]{1,3}(,?[0-9]{3})*(\.[0-9]{1,2})?"
    r"|[0-9]{1,3}(,?[0-9]{3})*(\.[0-9]{1,2})? ?(USD|EUR|GBP|JPY|CHF))$",
    "zip": r"^[0-9]{5}(-[0-9]{4})?$",
    "phone": r"^\+?[0-9]{0,3}[ .-]?(\([0-9]{1,4}\)|[0-9]{1,4})([ .-]?[0-9]{2,4}){2,3}$",
    "boolean": r"(?i)^(true|false|yes|no|t|f|y|n)$",
    "integer": r"^[-+]?[0-9]+$",
    "float": r"^[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$",
}
_LOOKS_LIKE: tuple[SemanticType, ...] = ("email", "datetime", "date", "currency", "zip", "phone", "boolean")
"""Checked in this order (a ZIP+4 also looks like a phone number)."""
_NUMBER_STRINGS: tuple[SemanticType, ...] = ("integer", "float")
REGEX_RULE_TYPES = ("email", "datetime", "date", "currency", "zip", "phone")
"""Semantic types that earn a match_regex rule when no single pattern dominates."""
_PHONE_SEPARATOR = r"[ ().+-]"
_REGEX_META = set(r"\.+*?()|[]{}^$")
_TEMPORAL: dict[type[pl.DataType], SemanticType] = {
    pl.Date: "date",
    pl.Datetime: "datetime",
    pl.Time: "time",
    pl.Duration: "duration",
}


@dataclass(frozen=True)
class ColumnProfile:
    name: str
    dtype: pl.DataType
    rows: int
    null_count: int
    distinct_count: int
    """Distinct non-null values."""
    semantic_type: SemanticType
    min: Any = None
    max: Any = None
    mean: Any = None
    stdev: Any = None
    """Sample standard deviation; a timedelta for temporal columns."""
    top_values: tuple[tuple[Any, int], ...] = ()
    """The most frequent non-null values with their counts (ties by value)."""
    values: tuple[Any, ...] | None = None
    """Every distinct non-null value, sorted, when there are at most CATEGORICAL_MAX."""
    min_length: int | None = None
    max_length: int | None = None
    patterns: tuple[tuple[str, int], ...] = ()
    """Strings' most common patterns (letters -> A, digits -> 9, others kept) with counts."""

    @property
    def non_null(self) -> int:
        return self.rows - self.null_count

    @property
    def null_percent(self) -> float:
        return 100.0 * self.null_count / self.rows if self.rows else 0.0

    @property
    def unique(self) -> bool:
        return self.non_null >= 2 and self.distinct_count == self.non_null

    @property
    def pattern(self) -> str | None:
        return self.patterns[0][0] if self.patterns else None

    @property
    def pattern_share(self) -> float | None:
        """Percent of non-null values that have the dominant pattern."""
        return 100.0 * self.patterns[0][1] / self.non_null if self.patterns else None


def _stringy(dtype: pl.DataType) -> bool:
    return dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum)


def _numeric(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() and dtype != pl.Boolean


def _countable(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or dtype.is_temporal() or dtype == pl.Boolean or _stringy(dtype)


def pattern_of(col: pl.Expr) -> pl.Expr:
    """Letters -> A, digits -> 9, everything else kept: "N14228" -> "A99999"."""
    return col.cast(pl.String).str.replace_all("[A-Za-z]", "A").str.replace_all("[0-9]", "9")


def pattern_regex(pattern: str) -> str:
    """The anchored regex matching exactly the strings of `pattern`: "A999AA" -> ^[A-Za-z][0-9]{3}..."""
    parts = []
    for char, run in itertools.groupby(pattern):
        token = {"A": "[A-Za-z]", "9": "[0-9]"}.get(char) or ("\\" + char if char in _REGEX_META else char)
        n = len(list(run))
        parts.append(token if n == 1 else f"{token}{{{n}}}")
    return "^" + "".join(parts) + "$"


def _stat_exprs(i: int, name: str, dtype: pl.DataType) -> list[pl.Expr]:
    col = pl.col(name)
    exprs = [col.null_count().alias(f"{i}.nulls")]
    if dtype == pl.Object:
        return exprs
    exprs.append(col.drop_nulls().n_unique().alias(f"{i}.distinct"))
    if _numeric(dtype) or dtype.is_temporal():
        exprs += [col.min().alias(f"{i}.min"), col.max().alias(f"{i}.max"), col.mean().alias(f"{i}.mean")]
        exprs.append((col if _numeric(dtype) else col.to_physical()).std().alias(f"{i}.stdev"))
    if _stringy(dtype):
        text = col.cast(pl.String)
        lengths = text.str.len_chars()
        exprs += [lengths.min().alias(f"{i}.min_length"), lengths.max().alias(f"{i}.max_length")]
        exprs.append(text.str.contains(r"\s").mean().alias(f"{i}.spaces"))
        for kind, regex in SEMANTIC_REGEX.items():
            looks = text.str.contains(regex)
            if kind == "phone":
                looks = looks & text.str.contains(_PHONE_SEPARATOR)
            exprs.append(looks.mean().alias(f"{i}.{kind}"))
    return exprs


def _top_query(lazy: pl.LazyFrame, col: pl.Expr, limit: int) -> pl.LazyFrame:
    return (
        lazy.select(col.alias("value"))
        .drop_nulls()
        .group_by("value")
        .agg(pl.len().alias("count"))
        .sort(["count", "value"], descending=[True, False])
        .head(limit)
    )


def _temporal_stdev(dtype: pl.DataType, value: float | None) -> dt.timedelta | None:
    if value is None or math.isnan(value):
        return None
    if dtype == pl.Date:
        return dt.timedelta(days=value)
    unit = getattr(dtype, "time_unit", None) or "ns"
    return dt.timedelta(microseconds=value * {"ns": 1e-3, "us": 1.0, "ms": 1e3}[unit])


def _semantic(dtype: pl.DataType, non_null: int, distinct: int, stats: dict[str, Any]) -> SemanticType:
    unique = non_null >= 2 and distinct == non_null
    few = distinct <= CATEGORICAL_MAX and 2 * distinct <= non_null
    if non_null == 0:
        return "empty"
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_temporal():
        return _TEMPORAL[dtype.base_type()]
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return "categorical"
    if dtype.is_integer():
        return "identifier" if unique else "categorical" if few else "integer"
    if _numeric(dtype):
        return "float"
    if dtype != pl.String:
        return "other"
    share = {kind: stats[kind] or 0.0 for kind in SEMANTIC_REGEX}
    for kind in _LOOKS_LIKE:
        if share[kind] >= SEMANTIC_SHARE:
            return kind
    if few:
        return "categorical"
    if (stats["spaces"] or 0.0) > 0.5 or (stats["max_length"] or 0) > 64:
        return "text"
    if unique:
        return "identifier"
    for kind in _NUMBER_STRINGS:
        if share[kind] >= SEMANTIC_SHARE:
            return kind
    return "code"


def profile(frame: pl.DataFrame) -> list[ColumnProfile]:
    """One profile per column: one select for the statistics, one group-by per column for its top
    values and one per string column for its patterns, all collected together."""
    lazy = frame.lazy()
    schema = frame.schema
    stats_q = lazy.select(
        itertools.chain.from_iterable(_stat_exprs(i, n, d) for i, (n, d) in enumerate(schema.items()))
    )
    counted = [(i, n) for i, (n, d) in enumerate(schema.items()) if _countable(d)]
    stringy = [(i, n) for i, (n, d) in enumerate(schema.items()) if _stringy(d)]
    queries = [
        stats_q,
        *(_top_query(lazy, pl.col(n), CATEGORICAL_MAX) for _, n in counted),
        *(_top_query(lazy, pattern_of(pl.col(n)), TOP_VALUES) for _, n in stringy),
    ]
    collected = pl.collect_all(queries)
    stats = collected[0].row(0, named=True) if frame.width else {}
    tops = {i: collected[1 + k] for k, (i, _) in enumerate(counted)}
    patterns = {i: collected[1 + len(counted) + k] for k, (i, _) in enumerate(stringy)}

    profiles = []
    for i, (name, dtype) in enumerate(schema.items()):
        s = {key.split(".", 1)[1]: v for key, v in stats.items() if key.split(".", 1)[0] == str(i)}
        nulls, distinct = int(s["nulls"]), int(s.get("distinct") or 0)
        top = tops.get(i)
        stdev = s.get("stdev")
        profiles.append(
            ColumnProfile(
                name=name,
                dtype=dtype,
                rows=frame.height,
                null_count=nulls,
                distinct_count=distinct,
                semantic_type=_semantic(dtype, frame.height - nulls, distinct, s),
                min=s.get("min"),
                max=s.get("max"),
                mean=s.get("mean"),
                stdev=_temporal_stdev(dtype, stdev) if dtype.is_temporal() else stdev,
                top_values=tuple(top.head(TOP_VALUES).iter_rows()) if top is not None else (),
                values=(
                    tuple(top["value"].sort().to_list())
                    if top is not None and distinct <= CATEGORICAL_MAX and dtype != pl.Boolean
                    else None
                ),
                min_length=s.get("min_length"),
                max_length=s.get("max_length"),
                patterns=tuple(patterns[i].iter_rows()) if i in patterns else (),
            )
        )
    return profiles


# --- drafting a suite -------------------------------------------------------------------------------


@dataclass
class _Suggestion:
    type: str
    kwargs: dict[str, Any]
    name: str
    dimension: str
    reason: str


def _round_outward(low: float, high: float, integer: bool) -> tuple[Any, Any]:
    """Widen [low, high] to multiples of a step one decade below the span: 17..4983 -> 0..5000."""
    ref = (high - low) or max(abs(low), abs(high))
    if not ref:
        return (int(low), int(high)) if integer else (low, high)
    exponent = math.floor(math.log10(ref)) - 1
    if integer:
        exponent = max(exponent, 0)
    step = 10.0**exponent
    decimals = max(0, -exponent)
    lo = round(math.floor(low / step) * step, decimals)
    hi = round(math.ceil(high / step) * step, decimals)
    lo = lo - step if lo > low else lo
    hi = hi + step if hi < high else hi
    return (int(lo), int(hi)) if integer else (lo, hi)


def _suggestions(p: ColumnProfile, name: str) -> list[_Suggestion]:
    out: list[_Suggestion] = []

    def add(kind: str, suffix: str, dimension: str, reason: str, **kwargs: Any) -> None:
        out.append(_Suggestion(kind, {"column": p.name, **kwargs}, f"{name}_{suffix}", dimension, reason))

    if p.null_percent < NULL_PERCENT_MAX:
        reason = f"{p.null_count:,} nulls in {p.rows:,} rows ({p.null_percent:.2f}% < {NULL_PERCENT_MAX:g}%)"
        add("expect_column_values_to_not_be_null", "not_null", "completeness", reason)
    if p.non_null == 0:
        return out
    if p.unique and p.semantic_type in ("identifier", "email", "phone"):
        reason = f"{p.semantic_type}: all {p.non_null:,} non-null values are distinct"
        add("expect_column_values_to_be_unique", "unique", "uniqueness", reason)
    in_set = p.values is not None and p.semantic_type in ("categorical", "boolean")
    in_set = in_set and (p.dtype.is_integer() or _stringy(p.dtype))
    if in_set:
        reason = f"{p.semantic_type}: {p.distinct_count} distinct values (<= {CATEGORICAL_MAX})"
        add("expect_column_values_to_be_in_set", "in_set", "validity", reason, value_set=list(p.values or ()))
    numbers = _numeric(p.dtype) and p.min is not None and p.max is not None
    if numbers and not in_set and p.semantic_type != "identifier" and math.isfinite(p.min + p.max):
        lo, hi = _round_outward(float(p.min), float(p.max), p.dtype.is_integer())
        reason = f"observed {p.min}..{p.max}, rounded outward to {lo}..{hi}"
        add("expect_column_values_to_be_between", "between", "validity", reason, min_value=lo, max_value=hi)
    if p.dtype != pl.String or in_set:
        return out
    share = p.pattern_share or 0.0
    if p.pattern is not None and share > PATTERN_SHARE:  # fixes the length too: no lengths rule
        reason = f"pattern {p.pattern!r} covers {share:.2f}% of values (> {PATTERN_SHARE:g}%)"
        regex = pattern_regex(p.pattern)
        add("expect_column_values_to_match_regex", "pattern", "validity", reason, regex=regex)
        return out
    if p.semantic_type in REGEX_RULE_TYPES:
        reason = f"values look like {p.semantic_type}; no single pattern covers > {PATTERN_SHARE:g}%"
        regex = SEMANTIC_REGEX[p.semantic_type]
        add("expect_column_values_to_match_regex", "format", "validity", reason, regex=regex)
    if VALUE_LENGTHS in EXPECTATIONS and p.min_length is not None and p.max_length is not None:
        observed = (p.min_length, p.max_length)
        lo, hi = observed if len(set(observed)) == 1 else _round_outward(*observed, integer=True)
        reason = f"lengths {p.min_length}..{p.max_length}" + (
            "" if (lo, hi) == observed else f", rounded outward to {lo}..{hi}"
        )
        add(VALUE_LENGTHS, "lengths", "validity", reason, min_value=lo, max_value=hi)
    return out


def _safe_name(column: str) -> str:
    name = "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in column) or "_"
    return "_" + name if name[0].isdigit() else name


def _expectation(s: _Suggestion, threshold: float, pass_rate: float | None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "headwater": {
            "name": s.name,
            "dimension": s.dimension,
            "severity": "warning",
            "threshold": threshold,
            "weight": 1.0,
            "action": "warn",
        }
    }
    if pass_rate is not None:
        meta["profile"] = {"pass_rate": pass_rate, "reason": s.reason}
    return {"type": s.type, "kwargs": s.kwargs, "meta": meta}


def draft_suite(
    name: str, frame: pl.DataFrame, profiles: list[ColumnProfile] | None = None
) -> dict[str, Any]:
    """A GX-format suite of suggested rules for `frame`. Every rule is evaluated on `frame`: its
    meta.profile.pass_rate is what evaluate() reports (rounded to 4 decimals) and its threshold sits
    THRESHOLD_MARGIN points below that (row count: 100), so the draft passes on the profiled data."""
    profiles = profile(frame) if profiles is None else profiles
    low, high = ROW_COUNT_RANGE
    suggestions = [
        _Suggestion(
            "expect_table_row_count_to_be_between",
            {"min_value": math.floor(frame.height * low), "max_value": math.ceil(frame.height * high)},
            "table_row_count",
            "completeness",
            f"{frame.height:,} rows observed; allow {low:.0%}..{high:.0%}",
        )
    ]
    taken: set[str] = set()
    for p in profiles:
        base = _safe_name(p.name)
        while base in taken:
            base += "_"
        taken.add(base)
        suggestions += _suggestions(p, base)

    where = f"<draft suite {name}>"
    trial = {"name": name, "expectations": [_expectation(s, 0.0, None) for s in suggestions]}
    results = evaluate(parse_suite(trial, where), frame).results
    expectations = []
    for s, result in zip(suggestions, results, strict=True):
        pass_rate = round(result.pass_rate, 4)
        if s.type == "expect_table_row_count_to_be_between":
            threshold = 100.0
        else:
            threshold = max(0.0, math.floor((pass_rate - THRESHOLD_MARGIN) * 10) / 10)
            s.kwargs["mostly"] = round(threshold / 100, 4)
        if pass_rate < threshold or (result.rule.expectation.kind == "aggregate" and not result.success):
            log.info(
                "draft suite %s: dropped %s (pass rate %s on the profiled data)", name, s.name, pass_rate
            )
            continue
        expectations.append(_expectation(s, threshold, pass_rate))
    doc = {
        "name": name,
        "expectations": expectations,
        "meta": {"profile": {"rows": frame.height, "columns": frame.width}},
        "notes": "Drafted by headwater.quality.profile from the data; review every rule before use.",
    }
    parse_suite(doc, where)  # our own output must load like any suite file
    return doc


def write_draft_suite(path: str | Path, doc: dict[str, Any]) -> Path:
    """Write `doc` as pretty JSON (2-space indent, keys in their order); refuses an invalid suite."""
    path = Path(path)
    parse_suite(doc, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
    return path


# --- rendering ----------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    return str(value)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def render_profile(profiles: list[ColumnProfile]) -> str:
    """A text table, one line per column, for the CLI."""
    headers = ["column", "dtype", "type", "nulls", "null %", "distinct", "min", "max", "mean", "stdev"]
    headers += ["pattern", "top values"]
    rows = []
    for p in profiles:
        pattern = f"{_clip(p.pattern, 16)} {p.pattern_share:.1f}%" if p.pattern is not None else ""
        top = ", ".join(f"{_clip(_fmt(v), 20)} ({c:,})" for v, c in p.top_values[:3])
        stats = [f"{p.null_count:,}", f"{p.null_percent:.2f}", f"{p.distinct_count:,}"]
        stats += [_fmt(p.min), _fmt(p.max), _fmt(p.mean), _fmt(p.stdev)]
        rows.append([p.name, str(p.dtype), p.semantic_type, *stats, pattern, _clip(top, 60)])
    cells = [headers, *rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = range(3, 10)  # nulls .. stdev, right-aligned

    def line(row: list[str]) -> str:
        padded = (
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        return "  ".join(padded).rstrip()

    rows_n = profiles[0].rows if profiles else 0
    lines = [f"{rows_n:,} rows, {len(profiles)} columns", line(headers), "  ".join("-" * w for w in widths)]
    return "\n".join(lines + [line(r) for r in rows])
