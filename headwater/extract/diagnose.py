"""Why a data file did not read, found by reading it again once Polars has refused it: a record with
more fields than the header, a quote that never closes, a value that does not parse as its column's
type, an NDJSON line that is not JSON, a header with control characters or a name given twice. Each
is an `Unreadable` naming the file's line and the fix; Polars' own message is kept short (values in
it may be personal data)."""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from headwater.extract.text import (
    UTF8,
    Unreadable,
    as_utf8,
    encoding_problem,
    payload_of,
    raw_bytes,
    whole_text,
)
from headwater.spec.models import FileSource
from headwater.transform.expressions import parse_dtype

GENERIC_HINT = (
    "fix the file, or declare the column's type under columns:, null_values: or separator: on the source"
)


_HEADER_HINTS = {
    "\r": "the file's line breaks were not read right: convert it to LF line endings (e.g. with dos2unix)",
    "\x00": "the file looks UTF-16 (NUL bytes between characters): set encoding: utf-16 on the source",
    "\t": 'the header is tab-separated: set separator: "\\t" (or format: tsv) on the source',
}


_DUPLICATED = re.compile(r"(.+)_duplicated_\d+")
"""How Polars renames the second of two header names that are the same."""


class _QuoteProblem(Exception):
    """Python's csv module refused a record: a quote never closed, or in the wrong place."""

    def __init__(self, line: int, reason: str) -> None:
        self.line, self.reason = line, reason
        super().__init__(f"line {line}: {reason}")


def csv_options(source: FileSource, fmt: str) -> dict[str, Any]:
    return {
        "separator": source.field_separator or ("\t" if fmt == "tsv" else ","),
        "null_values": source.null_values or None,
        "skip_lines": source.skip_rows,
        "comment_prefix": source.comment_prefix,
        "quote_char": source.quote_char,
    }


def check_header(columns: list[str], source: FileSource, path: Path, fmt: str) -> None:
    """Refuse column names holding control characters (line breaks, separator or encoding were read
    wrong, and the table would load with wrong columns) and names given twice (Polars would rename
    the second `<name>_duplicated_0`, and a load would quietly create that column)."""
    for column in columns:
        twice = _DUPLICATED.fullmatch(column)
        if twice and twice.group(1) in columns:
            raise Unreadable(
                path,
                f"column name {twice.group(1)!r} appears more than once in the header",
                "give each column its own name in the header line (or skip it with skip_rows: and "
                "name them under columns:)",
                source.skip_rows + 1,
            )
    for column in columns:
        bad = next((c for c in column if ord(c) < 0x20 or ord(c) == 0x7F), None)
        if bad is None:
            continue
        end = column.index(bad) + 1  # the name up to the character: what follows may be row data
        shown = column[:end] + ("…" if len(column) > end else "")
        try:
            line = next(_csv_records(whole_text(source, path), source, fmt))[0]
        except Exception:  # only a better message is at stake
            line = source.skip_rows + 1
        raise Unreadable(
            path,
            f"column name {shown!r} holds the control character {bad!r}",
            _HEADER_HINTS.get(
                bad, "remove it from the header line, or set skip_rows: to the number of lines above it"
            ),
            line,
        )


