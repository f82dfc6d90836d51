"""Large inputs stream (headwater.pipeline.streaming), here with the threshold at 0 MB so a test file
streams: a CSV -> transform -> upsert into the real PostgreSQL runs as one lazy plan whose batches are
COPYed as they come, and the target equals an independent Polars computation; duplicate keys and a
bad row mid-file fail the run with nothing loaded; a validate step keeps the data in memory; SQLite
loads the same rows."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from headwater.settings import Settings
from headwater.store import Store
from tests.conftest import run_flow
from tests.flights_expected import raw_flights

pytestmark = pytest.mark.prefect

SPEC = """
name: hw_streamed
sources:
  flights: {{kind: file, path: data/flights.csv, null_values: ["NA"], infer_schema_length: 10000}}
steps:
  - {{name: extract, type: extract, source: flights}}
  - name: daily
    type: transform
    depends_on: [extract]
    ops:
      - make_date: {{year: year, month: month, day: day, as: flight_date}}
      - filter: "carrier != 'HA'"
      - aggregate:
          by: [flight_date, carrier]
          aggs:
            flights: {{fn: count}}
            distance: {{fn: sum, column: distance}}
{validate}  - name: load
    type: load
    depends_on: [{load_input}]
    destination: {{table: streamed_daily, mode: upsert, primary_key: [{key}]}}
"""
VALIDATE = """  - name: check
    type: validate
    depends_on: [daily]
    expect: [{name: positive, rule: "flights > 0"}]
"""


def _expected() -> pl.DataFrame:
    return (
        raw_flights()
        .with_columns(flight_date=pl.date("year", "month", "day"))
        .filter(pl.col("carrier") != "HA")
        .group_by("flight_date", "carrier")
        .agg(flights=pl.len().cast(pl.Int64), distance=pl.col("distance").sum().cast(pl.Int64))
        .sort("flight_date", "carrier")
    )


def _target(url: str) -> pl.DataFrame:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            got = pl.read_database(
                "SELECT flight_date, carrier, flights, distance FROM streamed_daily ORDER BY 1, 2",
                conn,
                schema_overrides={"flights": pl.Int64, "distance": pl.Int64},
            )
    finally:
        engine.dispose()
    if got.schema["flight_date"] == pl.String:
        got = got.with_columns(pl.col("flight_date").str.to_date())
    return got.with_columns(pl.col("flight_date").cast(pl.Date))


@pytest.fixture
def folder(tmp_path: Path, hw_env: Settings, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HEADWATER_STREAM_MIN_MB", "0")
    out = tmp_path / "pipelines"
    (out / "data").mkdir(parents=True)
    raw_flights().write_csv(out / "data" / "flights.csv", null_value="NA")
    return out


def _steps(settings: Settings, run_id: str) -> dict[str, dict[str, object]]:
    store = Store(settings.database_url)
    try:
        return {s["step_name"]: s for s in store.steps(run_id)}
    finally:
        store.dispose()


def _write(
    folder: Path, key: str = "flight_date, carrier", validate: str = "", load_input: str = "daily"
) -> None:
    (folder / "streamed.yaml").write_text(SPEC.format(validate=validate, load_input=load_input, key=key))


@pytest.fixture
def pg_folder(folder: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, prefect_api: str) -> Path:
    """The streamed spec, loading into a throwaway PostgreSQL database."""
    monkeypatch.setenv("HEADWATER_WAREHOUSE_URL", pg_url)
    _write(folder)
    return folder


@pytest.mark.postgres
def test_a_large_input_streams_into_postgres(pg_folder: Path, pg_url: str) -> None:
    folder = pg_folder
    result = run_flow("hw_streamed", folder)
    assert result["status"] == "completed", result
    expected = _expected()
    assert_frame_equal(_target(pg_url), expected)
    assert result["records_loaded"] == result["records_inserted"] == expected.height
    steps = _steps(Settings.from_env(), result["run_id"])
    assert {name: s["metrics"].get("streamed") for name, s in steps.items()} == {  # type: ignore[union-attr]
        "extract": True,
        "daily": True,
        "load": True,
    }
    assert steps["extract"]["sample_out"]  # a scan's first rows, masked, as for any extract

    again = run_flow("hw_streamed", folder)  # the same rows again: all unchanged
    assert (again["records_inserted"], again["records_updated"]) == (0, 0)
    assert_frame_equal(_target(pg_url), expected)


@pytest.mark.postgres
def test_streamed_duplicate_keys_and_bad_rows_load_nothing(pg_folder: Path, pg_url: str) -> None:
    folder = pg_folder
    assert run_flow("hw_streamed", folder)["status"] == "completed"
    before = _target(pg_url)

    dupes = SPEC.format(validate="", load_input="daily", key="flight_date").replace("streamed_daily", "dupes")
    (folder / "streamed.yaml").write_text(dupes)
    failed = run_flow("hw_streamed", folder)
    assert failed["status"] == "failed"
    assert "share a primary key (flight_date)" in failed["error_message"]
    engine = sa.create_engine(pg_url)
    assert not sa.inspect(engine).has_table("dupes")  # made in the load's transaction: rolled back too
    engine.dispose()

    _write(folder)
    lines = (folder / "data" / "flights.csv").read_text().splitlines()
    lines[300_000] = lines[300_000].replace(",", ",x", 1)  # `month` of a row deep in the file: not a number
    (folder / "data" / "flights.csv").write_text("\n".join(lines) + "\n")
    bad = run_flow("hw_streamed", folder)
    assert bad["status"] == "failed"
    assert "reading the streamed input failed" in bad["error_message"]
    assert_frame_equal(_target(pg_url), before)


def test_a_validate_step_keeps_the_data_in_memory_and_sqlite_loads_the_same(
    folder: Path, hw_env: Settings, prefect_api: str
) -> None:
    _write(folder, validate=VALIDATE, load_input="check")
    result = run_flow("hw_streamed", folder)
    assert result["status"] == "completed", result
    assert_frame_equal(_target(hw_env.warehouse_url), _expected())
    steps = _steps(hw_env, result["run_id"])
    assert not any(s["metrics"].get("streamed") for s in steps.values())  # type: ignore[union-attr]

    _write(folder)
    streamed = run_flow("hw_streamed", folder)  # SQLite: the plan is collected by the streaming engine
    assert streamed["status"] == "completed"
    assert_frame_equal(_target(hw_env.warehouse_url), _expected())
