"""Files: CSV/TSV (also .gz and single-member .zip), JSON/NDJSON and Parquet, by path or glob.

Text is checked before it is trusted, cheaply, on the first bytes: a UTF-16/32 byte-order mark the
source's `encoding` does not expect, or bytes that are not UTF-8, are refused with the line and the fix;
CR-only or mixed line breaks are read as line feeds; a CSV header holding control characters is refused.
Only when a read fails is the file read again, to name the line: a row with too many fields, an unclosed
quote, a value that does not parse as its column's type, an NDJSON line that is not JSON.
"""

from __future__ import annotations

import codecs
import csv
import glob
import gzip
import importlib.util
import io
import json
import logging
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

from headwater.errors import PermanentError
from headwater.spec.models import FileSource
from headwater.transform.expressions import parse_dtype

log = logging.getLogger(__name__)

_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_SNIFF_BYTES = 64 * 1024
_UTF8 = ("utf-8", "utf-8-sig")
_BOMS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CSV_ONLY = ("delimiter", "separator", "skip_rows", "comment_prefix", "quote_char")
_GENERIC_HINT = (
    "fix the file, or declare the column's type under columns:, null_values: or separator: on the source"
)
_HEADER_HINTS = {
    "\r": "the file's line breaks were not read right: convert it to LF line endings (e.g. with dos2unix)",
    "\x00": "the file looks UTF-16 (NUL bytes between characters): set encoding: utf-16 on the source",
    "\t": 'the header is tab-separated: set separator: "\\t" (or format: tsv) on the source',
}


_DUPLICATED = re.compile(r"(.+)_duplicated_\d+")
"""How Polars renames the second of two header names that are the same."""


class _Unreadable(Exception):
    """What is wrong with one file, where, and the fix; the caller names the source."""

    def __init__(self, path: Path, problem: str, hint: str, line: int | None = None) -> None:
        self.path, self.problem, self.hint, self.line = path, problem, hint, line
        super().__init__(f"{path}: line {line}: {problem}" if line else f"{path}: {problem}")


class _QuoteProblem(Exception):
    """Python's csv module refused a record: a quote never closed, or in the wrong place."""

    def __init__(self, line: int, reason: str) -> None:
        self.line, self.reason = line, reason
        super().__init__(f"line {line}: {reason}")


def resolve_paths(path: str, base_dir: Path) -> list[Path]:
    """Files a spec path names. `pkg:<package>/<rel>` reads inside an installed package (without
    importing it); relative paths start at the spec's folder; globs are expanded and sorted."""
    if path.startswith("pkg:"):
        package, _, rel = path.removeprefix("pkg:").partition("/")
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(f"package {package!r} is not installed (from {path})")
        root = Path(next(iter(spec.submodule_search_locations)))
        full = root / rel
    else:
        full = Path(path).expanduser()
        if not full.is_absolute():
            full = base_dir / full
    matches = sorted(Path(p) for p in glob.glob(str(full), recursive=True) if Path(p).is_file())
    if not matches:
        raise FileNotFoundError(f"no file matches {path!r} (looked for {full})")
    return matches


def file_format(source: FileSource, path: Path) -> str:
    if source.format:
        return source.format
    suffixes = [s for s in path.suffixes if s not in (".gz", ".zip")]
    if path.suffix == ".zip" and not suffixes:  # data.zip: the format is the one file's inside
        suffixes = Path(_zip_member(path)).suffixes
    fmt = _FORMATS.get(suffixes[-1].lower()) if suffixes else None
    if fmt is None:
        raise PermanentError(
            f"cannot tell the format of {path.name}",
            hint="set format: csv | tsv | json | ndjson | parquet on the source",
        )
    return fmt


def _payload(path: Path) -> bytes | Path:
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes())
    if path.suffix == ".zip":
        member = _zip_member(path)
        with zipfile.ZipFile(path) as archive:
            return archive.read(member)
    return path


