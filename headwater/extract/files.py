"""Files: CSV/TSV (also .gz and single-member .zip), JSON/NDJSON and Parquet, by path or glob.

Text is checked before it is trusted, cheaply, on the first bytes: a UTF-16/32 byte-order mark the
source's `encoding` does not expect, or bytes that are not UTF-8, are refused with the line and the fix;
CR-only or mixed line breaks are read as line feeds; a CSV header holding control characters is refused.
Only when a read fails is the file read again, to name the line: a row with too many fields, an unclosed
quote, a value that does not parse as its column's type, an NDJSON line that is not JSON.
"""

from __future__ import annotations

import codecs
import glob
import importlib.util
import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from headwater.errors import PermanentError
from headwater.extract.diagnose import check_header, csv_options, explain, json_problem
from headwater.extract.text import (
    SNIFF_BYTES,
    UTF8,
    Unreadable,
    as_utf8,
    check_start,
    encoding_problem,
    lone_crs,
    payload_of,
    raw_bytes,
    text_bytes,
    zip_member,
)
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


_CSV_ONLY = ("delimiter", "separator", "skip_rows", "comment_prefix", "quote_char")


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
        suffixes = Path(zip_member(path)).suffixes
    fmt = _FORMATS.get(suffixes[-1].lower()) if suffixes else None
    if fmt is None:
        raise PermanentError(
            f"cannot tell the format of {path.name}",
            hint="set format: csv | tsv | json | ndjson | parquet on the source",
        )
    return fmt


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


def _polars_csv(source: FileSource, fmt: str, data: bytes | Path, sample: int | None) -> pl.DataFrame:
    overrides = {c: parse_dtype(t) for c, t in source.columns.items()} or None
    options = csv_options(source, fmt)
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
    payload = payload_of(path)
    if isinstance(payload, Path):
        with payload.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
    else:
        head = payload[:SNIFF_BYTES]
    truncated = len(head) == SNIFF_BYTES
    if not head:
        raise Unreadable(
            path,
            "the file is empty (0 bytes): not even a header line",
            "check that the export or download that writes it finished; a file with only its header "
            "line loads no rows",
        )
    check_start(head, codec, path, truncated)
    fast = codec in UTF8 and not lone_crs(head, truncated)
    if not fast:
        frame = _polars_csv(source, fmt, as_utf8(raw_bytes(payload), codec, path), sample)
    else:
        try:
            frame = _polars_csv(source, fmt, payload, sample)
        except pl.exceptions.PolarsError:
            raw = raw_bytes(payload)
            if not lone_crs(raw):
                raise
            frame = _polars_csv(source, fmt, as_utf8(raw, codec, path), sample)
        else:
            if _one_column_with_cr(frame) and lone_crs(raw := raw_bytes(payload)):
                frame = _polars_csv(source, fmt, as_utf8(raw, codec, path), sample)
    check_header(frame.columns, source, path, fmt)
    return frame


def _one_column_with_cr(frame: pl.DataFrame) -> bool:
    """Lines joined by an unseen lone CR make extra fields, which fail the read, unless there is only
    one column."""
    return (
        frame.width == 1
        and frame.dtypes[0] == pl.String
        and bool(frame.to_series().str.contains("\r", literal=True).any())
    )


