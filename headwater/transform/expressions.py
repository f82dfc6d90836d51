"""Expressions in specs are SQL expressions parsed by Polars into `pl.Expr`: never `eval`, never SQL
strings sent to a database."""

from __future__ import annotations

import re

import polars as pl

_TYPES: dict[str, pl.DataType | type[pl.DataType]] = {
    "int": pl.Int64,
    "integer": pl.Int64,
    "bigint": pl.Int64,
    "int64": pl.Int64,
    "int32": pl.Int32,
    "smallint": pl.Int16,
    "int16": pl.Int16,
    "int8": pl.Int8,
    "float": pl.Float64,
    "double": pl.Float64,
    "float64": pl.Float64,
    "float32": pl.Float32,
    "real": pl.Float32,
    "string": pl.String,
    "str": pl.String,
    "text": pl.String,
    "varchar": pl.String,
    "bool": pl.Boolean,
    "boolean": pl.Boolean,
    "date": pl.Date,
    "datetime": pl.Datetime("us"),
    "timestamp": pl.Datetime("us"),
    "datetime_utc": pl.Datetime("us", "UTC"),
    "timestamptz": pl.Datetime("us", "UTC"),
    "time": pl.Time,
}


def parse_dtype(name: str) -> pl.DataType | type[pl.DataType]:
    """A Polars type from a spec's type name (int, float, string, bool, date, datetime, decimal(p,s))."""
    key = name.strip().lower()
    if key in _TYPES:
        return _TYPES[key]
    if key.startswith("decimal"):
        inner = key.removeprefix("decimal").strip("() ")
        if not inner:
            return pl.Decimal(38, 9)
        precision, _, scale = inner.partition(",")
        if precision.strip().isdigit() and (not scale or scale.strip().isdigit()):
            return pl.Decimal(int(precision), int(scale or 0))
    raise ValueError(f"unknown type {name!r}; use one of {', '.join(sorted(_TYPES))} or decimal(p,s)")


MAX_EXPRESSION_CHARS = 100_000
"""Longest expression text accepted (an IN list of a few thousand codes fits)."""
MAX_OPERATORS = 1_000
"""Most operators (AND, OR, NOT, comparisons, arithmetic) in one expression. Polars' SQL parser
recurses once per operator: 10,000 ORs overflow the stack and kill the process (measured: 5,000
parse, 10,000 segfault), so the bound sits well below, before the parser sees the text."""
MAX_NESTING = 32
"""Deepest parenthesis nesting accepted (the parser refuses beyond 50, echoing the whole text)."""

_TOKEN = re.compile(
    r"'(?:[^']|'')*'?"  # a string literal (unterminated: to the end)
    r'|"(?:[^"]|"")*"?'  # a quoted identifier
    r"|\b(?:AND|OR|NOT)\b|<>|!=|<=|>=|\|\||[=<>+\-*/%]|[()]",
    re.IGNORECASE,
)
_INTERNAL = re.compile(r"\w+\((?:\w+\(|\w+ \{)|\w+ \{ \w+:")
"""Rust debug output Polars sometimes puts in a message (`Dot(Function(Function { name: ...`)."""


class ExpressionError(ValueError):
    """An expression that cannot be used: a one-line reason (the message) and a fix (`hint`), which
    spec and suite validation show as the problem's fix."""

    def __init__(self, reason: str, hint: str) -> None:
        self.reason, self.hint = reason, hint
        super().__init__(reason)


def shown(text: str, limit: int = 60) -> str:
    """The expression as messages quote it: short ones whole, long ones cut with their length."""
    flat = " ".join(text.split())
    return repr(flat) if len(flat) <= limit else f"{flat[:limit]!r}... ({len(text):,} characters)"


def check_expression_size(text: str) -> None:
    """Refuse, before any parser sees it, an expression too large or too deep to parse safely."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(
            f"expression {shown(text)} is too long: {len(text):,} characters "
            f"(the limit is {MAX_EXPRESSION_CHARS:,})",
            "match many values with a lookup or a join against a table instead of one long expression",
        )
    operators = depth = deepest = 0
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if token[0] in "'\"":
            continue
        if token == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif token == ")":
            depth -= 1
        else:
            operators += 1
    if operators > MAX_OPERATORS:
        raise ExpressionError(
            f"expression {shown(text)} has {operators:,} operators (AND/OR/comparisons/arithmetic; "
            f"the limit is {MAX_OPERATORS:,})",
            "write `column IN ('a', 'b', ...)` instead of a chain of ORs, or use a lookup or a join "
            "against a table of the values",
        )
    if deepest > MAX_NESTING:
        raise ExpressionError(
            f"expression {shown(text)} nests parentheses {deepest} deep (the limit is {MAX_NESTING})",
            "remove redundant parentheses or split the logic over several derive/flag ops",
        )


def _reason(message: str, text: str) -> str:
    """Polars' message made one plain line: no echo of the whole text, no internal debug output."""
    first = message.strip().splitlines()[0] if message.strip() else "cannot parse it"
    first = first.replace(f"'{text}'", "it").replace(text, "it")
    internal = _INTERNAL.search(first)
    if internal:
        first = first[: internal.start()].rstrip(" :,(") or "it uses syntax Headwater does not support"
    return first if len(first) <= 160 else first[:157] + "..."


def parse_expr(text: str) -> pl.Expr:
    """A Polars expression from a SQL expression such as `dep_delay > 15 AND origin = 'JFK'`.
    The one parser of every expression in specs and suites (filter, derive, flag, expect rules,
    row conditions), so the same text gets the same message wherever it is written. Raises
    ExpressionError (a ValueError) with a one-line reason and a fix."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError(
            "an expression must be a non-empty string", "write e.g. \"amount > 0 AND status = 'paid'\""
        )
    check_expression_size(text)
    if ";" in _TOKEN.sub(lambda m: "" if m.group(0)[0] in "'\"" else m.group(0), text):
        raise ExpressionError(
            f"expression {shown(text)} is not a single expression: it contains ';'",
            "write one SQL expression, without ';'",
        )
    try:
        return pl.sql_expr(text)
    except Exception as exc:  # polars raises several SQL error types; all mean "cannot parse"
        raise ExpressionError(
            f"cannot parse expression {shown(text)}: {_reason(str(exc), text)}",
            "write one SQL expression over the columns, e.g. \"amount > 0 AND status = 'paid'\"; "
            "check that every parenthesis and quote is closed",
        ) from None
