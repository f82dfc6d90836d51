"""`headwater validate`: every bad spec is refused with file, line, field and a fix; good ones pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from headwater.cli import main
from headwater.errors import SpecError
from headwater.spec import load_pipeline
from tests.conftest import EXAMPLES

GOOD = """\
name: tiny
sources:
  feed: {kind: file, path: data/vendor_prices.csv}
steps:
  - {name: extract_feed, type: extract, source: feed}
  - name: clean
    type: transform
    depends_on: [extract_feed]
    ops:
      - filter: "vendor_id IS NOT NULL"
  - name: load
    type: load
    depends_on: [clean]
    destination: {table: vendors, mode: append}
schedule: {cron: "0 6 * * *", timezone: Europe/London}
"""


def write(spec_dir: Path, text: str, name: str = "tiny.yaml") -> Path:
    path = spec_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_pipeline(path, env={})
    return [str(p) for p in info.value.problems]


def test_examples_validate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLES)]) == 0
    out = capsys.readouterr().out
    assert "ok  " in out and "flights_daily" in out and "vendor_prices" in out


def test_good_spec_loads(spec_dir: Path) -> None:
    loaded = load_pipeline(write(spec_dir, GOOD), env={})
    assert [s.name for s in loaded.spec.steps] == ["extract_feed", "clean", "load"]


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "words"),
    [
        ("    ops:\n", "    opps: []\n    ops:\n", 9, "steps[1].opps", ["unknown key 'opps'", "fix:"]),
        ('cron: "0 6 * * *"', 'cron: "0 25 * * *"', 15, "schedule.cron", ["invalid cron", "five fields"]),
        (
            "timezone: Europe/London",
            "timezone: Europe/Londn",
            15,
            "schedule.timezone",
            ["unknown time zone 'Europe/Londn'", "IANA"],
        ),
        (
            "data/vendor_prices.csv",
            "data/nope_*.csv",
            3,
            "sources.feed.path",
            ["no file matches 'data/nope_*.csv'", "fix:"],
        ),
        (
            '      - filter: "vendor_id IS NOT NULL"',
            "      - explode_all: [x]",
            10,
            "steps[1].ops[0]",
            ["unknown op 'explode_all'", "use one of:", "filter"],
        ),
        (
            "  feed: {kind: file, path: data/vendor_prices.csv}",
            "  feed: {kind: file, path: data/vendor_prices.csv}\n  db:\n    kind: sql\n"
            "    connection: {url: 'postgresql://app:hunter2@db/prod'}\n    table: orders",
            6,
            "sources.db.connection.url",
            ["literal password", "environment variable"],
        ),
        (
            "  - name: load\n",
            "  - name: load\n    password: s3cret\n",
            12,
            "steps[2].password",
            ["secret is written as a literal", "${PASSWORD}"],
        ),
        (
            "depends_on: [clean]",
            "depends_on: [cleen]",
            13,
            "steps[2].depends_on[0]",
            ["unknown step 'cleen'"],
        ),
        ("mode: append}", "mode: upsert}", 14, "steps[2].destination", ["primary_key"]),
        (
            '      - filter: "vendor_id IS NOT NULL"',
            '      - filter: "1; DROP TABLE vendors"',
            10,
            "steps[1].ops[0]",
            ["filter", "not a single expression"],
        ),
    ],
    ids=[
        "unknown-key",
        "bad-cron",
        "bad-timezone",
        "missing-file",
        "unknown-op",
        "password-in-url",
        "literal-secret",
        "unknown-dependency",
        "upsert-without-key",
        "hostile-expression",
    ],
)
def test_bad_spec_names_file_line_field_and_fix(
    spec_dir: Path, old: str, new: str, line: int, field: str, words: list[str]
) -> None:
    assert old in GOOD
    path = write(spec_dir, GOOD.replace(old, new))
    problems = problems_of(path)
    assert len(problems) == 1, problems
    text = problems[0]
    assert text.startswith(f"{path}:{line}: {field}"), text
    for word in words:
        assert word in text
    assert "hunter2" not in text and "s3cret" not in text


def test_bad_yaml_names_the_line(spec_dir: Path) -> None:
    path = write(spec_dir, GOOD.replace("  - name: clean\n", "  - name: clean\n   bad: [\n"))
    problems = problems_of(path)
    assert problems[0].startswith(f"{path}:"), problems
    assert "not valid YAML" in problems[0]


def test_unset_env_var_is_a_problem_with_default_fallback(spec_dir: Path) -> None:
    text = GOOD.replace("table: vendors", 'table: "${TARGET_TABLE}"')
    problems = problems_of(write(spec_dir, text))
    assert "environment variable TARGET_TABLE is not set" in problems[0]
    loaded = load_pipeline(
        write(spec_dir, GOOD.replace("table: vendors", 'table: "${TARGET_TABLE:-vendors_x}"'), "b.yaml"),
        env={},
    )
    assert loaded.spec.steps[2].destination.table == "vendors_x"  # type: ignore[union-attr]


def test_yaml_on_key_is_not_a_boolean(spec_dir: Path) -> None:
    """YAML 1.1 reads `on:` as True; specs read it as the word."""
    loaded = load_pipeline(EXAMPLES / "flights_daily.yaml", env={})
    join = loaded.spec.steps[3].ops[1]  # type: ignore[union-attr]
    assert join["join"]["on"] == ["origin", "time_hour"]
    assert loaded.spec.alerts is not None and loaded.spec.alerts.on == ["failure"]


def test_cycle_is_refused(spec_dir: Path) -> None:
    text = GOOD.replace("depends_on: [extract_feed]", "depends_on: [extract_feed, load]")
    problems = problems_of(write(spec_dir, text))
    assert any("cycle" in p for p in problems), problems


def test_cli_exit_code_and_every_problem(spec_dir: Path) -> None:
    write(
        spec_dir,
        GOOD.replace("timezone: Europe/London", "timezone: Mars/Olympus").replace(
            "ops:\n", "ops:\n      - fly: {}\n"
        ),
        "bad.yaml",
    )
    write(spec_dir, GOOD, "good.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "headwater.cli", "validate", str(spec_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "unknown op 'fly'" in proc.stdout
    assert "ok  " in proc.stdout and "good.yaml" in proc.stdout
    assert "1 problem(s) found" in proc.stdout or "2 problem(s) found" in proc.stdout


def test_unknown_column_in_an_op_names_step_op_position_and_columns(spec_dir: Path) -> None:
    text = GOOD.replace('"vendor_id IS NOT NULL"', '"vendor_idd IS NOT NULL"')
    (problem,) = problems_of(write(spec_dir, text))
    assert problem.startswith(
        f"{spec_dir / 'tiny.yaml'}:10: steps[1].ops[0].filter: step clean: op #1 (filter)"
    )
    assert 'unable to find column "vendor_idd"' in problem
    assert "fix: the columns it gets are: vendor_id, vendor_name, category" in problem


def test_column_made_by_an_earlier_op_is_known_to_later_ones(spec_dir: Path) -> None:
    text = GOOD.replace(
        '      - filter: "vendor_id IS NOT NULL"',
        '      - derive: {vendor_key: "UPPER(vendor_id)"}\n      - filter: "vendor_key IS NOT NULL"\n'
        "      - select: [vendor_key, nope]",
    )
    (problem,) = problems_of(write(spec_dir, text))
    assert "steps[1].ops[2].select: step clean: op #3 (select)" in problem and '"nope"' in problem
    assert "vendor_key" in problem.split("fix:")[1]


def test_bad_op_parameter_names_op_and_position(spec_dir: Path) -> None:
    text = GOOD.replace(
        '      - filter: "vendor_id IS NOT NULL"', "      - sort: {by: [vendor_id], descending: maybe}"
    )
    (problem,) = problems_of(write(spec_dir, text))
    assert problem.startswith(f"{spec_dir / 'tiny.yaml'}:10: steps[1].ops[0].sort: sort: descending")
    assert "fix: e.g. sort: {by: [flight_date, carrier]}" in problem


def test_primary_key_missing_from_loaded_columns(spec_dir: Path) -> None:
    text = GOOD.replace("mode: append}", "mode: upsert, primary_key: [vendor_code]}")
    (problem,) = problems_of(write(spec_dir, text))
    assert (
        "steps[2].destination.primary_key: primary key column(s) vendor_code are not in the data" in problem
    )


def test_yaml_1_2_numbers_no_sexagesimal_or_octal(spec_dir: Path) -> None:
    """YAML 1.1 reads 1:1 as 61 and 010 as 8; specs read them as YAML 1.2 does."""
    text = GOOD.replace(
        '      - filter: "vendor_id IS NOT NULL"',
        '      - filter: "vendor_id IS NOT NULL"\n      - dedupe: {key: [vendor_id]}\n'
        "      - constant: {columns: {batch: 010, window: 10:30}}",
    )
    loaded = load_pipeline(write(spec_dir, text), env={})
    ops = loaded.spec.steps[1].ops  # type: ignore[union-attr]
    assert ops[2] == {"constant": {"columns": {"batch": 10, "window": "10:30"}}}


def test_validate_without_the_runs_secrets_notes_them(
    spec_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """CI can validate specs without production secrets; a run cannot start without them."""
    monkeypatch.delenv("CLEAN_API_TOKEN", raising=False)
    text = GOOD.replace(
        "  feed: {kind: file, path: data/vendor_prices.csv}",
        "  feed: {kind: file, path: data/vendor_prices.csv}\n"
        "  api: {kind: rest, url: 'http://127.0.0.1:9/x', auth: {token: '${CLEAN_API_TOKEN}'}}",
    )
    path = write(spec_dir, text)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "note: " in out and "secret CLEAN_API_TOKEN is not set here; runs need it" in out
    with pytest.raises(SpecError, match="environment variable CLEAN_API_TOKEN is not set"):
        load_pipeline(path)