def _refuse_csv_options(source: FileSource, path: Path, fmt: str) -> None:
    given = [o for o in _CSV_ONLY if o in source.model_fields_set]
    if fmt == "parquet" and "encoding" in source.model_fields_set:
        given.append("encoding")
    if fmt not in ("csv", "tsv") and given:
        raise Unreadable(
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
    payload = payload_of(path)
    if fmt == "parquet":
        frame = (
            pl.scan_parquet(payload).collect(engine="streaming")
            if isinstance(payload, Path)
            else pl.read_parquet(payload)
        )
        return frame.with_columns(pl.col(c).cast(t) for c, t in overrides.items()) if overrides else frame
    data = text_bytes(payload, codecs.lookup(source.encoding).name, path)
    if fmt == "ndjson":
        return pl.read_ndjson(
            io.BytesIO(data),
            schema_overrides=overrides or None,
            infer_schema_length=source.infer_schema_length,
        )
    try:
        document = json.loads(data.decode())
    except UnicodeDecodeError as exc:
        raise encoding_problem(path, data, "utf-8", exc) from exc
    except json.JSONDecodeError as exc:
        raise json_problem(exc, path) from exc
    frame = pl.DataFrame(_records(document, source.records, path), infer_schema_length=None)
    return frame.with_columns(pl.col(c).cast(t) for c, t in overrides.items()) if overrides else frame


@contextmanager
def _explained(source: FileSource, path: Path, prefix: str) -> Iterator[None]:
    """Turn what reading `path` raised into a PermanentError naming the file, the line and the fix."""
    try:
        yield
    except Unreadable as unreadable:
        raise PermanentError(f"{prefix}cannot read {unreadable}", hint=unreadable.hint) from unreadable
    except (pl.exceptions.PolarsError, ValueError, OSError) as exc:
        try:
            fmt: str | None = file_format(source, path)
        except PermanentError:
            fmt = None
        found = explain(path, source, fmt, exc)
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


def _scan_one(source: FileSource, path: Path) -> pl.LazyFrame | None:
    """A lazy scan of one file, when it can be read as it is: a csv/tsv in UTF-8 whose first bytes
    have no lone CR, or parquet, on disk (not inside an archive). None: read it whole instead."""
    fmt = file_format(source, path)
    _refuse_csv_options(source, path, fmt)
    payload = payload_of(path)
    if not isinstance(payload, Path):
        return None
    overrides = {c: parse_dtype(t) for c, t in source.columns.items()}
    if fmt == "parquet":
        lazy = pl.scan_parquet(payload)
        return lazy.with_columns(pl.col(c).cast(t) for c, t in overrides.items()) if overrides else lazy
    if fmt not in ("csv", "tsv"):
        return None
    with payload.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    codec = codecs.lookup(source.encoding).name
    if not head or codec not in UTF8 or lone_crs(head, len(head) == SNIFF_BYTES):
        return None
    check_start(head, codec, path, len(head) == SNIFF_BYTES)
    lazy = pl.scan_csv(
        payload,
        schema_overrides=overrides or None,
        infer_schema_length=source.infer_schema_length,
        **csv_options(source, fmt),
    )
    check_header(lazy.collect_schema().names(), source, path, fmt)
    return lazy


def scan_files(name: str, source: FileSource, base_dir: Path, min_bytes: int) -> pl.LazyFrame | None:
    """The source as a lazy scan, when its files together are at least `min_bytes` and each can be
    scanned as it is (see _scan_one); None: read it whole with read_files."""
    try:
        paths = resolve_paths(source.path, base_dir)
    except FileNotFoundError:
        return None  # read_files says what is missing
    try:
        if sum(p.stat().st_size for p in paths) < min_bytes:
            return None
    except OSError:
        return None
    scans = []
    for path in paths:
        with _explained(source, path, f"source {name}: "):
            scan = _scan_one(source, path)
        if scan is None:
            return None
        scans.append(scan)
    return scans[0] if len(scans) == 1 else pl.concat(scans, how="diagonal_relaxed")


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
            payload = payload_of(path)
            schema = (
                pl.scan_parquet(payload).collect_schema()
                if isinstance(payload, Path)
                else pl.read_parquet(payload, n_rows=1).schema
            )
            overrides = {c: parse_dtype(t) for c, t in source.columns.items()}
            return pl.Schema({c: overrides.get(c, t) for c, t in schema.items()})
        return _read_one(source, path).head(0).schema
    raise AssertionError("unreachable")  # _explained re-raises