def _zip_member(path: Path) -> str:
    """The one file inside a .zip (a zip of several is refused: which one would be meant?)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.namelist() if not m.endswith("/")]
    except zipfile.BadZipFile as exc:
        raise PermanentError(f"{path} is not a readable zip file ({exc})", hint="check the file") from exc
    if len(members) != 1:
        raise PermanentError(
            f"{path} holds {len(members)} files; expected exactly one",
            hint="unzip it and point path at the files with a glob",
        )
    return members[0]


def _bytes(payload: bytes | Path) -> bytes:
    return payload if isinstance(payload, bytes) else payload.read_bytes()


def _records(data: object, dotted: str | None, path: Path) -> list[dict[str, object]]:
    for part in (dotted or "").split(".") if dotted else []:
        if not isinstance(data, dict) or part not in data:
            raise PermanentError(
                f"{path}: no key {part!r} on the way to records {dotted!r}",
                hint="set records: to the dot path of the list of records",
            )
        data = data[part]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise PermanentError(f"{path}: records {dotted!r} is not a list", hint="point records: at a list")
    return data


# ---------------------------------------------------------------- encodings and line breaks


def _lone_crs(data: bytes, truncated: bool = False) -> int:
    """Carriage returns not followed by a line feed: CR-only (old Mac) or mixed line breaks. A CR
    that ends a `truncated` prefix may be half of a CRLF, so it is not counted."""
    lone = data.count(b"\r") - data.count(b"\r\n")
    return lone - 1 if truncated and data.endswith(b"\r") else lone


def _line_breaks(head: bytes, truncated: bool = False) -> str:
    """lf, crlf, cr, mixed or none: the line breaks seen in a file's first bytes."""
    crlf = head.count(b"\r\n")
    seen = [
        kind
        for kind, count in (
            ("lf", head.count(b"\n") - crlf),
            ("crlf", crlf),
            ("cr", _lone_crs(head, truncated)),
        )
        if count
    ]
    return seen[0] if len(seen) == 1 else "mixed" if seen else "none"


def _line_of(data: bytes, offset: int, codec: str) -> int:
    """The 1-based line holding byte `offset`, lines ending at LF, CRLF or a lone CR."""
    before = data[:offset].decode(codec, errors="replace")
    return before.count("\n") + before.count("\r") - before.count("\r\n") + 1


def _encoding_problem(path: Path, data: bytes, codec: str, exc: UnicodeDecodeError) -> _Unreadable:
    line = _line_of(data, exc.start, codec)
    where = f"byte 0x{data[exc.start]:02x} at byte offset {exc.start}"
    if codec in _UTF8:
        return _Unreadable(
            path,
            f"not valid UTF-8 ({where}): the file may be Latin-1 or Windows-1252",
            "set encoding: latin-1 (or cp1252) on the source",
            line,
        )
    return _Unreadable(
        path,
        f"not valid {codec} ({where})",
        f"set encoding: to the file's real encoding (now {codec}; utf-8 if unset)",
        line,
    )


def _check_start(head: bytes, codec: str, path: Path, truncated: bool) -> None:
    """Refuse a UTF-16/32 byte-order mark the encoding does not expect and, for UTF-8, bytes that are
    not UTF-8 among the first bytes: the cheap checks every text file gets before Polars reads it."""
    for bom, family in _BOMS:
        if head.startswith(bom):
            if not codec.startswith(family):
                raise _Unreadable(
                    path,
                    f"the file starts with a {family.upper()} byte-order mark but is read as {codec}",
                    f"set encoding: {family} on the source",
                    1,
                )
            return
    if codec in _UTF8:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if not (truncated and exc.end == len(head)):  # not just a character cut by the prefix
                raise _encoding_problem(path, head, codec, exc) from exc


def _utf8(data: bytes, codec: str, path: Path) -> bytes:
    """`data` as UTF-8 without a byte-order mark, with lone CRs read as line feeds."""
    if codec in _UTF8:
        data = data.removeprefix(codecs.BOM_UTF8)
    else:
        try:
            data = data.decode(codec).removeprefix("\ufeff").encode()
        except UnicodeDecodeError as exc:
            raise _encoding_problem(path, data, codec, exc) from exc
    if _lone_crs(data):
        log.info("%s: %s line breaks, read as line feeds", path, _line_breaks(data))
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return data


def _text_bytes(payload: bytes | Path, codec: str, path: Path) -> bytes:
    data = _bytes(payload)
    _check_start(data[:_SNIFF_BYTES], codec, path, truncated=len(data) > _SNIFF_BYTES)
    return _utf8(data, codec, path)


