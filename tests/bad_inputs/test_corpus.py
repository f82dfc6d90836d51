"""Every case of the corpus (cases.py) through `headwater validate` and a run, on a fresh home each:
the outcome class it must have, a message with a place and a fix, the target as it was after a
refusal or a failure, and exactly the independently computed rows after a load.

Real services: SQLite store and warehouse per case, the Prefect test harness for runs that start."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from headwater.cli import main
from headwater.settings import Settings
from headwater.store import Store
from tests.bad_inputs.cases import CASES, FIX, Case
from tests.conftest import run_flow

pytestmark = pytest.mark.prefect


def target(url: str) -> pl.DataFrame | None:
    engine = sa.create_engine(url)
    try:
        if not sa.inspect(engine).has_table("target"):
            return None
        return pl.read_database('SELECT * FROM "target" ORDER BY 1', engine)
    finally:
        engine.dispose()


def prepare(case: Case, folder: Path, settings: Settings) -> Path:
    folder.mkdir(parents=True)
    settings.ensure_home()
    for name, content in case.files.items():
        (folder / name).write_bytes(content.encode() if isinstance(content, str) else content)
    if case.setup:
        case.setup(folder)
    spec = folder / f"{case.id}.yaml"
    spec.write_text(f"name: {case.id}\n" + case.spec.replace("{here}", str(folder)))
    if case.seed:
        engine = sa.create_engine(settings.warehouse_url)
        with engine.begin() as conn:
            for sql in case.seed:
                conn.exec_driver_sql(sql)
        engine.dispose()
    return spec


def assert_place_and_fix(case: Case, message: str) -> None:
    assert re.search(case.place, message), f"{case.id}: no place /{case.place}/ in: {message}"
    assert re.search(FIX, message), f"{case.id}: no fix in: {message}"
    if case.says:
        assert re.search(case.says, message, re.DOTALL), f"{case.id}: /{case.says}/ not in: {message}"
    assert "Traceback" not in message


def test_the_corpus_is_large_and_covers_every_outcome() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
    assert {c.outcome for c in CASES} == {"refused", "failed", "loaded"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: Case, hw_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "specs"
    spec = prepare(case, folder, hw_env)
    before = target(hw_env.warehouse_url)

    # validate
    code = main(["validate", str(spec)])
    shown = capsys.readouterr()
    said = shown.out + shown.err
    if case.validate_problem:
        assert code == 1, f"{case.id}: validate passed:\n{said}"
        assert_place_and_fix(case, said)
    else:
        assert code == 0, f"{case.id}: validate refused:\n{said}"

    # run
    if case.outcome == "refused":
        args = ["run", case.id, "--pipelines", str(folder)]
        for key, value in case.params.items():
            args += ["--param", f"{key}={value}"]
        assert main(args) == 2
        shown = capsys.readouterr()
        assert f"{case.id}: refused, nothing ran" in shown.out
        assert_place_and_fix(case, shown.err)
        (run,) = Store(hw_env.database_url).runs(case.id)
        assert (run["status"], run["error_type"]) == ("failed", "SpecError")
        assert_place_and_fix(case, run["error_message"])
    else:
        result = run_flow(case.id, folder, params=case.params or None)
        if case.outcome == "failed":
            assert result["status"] == "failed", f"{case.id}: {result['status']}"
            assert_place_and_fix(case, result["error_message"])
        else:
            assert result["status"] == case.status, f"{case.id}: {result.get('error_message')}"

    after = target(hw_env.warehouse_url)
    if case.outcome == "loaded":
        assert case.expected is not None and after is not None
        expected = case.expected(folder)
        assert after.columns == expected.columns
        assert sorted(after.rows()) == sorted(expected.rows()), f"{case.id}: loaded {after}"
    elif before is None:
        assert after is None, f"{case.id}: a target appeared"
    else:
        assert after is not None and after.rows() == before.rows(), f"{case.id}: the target changed"