def _csv_records(text: str, source: FileSource, fmt: str) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of each record of `text` (LF line breaks) as Polars splits it: the first
    skip_rows lines and comment lines skipped, blank lines kept (Polars reads them as null rows),
    quoted line breaks inside their record. A quote problem raises _QuoteProblem naming its line."""
    pieces = text.split("\n")
    if pieces[-1] == "":
        pieces.pop()
    comment = source.comment_prefix
    start, fresh = 0, True

    def lines() -> Iterator[str]:
        nonlocal start, fresh
        for number, piece in enumerate(pieces[source.skip_rows :], source.skip_rows + 1):
            if fresh:
                if comment and piece.startswith(comment):
                    continue
                start, fresh = number, False
            yield piece + "\n"

    quote = source.quote_char
    reader = csv.reader(
        lines(),
        delimiter=csv_options(source, fmt)["separator"],
        quotechar=quote,
        quoting=csv.QUOTE_NONE if quote is None else csv.QUOTE_MINIMAL,
        strict=True,
    )
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _QuoteProblem(start, str(exc)) from exc
        yield start, fields
        fresh = True


def _value_line(source: FileSource, path: Path, fmt: str, column: str) -> int | None:
    """The line of the first value of `column` that does not parse as the type it is read as. (The
    byte offset in Polars' message is where its parse chunk began, not the row's.)"""
    data = as_utf8(raw_bytes(payload_of(path)), codecs.lookup(source.encoding).name, path)
    options = csv_options(source, fmt)
    overrides = {c: parse_dtype(t) for c, t in source.columns.items()}
    dtype = (
        overrides.get(column)
        or pl.scan_csv(data, infer_schema_length=source.infer_schema_length, **options).collect_schema()[
            column
        ]
    )
    text = pl.read_csv(data, infer_schema=False, **options)
    bad = pl.col(column).is_not_null() & pl.col(column).cast(dtype, strict=False).is_null()
    rows = text.select(bad.arg_true()).to_series()
    if rows.is_empty():
        return None
    for index, (line, _) in enumerate(_csv_records(whole_text(source, path), source, fmt)):
        if index == rows[0] + 1:  # record 0 is the header
            return line
    return None


def _structure_problem(source: FileSource, path: Path, fmt: str) -> Unreadable | None:
    """The first record with more fields than the header, or whose quotes do not close."""
    separator, quote = csv_options(source, fmt)["separator"], source.quote_char
    width: int | None = None
    try:
        for line, fields in _csv_records(whole_text(source, path), source, fmt):
            if width is None:
                width = len(fields)
            elif len(fields) > width:
                return Unreadable(
                    path,
                    f"{len(fields)} fields where the header has {width}",
                    f"fix that line, or quote the field that contains the separator {separator!r}",
                    line,
                )
    except _QuoteProblem as problem:
        if "end of data" in problem.reason or "field limit" in problem.reason:
            return Unreadable(
                path,
                f"a field quoted with {quote} starts on this line and is never closed",
                f"close the quote on that line, or set quote_char: null if {quote} does not quote fields",
                problem.line,
            )
        return Unreadable(
            path,
            f"a quote in the wrong place ({problem.reason})",
            f"quote the whole field and double each {quote} inside it, or set quote_char: null",
            problem.line,
        )
    return None


_CSV_COLUMN = re.compile(
    r"could not parse `.*?` as dtype `[^`]*` at column '(.+?)' \(column number \d+\)", re.S
)


def _explain_csv(source: FileSource, path: Path, fmt: str, message: str, first: str) -> Unreadable | None:
    if "invalid utf-8" in message.lower() and codecs.lookup(source.encoding).name in UTF8:
        raw = raw_bytes(payload_of(path))
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return encoding_problem(path, raw, "utf-8", exc)
    match = _CSV_COLUMN.search(message)
    try:
        line = _value_line(source, path, fmt, match.group(1)) if match else None
    except Exception:  # e.g. an unclosed quote, which Polars also reports as a value it cannot parse
        line = None
    if line:
        return Unreadable(path, first, GENERIC_HINT, line)
    return _structure_problem(source, path, fmt)


def json_problem(exc: json.JSONDecodeError, path: Path, line: int | None = None) -> Unreadable:
    return Unreadable(
        path,
        f"not valid JSON: {exc.msg} (column {exc.colno})",
        "fix that line" + (": each line of NDJSON is one JSON object" if line else ""),
        line or exc.lineno,
    )


def ndjson_problem(source: FileSource, path: Path) -> Unreadable | None:
    """The first NDJSON line that is not a JSON object."""
    codec = codecs.lookup(source.encoding).name
    raw = raw_bytes(payload_of(path))
    try:
        text = raw.decode("utf-8-sig" if codec in UTF8 else codec).removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        return encoding_problem(path, raw, codec, exc)
    for number, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            return json_problem(exc, path, number)
        if not isinstance(value, dict):
            return Unreadable(
                path,
                f"a JSON {type(value).__name__}, not an object",
                "make each line one JSON object",
                number,
            )
    return None


def _brief(line: str) -> str:
    """Polars' first message line without long values: they may be personal data."""
    if line.count("`") % 2:  # a value cut at its first line break
        line = line[: line.rfind("`")] + "`…`"
    return re.sub(r"`([^`]{41,})`", lambda m: f"`<{len(m.group(1))} characters>`", line)


def explain(path: Path, source: FileSource, fmt: str | None, exc: Exception) -> Unreadable:
    """Where a file Polars rejected (read as `fmt`) is wrong, found by reading it again."""
    message = str(exc)
    first = _brief(message.strip().splitlines()[0] if message.strip() else type(exc).__name__)
    try:
        found = (
            _explain_csv(source, path, fmt, message, first)
            if fmt in ("csv", "tsv")
            else ndjson_problem(source, path)
            if fmt == "ndjson"
            else None
        )
    except Exception:  # only a better message is at stake: never hide the original error
        found = None
    return found or Unreadable(path, first, GENERIC_HINT)