def _text(source: FileSource, path: Path) -> str:
    """The whole file as text with LF line breaks, for finding a line once something is wrong."""
    codec = codecs.lookup(source.encoding).name
    raw = _bytes(_payload(path))
    text = raw.decode("utf-8-sig" if codec in _UTF8 else codec, errors="replace").removeprefix("\ufeff")
    return text.replace("\r\n", "\n").replace("\r", "\n")


# ---------------------------------------------------------------- CSV/TSV


def _csv_options(source: FileSource, fmt: str) -> dict[str, Any]:
    return {
        "separator": source.field_separator or ("\t" if fmt == "tsv" else ","),
        "null_values": source.null_values or None,
        "skip_lines": source.skip_rows,
        "comment_prefix": source.comment_prefix,
        "quote_char": source.quote_char,
    }


def _polars_csv(source: FileSource, fmt: str, data: bytes | Path, sample: int | None) -> pl.DataFrame:
    overrides = {c: parse_dtype(t) for c, t in source.columns.items()} or None
    options = _csv_options(source, fmt)
    if sample is not None:
        return pl.read_csv(
            data, n_rows=sample, infer_schema_length=sample, schema_overrides=overrides, **options
        )
    if isinstance(data, Path):
        lazy = pl.scan_csv(
            data, schema_overrides=overrides, infer_schema_length=source.infer_schema_length, **options
        )
        return lazy.collect(engine="streaming")
    return pl.read_csv(
        data, schema_overrides=overrides, infer_schema_length=source.infer_schema_length, **options
    )


