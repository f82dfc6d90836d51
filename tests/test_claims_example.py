"""The health-claims example through the real flow: none of the raw identifiers of the batch appears
anywhere Headwater wrote (warehouse, run store, logs, console), the de-identified table equals an
independent plain-Python computation of the Safe Harbor rules, and pseudonyms are stable across runs."""

from __future__ import annotations

import hmac
import json
import logging
import re
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from headwater.settings import Settings
from headwater.store import Store
from tests.claims_data import make_claims
from tests.conftest import EXAMPLES, run_flow

pytestmark = pytest.mark.prefect

SALT = "claims-example-test-salt-5f2c9e1b"
RAW = EXAMPLES / "data" / "claims_batch.ndjson"
RESTRICTED = {"036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830", "831", "878",
              "879", "884", "890", "893"}  # fmt: skip


def raw_claims() -> list[dict[str, Any]]:
    return [json.loads(line) for line in RAW.read_text(encoding="utf-8").splitlines()]


# ---------------------------------------------------------------- the rules, in plain Python


def pseudonym(value: str, prefix: str) -> str:
    return prefix + hmac.new(SALT.encode(), value.encode(), "sha256").hexdigest()[:16]


def zip3(raw: str | None) -> str | None:
    if raw is None:
        return None
    digits = raw.strip().split("-")[0]
    if not digits.isdigit() or not 3 <= len(digits) <= 5:
        return None
    prefix = digits.rjust(5, "0")[:3]
    return "000" if prefix in RESTRICTED else prefix


def age_band(born: str | None, served: str) -> str | None:
    if born is None:
        return None
    b, s = date.fromisoformat(born), date.fromisoformat(served)
    age = s.year - b.year - ((s.month, s.day) < (b.month, b.day))
    if age >= 90:
        return "90+"
    return f"{age // 10 * 10}-{age // 10 * 10 + 9}"


PHONE = re.compile(r"\+1 \d{3} \d{3} \d{4}|\(\d{3}\) \d{3}-\d{4}|\d{3}[-.]\d{3}[-.]\d{4}")


def redacted(note: str | None) -> str | None:
    """The generator's notes with what it put in them replaced (its formats, not the op's regexes)."""
    if note is None:
        return None
    out = re.sub(r"https://portal\.example\.org/patients/MRN\d+", "[URL]", note)
    out = re.sub(r"[\w.]+@example\.(?:com|org|net)", "[EMAIL]", out)
    out = re.sub(r"\b(?:10|192)\.\d+\.\d+\.\d+\b|fe80::[0-9a-f]+:1", "[IP]", out)
    out = re.sub(r"\b9\d\d-\d\d-\d{4}\b", "[SSN]", out)
    out = PHONE.sub("[PHONE]", out)
    out = re.sub(r"\bMRN\d{7}\b", "[MRN]", out)
    out = re.sub(r"\bW\d{9}\b", "[MEMBER_ID]", out)
    return re.sub(r"\bACCT-\d{8}\b", "[ACCOUNT]", out)


def expected_table() -> pl.DataFrame:
    rows = []
    for c in raw_claims():
        years = {
            k: int(c[k][:4]) if c[k] else None for k in ("service_date", "admission_date", "discharge_date")
        }
        stay = None
        if c["admission_date"] and c["discharge_date"]:
            stay = (date.fromisoformat(c["discharge_date"]) - date.fromisoformat(c["admission_date"])).days
        for line in c["services"]:
            rows.append(
                {
                    "claim_key": pseudonym(c["claim_id"], "C-"),
                    "procedure_code": line["procedure_code"],
                    "patient_key": pseudonym(c["patient_id"], "P-"),
                    "provider_id": c["provider_id"],
                    "service_year": years["service_date"],
                    "admission_year": years["admission_date"],
                    "discharge_year": years["discharge_date"],
                    "length_of_stay_days": stay,
                    "age_band": age_band(c["date_of_birth"], c["service_date"]),
                    "state": c["state"],
                    "zip3": zip3(c["zip"]),
                    "amount": line["amount"],
                    "notes": redacted(c["notes"]),
                }
            )
    return pl.DataFrame(rows, infer_schema_length=None).sort("claim_key", "procedure_code")


# ---------------------------------------------------------------- raw identifiers and where to look


def identifiers(claims: list[dict[str, Any]]) -> set[str]:
    """Every raw identifier value of the batch, in the forms it could be written out."""
    found: set[str] = set()
    keys = ("claim_id", "patient_id", "patient_name", "date_of_birth", "address", "city", "zip", "phone",
            "email", "ssn", "medical_record_number", "member_id", "account_number", "ip_address",
            "service_date", "admission_date", "discharge_date")  # fmt: skip
    for c in claims:
        values = [c[k] for k in keys] + list(c["insurance"].values())
        values += re.findall(PHONE, c["notes"] or "") + re.findall(r"fe80::[0-9a-f]+:1", c["notes"] or "")
        values += (c["patient_name"] or "").split()
        for v in filter(None, values):
            found |= {v, re.sub(r"\D", "", v)} if re.fullmatch(r"[\d()+\s.-]+", v) else {v}
        if c["zip"]:
            found.add(c["zip"].split("-")[0].rjust(5, "0"))
    return {v for v in found if len(v) >= 4}


def leaked(values: set[str], text: str) -> list[str]:
    """Values found in text. Short all-digit values (ZIPs) occur inside hex digests and numbers by
    chance, so they count only as whole tokens of text."""
    out = []
    for v in values:
        if v.isdigit() and len(v) < 8:
            hit = re.search(rf"(?<![0-9A-Za-z]){v}(?![0-9A-Za-z])", text) is not None
        else:
            hit = v in text
        if hit:
            out.append(v)
    return sorted(out)


