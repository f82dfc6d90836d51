"""Bad suites fail `headwater validate`, naming the suite file and the rule; a good one passes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from headwater.cli import main

SPEC = """\
name: vendors_checked
sources:
  feed: {kind: file, path: data/vendor_prices.csv, columns: {price: string}}
steps:
  - {name: extract_feed, type: extract, source: feed}
  - name: check
    type: validate
    depends_on: [extract_feed]
    suite: suite.json
  - name: load
    type: load
    depends_on: [check]
    destination: {table: vendors, mode: append}
"""
GOOD_RULE = {
    "type": "expect_column_values_to_not_be_null",
    "kwargs": {"column": "vendor_id"},
    "meta": {"headwater": {"name": "vendor_present", "action": "quarantine"}},
}


def write(spec_dir: Path, rules: list[dict[str, Any]]) -> None:
    (spec_dir / "vendors_checked.yaml").write_text(SPEC)
    (spec_dir / "suite.json").write_text(json.dumps({"name": "vendors", "expectations": rules}))


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        (
            {"type": "expect_column_values_to_be_purple", "kwargs": {"column": "city"}},
            [
                "expectations[1].type",
                "unknown or unsupported expectation",
                "expect_column_values_to_be_in_set",
            ],
        ),
        (
            {
                "type": "expect_column_values_to_not_be_null",
                "kwargs": {"column": "vendor_nam"},
                "meta": {"headwater": {"name": "name_present"}},
            },
            ["rule name_present of suite.json checks unknown column(s) vendor_nam", "vendor_name"],
        ),
        (
            {
                "type": "expect_column_values_to_match_regex",
                "kwargs": {"column": "city", "regex": "([a-z"},
                "meta": {"headwater": {"name": "city_format"}},
            },
            ["expectations[1] (city_format)", "regex"],
        ),
        (
            {
                "type": "expect_column_values_to_not_be_null",
                "kwargs": {"column": "city"},
                "meta": {"headwater": {"name": "city_present", "threshold": 140}},
            },
            ["expectations[1] (city_present)", "threshold", "less than or equal to 100"],
        ),
    ],
    ids=["unknown-expectation", "missing-column", "bad-regex", "threshold-out-of-range"],
)
def test_bad_suite_names_file_and_rule(
    spec_dir: Path, capsys: pytest.CaptureFixture[str], rule: dict[str, Any], words: list[str]
) -> None:
    write(spec_dir, [GOOD_RULE, rule])
    assert main(["validate", str(spec_dir / "vendors_checked.yaml")]) == 1
    out = capsys.readouterr().out
    assert "suite.json" in out
    for word in words:
        assert word in out, out


def test_good_suite_validates(spec_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(spec_dir, [GOOD_RULE])
    assert main(["validate", str(spec_dir / "vendors_checked.yaml")]) == 0
    assert "ok  " in capsys.readouterr().out
