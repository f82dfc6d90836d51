"""Files: CSV/TSV (also .gz and single-member .zip), JSON/NDJSON and Parquet, by path or glob."""

from __future__ import annotations

import glob
import gzip
import importlib.util
import io
import json
import re
import zipfile
from pathlib import Path

import polars as pl

from headwater.errors import PermanentError
from headwater.spec.models import FileSource
from headwater.transform.expressions import parse_dtype

_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".parquet": "parquet",
    ".pq": "parquet",
}


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
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.namelist() if not m.endswith("/")]
            if len(members) != 1:
                raise PermanentError(
                    f"{path} holds {len(members)} files; expected exactly one",
                    hint="unzip it and point path at the files with a glob",
                )
            return archive.read(members[0])
    return path


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


def _read_one(name: str, source: FileSource, path: Path) -> pl.DataFrame:
    fmt = file_format(source, path)
    overrides = {c: parse_dtype(t) for c, t in source.columns.items()}
    payload = _payload(path)
    if fmt in ("csv", "tsv"):
        sep = source.delimiter or ("\t" if fmt == "tsv" else ",")
        if isinstance(payload, Path):
            lazy = pl.scan_csv(
                payload,
                separator=sep,
                null_values=source.null_values or None,
                schema_overrides=overrides or None,
                infer_schema_length=source.infer_schema_length,
            )
            return lazy.collect(engine="streaming")
        return pl.read_csv(
            payload,
            separator=sep,
            null_values=source.null_values or None,
            schema_overrides=overrides or None,
            infer_schema_length=source.infer_schema_length,
        )
    if fmt == "parquet":
        frame = (
            pl.scan_parquet(payload).collect(engine="streaming")
            if isinstance(payload, Path)
            else pl.read_parquet(payload)
        )
        return frame.with_columns(pl.col(c).cast(t) for c, t in overrides.items()) if overrides else frame
    if fmt == "ndjson":
        data = payload if isinstance(payload, bytes) else payload.read_bytes()
        return pl.read_ndjson(
            io.BytesIO(data),
            schema_overrides=overrides or None,
            infer_schema_length=source.infer_schema_length,
        )
    text = payload.decode() if isinstance(payload, bytes) else payload.read_text(encoding="utf-8")
    records = _records(json.loads(text), source.records, path)
    frame = pl.DataFrame(records, infer_schema_length=None)
    return frame.with_columns(pl.col(c).cast(t) for c, t in overrides.items()) if overrides else frame


_CSV_COLUMN = re.compile(r"could not parse `.*` as dtype `.*` at column '(.+)' \(column number \d+\)")


def _csv_line(source: FileSource, path: Path, column: str) -> int | None:
    """The line of the first value of `column` that does not parse as the type it is read as. (The
    byte offset in Polars' message is where its parse chunk began, not the row's.)"""
    try:
        payload = _payload(path)
        data = payload if isinstance(payload, bytes) else payload.read_bytes()
        sep = source.delimiter or ("\t" if file_format(source, path) == "tsv" else ",")
        nulls = source.null_values or None
        overrides = {c: parse_dtype(t) for c, t in source.columns.items()}
        dtype = (
            overrides.get(column)
            or pl.scan_csv(
                data, separator=sep, null_values=nulls, infer_schema_length=source.infer_schema_length
            ).collect_schema()[column]
        )
        text = pl.read_csv(data, separator=sep, null_values=nulls, infer_schema=False)
        bad = pl.col(column).is_not_null() & pl.col(column).cast(dtype, strict=False).is_null()
        rows = text.select(bad.arg_true()).to_series()
        if rows.is_empty():
            return None
        # header line + rows before it + newlines inside their quoted values
        embedded = text.head(rows[0]).select(pl.sum_horizontal(pl.all().str.count_matches("\n")).sum()).item()
        return int(rows[0]) + 2 + int(embedded or 0)
    except Exception:  # only a better message is at stake: never hide the original error
        return None


def _explain(path: Path, source: FileSource, exc: Exception) -> str:
    """Name the line of a CSV value that does not parse as its column's type."""
    text = str(exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    match = _CSV_COLUMN.search(text)
    line = _csv_line(source, path, match.group(1)) if match else None
    return f"{path}: line {line}: {first}" if line else f"{path}: {first}"


def read_files(name: str, source: FileSource, base_dir: Path) -> pl.DataFrame:
    try:
        paths = resolve_paths(source.path, base_dir)
    except FileNotFoundError as exc:
        raise PermanentError(f"source {name}: {exc}", hint="check the path in the spec") from exc
    frames = []
    for path in paths:
        try:
            frames.append(_read_one(name, source, path))
        except PermanentError:
            raise
        except (pl.exceptions.PolarsError, ValueError, OSError) as exc:
            raise PermanentError(
                f"source {name}: cannot read {_explain(path, source, exc)}",
                hint="fix the file, or declare the column's type under columns:, "
                "null_values: or delimiter: on the source",
            ) from exc
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
    for `headwater validate`. (Type inference may differ from a full read where the first rows are
    all null; names never do.)"""
    path = resolve_paths(source.path, base_dir)[0]
    rows = source.infer_schema_length or sample_rows
    fmt = file_format(source, path)
    payload = _payload(path)
    overrides = {c: parse_dtype(t) for c, t in source.columns.items()}
    if fmt in ("csv", "tsv"):
        sep = source.delimiter or ("\t" if fmt == "tsv" else ",")
        frame = pl.read_csv(
            payload,
            separator=sep,
            null_values=source.null_values or None,
            schema_overrides=overrides or None,
            n_rows=rows,
            infer_schema_length=rows,
        )
        return frame.schema
    if fmt == "parquet":
        schema = (
            pl.scan_parquet(payload).collect_schema()
            if isinstance(payload, Path)
            else pl.read_parquet(payload, n_rows=1).schema
        )
        return pl.Schema({c: overrides.get(c, t) for c, t in schema.items()})
    return _read_one("schema", source, path).head(0).schema