def _read_csv(source: FileSource, path: Path, fmt: str, sample: int | None = None) -> pl.DataFrame:
    """All rows (or the first `sample`, types inferred from them). UTF-8 files whose first bytes have
    no lone CR go to Polars as they are; others are decoded and normalised first, as are files whose
    lone CRs come later (found when the read fails, or could have merged lines of a one-column file)."""
    codec = codecs.lookup(source.encoding).name
    payload = _payload(path)
    if isinstance(payload, Path):
        with payload.open("rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    else:
        head = payload[:_SNIFF_BYTES]
    truncated = len(head) == _SNIFF_BYTES
    if not head:
        raise _Unreadable(
            path,
            "the file is empty (0 bytes): not even a header line",
            "check that the export or download that writes it finished; a file with only its header "
            "line loads no rows",
        )
    _check_start(head, codec, path, truncated)
    fast = codec in _UTF8 and not _lone_crs(head, truncated)
    if not fast:
        frame = _polars_csv(source, fmt, _utf8(_bytes(payload), codec, path), sample)
    else:
        try:
            frame = _polars_csv(source, fmt, payload, sample)
        except pl.exceptions.PolarsError:
            raw = _bytes(payload)
            if not _lone_crs(raw):
                raise
            frame = _polars_csv(source, fmt, _utf8(raw, codec, path), sample)
        else:
            if _one_column_with_cr(frame) and _lone_crs(raw := _bytes(payload)):
                frame = _polars_csv(source, fmt, _utf8(raw, codec, path), sample)
    _check_header(frame.columns, source, path, fmt)
    return frame


def _one_column_with_cr(frame: pl.DataFrame) -> bool:
    """Lines joined by an unseen lone CR make extra fields, which fail the read, unless there is only
    one column."""
    return (
        frame.width == 1
        and frame.dtypes[0] == pl.String
        and bool(frame.to_series().str.contains("\r", literal=True).any())
    )


def _check_header(columns: list[str], source: FileSource, path: Path, fmt: str) -> None:
    """Refuse column names holding control characters (line breaks, separator or encoding were read
    wrong, and the table would load with wrong columns) and names given twice (Polars would rename
    the second `<name>_duplicated_0`, and a load would quietly create that column)."""
    for column in columns:
        twice = _DUPLICATED.fullmatch(column)
        if twice and twice.group(1) in columns:
            raise _Unreadable(
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
            line = next(_csv_records(_text(source, path), source, fmt))[0]
        except Exception:  # only a better message is at stake
            line = source.skip_rows + 1
        raise _Unreadable(
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
        delimiter=_csv_options(source, fmt)["separator"],
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
    data = _utf8(_bytes(_payload(path)), codecs.lookup(source.encoding).name, path)
    options = _csv_options(source, fmt)
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
    for index, (line, _) in enumerate(_csv_records(_text(source, path), source, fmt)):
        if index == rows[0] + 1:  # record 0 is the header
            return line
    return None


def _structure_problem(source: FileSource, path: Path, fmt: str) -> _Unreadable | None:
    """The first record with more fields than the header, or whose quotes do not close."""
    separator, quote = _csv_options(source, fmt)["separator"], source.quote_char
    width: int | None = None
    try:
        for line, fields in _csv_records(_text(source, path), source, fmt):
            if width is None:
                width = len(fields)
            elif len(fields) > width:
                return _Unreadable(
                    path,
                    f"{len(fields)} fields where the header has {width}",
                    f"fix that line, or quote the field that contains the separator {separator!r}",
                    line,
                )
    except _QuoteProblem as problem:
        if "end of data" in problem.reason or "field limit" in problem.reason:
            return _Unreadable(
                path,
                f"a field quoted with {quote} starts on this line and is never closed",
                f"close the quote on that line, or set quote_char: null if {quote} does not quote fields",
                problem.line,
            )
        return _Unreadable(
            path,
            f"a quote in the wrong place ({problem.reason})",
            f"quote the whole field and double each {quote} inside it, or set quote_char: null",
            problem.line,
        )
    return None


_CSV_COLUMN = re.compile(
    r"could not parse `.*?` as dtype `[^`]*` at column '(.+?)' \(column number \d+\)", re.S
)


def _explain_csv(source: FileSource, path: Path, fmt: str, message: str, first: str) -> _Unreadable | None:
    if "invalid utf-8" in message.lower() and codecs.lookup(source.encoding).name in _UTF8:
        raw = _bytes(_payload(path))
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return _encoding_problem(path, raw, "utf-8", exc)
    match = _CSV_COLUMN.search(message)
    try:
        line = _value_line(source, path, fmt, match.group(1)) if match else None
    except Exception:  # e.g. an unclosed quote, which Polars also reports as a value it cannot parse
        line = None
    if line:
        return _Unreadable(path, first, _GENERIC_HINT, line)
    return _structure_problem(source, path, fmt)


# ---------------------------------------------------------------- JSON, NDJSON


def _json_problem(exc: json.JSONDecodeError, path: Path, line: int | None = None) -> _Unreadable:
    return _Unreadable(
        path,
        f"not valid JSON: {exc.msg} (column {exc.colno})",
        "fix that line" + (": each line of NDJSON is one JSON object" if line else ""),
        line or exc.lineno,
    )


def _ndjson_problem(source: FileSource, path: Path) -> _Unreadable | None:
    """The first NDJSON line that is not a JSON object."""
    codec = codecs.lookup(source.encoding).name
    raw = _bytes(_payload(path))
    try:
        text = raw.decode("utf-8-sig" if codec in _UTF8 else codec).removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        return _encoding_problem(path, raw, codec, exc)
    for number, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            return _json_problem(exc, path, number)
        if not isinstance(value, dict):
            return _Unreadable(
                path,
                f"a JSON {type(value).__name__}, not an object",
                "make each line one JSON object",
                number,
            )
    return None


# ---------------------------------------------------------------- reading


def _refuse_csv_options(source: FileSource, path: Path, fmt: str) -> None:
    given = [o for o in _CSV_ONLY if o in source.model_fields_set]
    if fmt == "parquet" and "encoding" in source.model_fields_set:
        given.append("encoding")
    if fmt not in ("csv", "tsv") and given:
        raise _Unreadable(
            path,
            f"{', '.join(given)} only applies to csv/tsv files, and this file is read as {fmt}",
            f"remove {', '.join(given)} from the source, or set format: to the file's real format",
        )


def _read_one(source: FileSource, path: Path) -> pl.DataFrame:
    fmt = file_format(source, path)
    _refuse_csv_options(source, path, fmt)
    if fmt in ("csv", "tsv"):
        return _read_csv(source, path, fmt)
    overrides = {c: parse_dtype(t) for c, t in source.columns.items()}
    payload = _payload(path)
    if fmt == "parquet":
        frame = (
            pl.scan_parquet(payload).collect(engine="streaming")
            if isinstance(payload, Path)
            else pl.read_parquet(payload)
        )
        return frame.with_columns(pl.col(c).cast(t) for c, t in overrides.items()) if overrides else frame
    data = _text_bytes(payload, codecs.lookup(source.encoding).name, path)
    if fmt == "ndjson":
        return pl.read_ndjson(
            io.BytesIO(data),
            schema_overrides=overrides or None,
            infer_schema_length=source.infer_schema_length,
        )
    try:
        document = json.loads(data.decode())
    except UnicodeDecodeError as exc:
        raise _encoding_problem(path, data, "utf-8", exc) from exc
    except json.JSONDecodeError as exc:
        raise _json_problem(exc, path) from exc
    frame = pl.DataFrame(_records(document, source.records, path), infer_schema_length=None)
    return frame.with_columns(pl.col(c).cast(t) for c, t in overrides.items()) if overrides else frame


def _brief(line: str) -> str:
    """Polars' first message line without long values: they may be personal data."""
    if line.count("`") % 2:  # a value cut at its first line break
        line = line[: line.rfind("`")] + "`…`"
    return re.sub(r"`([^`]{41,})`", lambda m: f"`<{len(m.group(1))} characters>`", line)


def _explain(path: Path, source: FileSource, exc: Exception) -> _Unreadable:
    """Where a file Polars rejected is wrong, found by reading it again."""
    message = str(exc)
    first = _brief(message.strip().splitlines()[0] if message.strip() else type(exc).__name__)
    try:
        fmt = file_format(source, path)
        found = (
            _explain_csv(source, path, fmt, message, first)
            if fmt in ("csv", "tsv")
            else _ndjson_problem(source, path)
            if fmt == "ndjson"
            else None
        )
    except Exception:  # only a better message is at stake: never hide the original error
        found = None
    return found or _Unreadable(path, first, _GENERIC_HINT)


@contextmanager
def _explained(source: FileSource, path: Path, prefix: str) -> Iterator[None]:
    """Turn what reading `path` raised into a PermanentError naming the file, the line and the fix."""
    try:
        yield
    except _Unreadable as unreadable:
        raise PermanentError(f"{prefix}cannot read {unreadable}", hint=unreadable.hint) from unreadable
    except (pl.exceptions.PolarsError, ValueError, OSError) as exc:
        found = _explain(path, source, exc)
        raise PermanentError(f"{prefix}cannot read {found}", hint=found.hint) from exc


def read_files(name: str, source: FileSource, base_dir: Path) -> pl.DataFrame:
    try:
        paths = resolve_paths(source.path, base_dir)
    except FileNotFoundError as exc:
        raise PermanentError(f"source {name}: {exc}", hint="check the path in the spec") from exc
    frames = []
    for path in paths:
        with _explained(source, path, f"source {name}: "):
            frames.append(_read_one(source, path))
    if len(frames) == 1:
        return frames[0]
    try:
        return pl.concat(frames, how="diagonal_relaxed")
    except pl.exceptions.PolarsError as exc:
        raise PermanentError(
            f"source {name}: the files of {source.path!r} do not share a schema: {exc}",
            hint="declare column types under columns: so every file reads alike",
        ) from exc


def file_schema(source: FileSource, base_dir: Path, sample_rows: int = 10_000) -> pl.Schema:
    """The columns and types a file source will have, from the first file's first rows: cheap enough
    for `headwater validate`, read with every option a run uses. (Type inference may differ from a
    full read where the first rows are all null; names never do.)"""
    path = resolve_paths(source.path, base_dir)[0]
    with _explained(source, path, ""):
        fmt = file_format(source, path)
        _refuse_csv_options(source, path, fmt)
        if fmt in ("csv", "tsv"):
            return _read_csv(source, path, fmt, sample=source.infer_schema_length or sample_rows).schema
        if fmt == "parquet":
            payload = _payload(path)
            schema = (
                pl.scan_parquet(payload).collect_schema()
                if isinstance(payload, Path)
                else pl.read_parquet(payload, n_rows=1).schema
            )
            overrides = {c: parse_dtype(t) for c, t in source.columns.items()}
            return pl.Schema({c: overrides.get(c, t) for c, t in schema.items()})
        return _read_one(source, path).head(0).schema
    raise AssertionError("unreachable")  # _explained re-raises