def every_cell(url: str) -> list[tuple[str, str]]:
    """(table.column, text) of every cell of every table of a database, read generically."""
    engine = sa.create_engine(url)
    cells = []
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            for table in meta.sorted_tables:
                for row in conn.execute(sa.select(table)).mappings():
                    cells += [(f"{table.name}.{k}", str(v)) for k, v in row.items() if v is not None]
    finally:
        engine.dispose()
    return cells


def read_table(url: str) -> pl.DataFrame:
    engine = sa.create_engine(url)
    try:
        return pl.read_database("SELECT * FROM claims_deid ORDER BY claim_key, procedure_code", engine)
    finally:
        engine.dispose()


# ---------------------------------------------------------------- tests


@pytest.fixture
def prefect_logging(prefect_api: str) -> None:
    """Prefect configures logging (replacing the root logger's handlers) when `prefect.main` is first
    imported; import it while fixtures are set up, before the test's log capture is installed."""
    import prefect.main  # noqa: F401


def test_data_file_is_the_generators_output() -> None:
    claims = make_claims()
    assert RAW.read_text(encoding="utf-8") == "".join(
        json.dumps(c, ensure_ascii=False) + "\n" for c in claims
    )
    assert len(claims) == 200
    # the batch has what the rules are for: old patients, restricted ZIPs, damaged ZIPs, nulls
    assert sum(age_band(c["date_of_birth"], c["service_date"]) == "90+" for c in claims) >= 10
    assert {zip3(c["zip"]) for c in claims} >= {"000", "021", None}
    assert any(c["zip"] and len(c["zip"]) == 4 for c in claims) and any(
        "-" in (c["zip"] or "") for c in claims
    )
    assert all(any(c[k] is None for c in claims) for k in ("date_of_birth", "phone", "email", "notes"))


def test_claims_deidentified_example(
    hw_env: Settings,
    prefect_logging: None,
    spec_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HASH_SALT", SALT)
    shutil.copy(EXAMPLES / "claims_deidentified.yaml", spec_dir)
    caplog.set_level(logging.DEBUG, logger="headwater")
    caplog.set_level(logging.DEBUG, logger="prefect")

    first = run_flow("claims_deidentified", spec_dir)
    assert first["status"] == "completed", first
    loaded = read_table(hw_env.warehouse_url)
    second = run_flow("claims_deidentified", spec_dir)
    assert second["status"] == "completed", second
    again = read_table(hw_env.warehouse_url)

    # the table is the Safe Harbor rules applied to the raw batch, computed independently
    expected = expected_table()
    assert (first["records_processed"], first["records_inserted"]) == (200, expected.height)
    assert_frame_equal(loaded, expected, check_dtypes=False)
    # the same pseudonyms on the second run: the upsert matched every row
    assert (second["records_inserted"], second["records_updated"]) == (0, 0)
    assert_frame_equal(again, loaded)

    # analytic value: totals by service year and 3-digit ZIP equal the export's own claim totals
    claims = raw_claims()
    by_area = (
        pl.DataFrame(
            {
                "service_year": [int(c["service_date"][:4]) for c in claims],
                "zip3": [zip3(c["zip"]) for c in claims],
                "total": [c["total_amount"] for c in claims],
            }
        )
        .group_by("service_year", "zip3")
        .agg(pl.col("total").sum().round(2))
        .sort("service_year", "zip3", nulls_last=True)
    )
    engine = sa.create_engine(hw_env.warehouse_url)
    warehouse_totals = pl.read_database(
        "SELECT service_year, zip3, ROUND(SUM(amount), 2) AS total FROM claims_deid "
        "GROUP BY service_year, zip3 ORDER BY service_year, zip3 IS NULL, zip3",
        engine,
    )
    engine.dispose()
    assert_frame_equal(warehouse_totals, by_area, check_dtypes=False)
    assert set(loaded["age_band"].drop_nulls()) <= {f"{a}-{a + 9}" for a in range(0, 90, 10)} | {"90+"}

    # lineage: pseudonyms derived, generalisations calculated, dropped PHI feeds nothing
    lineage = {
        (r["source_column"], r["target_column"]): r["transformation_type"]
        for r in Store(hw_env.database_url).lineage("claims_deidentified")
    }
    assert lineage[("patient_id", "patient_key")] == lineage[("claim_id", "claim_key")] == "derived"
    assert lineage[("zip", "zip3")] == lineage[("service_date", "service_year")] == "calculation"
    assert lineage[("date_of_birth", "age_band")] == lineage[("service_date", "age_band")] == "calculation"
    assert lineage[("notes", "notes")] == "calculation" and ("services", "amount") in lineage
    dropped = {"patient_name", "address", "city", "phone", "email", "ssn", "medical_record_number",
               "member_id", "account_number", "ip_address", "insurance", "total_amount"}  # fmt: skip
    assert {source for source, _ in lineage} & dropped == set()

    # no raw identifier anywhere Headwater wrote
    values = identifiers(claims)
    assert len(values) > 1500
    logs = caplog.text
    assert "200 rows read" in logs
    console = capsys.readouterr()
    places = {
        "warehouse": every_cell(hw_env.warehouse_url),
        "store": every_cell(hw_env.database_url),
        "logs": [("caplog", logs)],
        "console": [("stdout", console.out), ("stderr", console.err)],
    }
    tables = {where.split(".")[0] for where, _ in places["store"]}
    assert {
        "pipeline_executions",
        "step_executions",
        "pipeline_steps",
        "data_sources",
        "data_lineage",
    } <= tables
    found = {
        f"{place}:{where}": hits
        for place, cells in places.items()
        for where, text in cells
        if (hits := leaked(values, text))
    }
    assert found == {}
