"""Remediation hints for failing rules, drawn from the pattern of their failures: one value of
another column behind most failures (a source file, a vendor, an origin), the date the failures
began, and what usually fixes that kind of rule."""

from __future__ import annotations

from typing import Any

import polars as pl

from headwater.quality.evaluate import RuleResult

_FIX = {
    "expect_column_values_to_not_be_null": "fill the missing values at the source or with a fill_null op",
    "expect_column_values_to_be_unique": "dedupe on the key, or find why the source repeats rows",
    "expect_compound_columns_to_be_unique": "dedupe on the key columns",
    "expect_column_values_to_be_between": "check units and outliers; fix the readings or the bounds",
    "expect_column_values_to_be_in_set": "map the values to the allowed set, or extend the set",
    "expect_column_values_to_be_in_table": "add the missing keys to the referenced table, or fix the keys",
    "expect_column_values_to_match_regex": "normalise the format before loading",
    "expect_column_max_to_be_recent": "check that the source is still delivering",
}
CANDIDATE_MAX_DISTINCT = 50


def remediation(result: RuleResult, frame: pl.DataFrame) -> str | None:
    if result.passed and not result.unexpected_count:
        return None
    hints: list[str] = []
    index = result.unexpected_index
    if index is not None and len(index) and frame.height:
        failing = frame[index]
        rule_cols = set(result.rule.expectation.columns())
        n = failing.height
        own = result.rule.expectation.columns()[:1]
        if own and result.rule.type != "expect_column_values_to_not_be_null":
            top = failing[own[0]].value_counts(sort=True).head(3)
            distinct = failing[own[0]].n_unique()
            examples = ", ".join(f"{v!r} ({c})" for v, c in top.iter_rows())
            hints.append(f"{distinct} distinct failing value(s) of {own[0]}, most often {examples}")
        for col, dtype in frame.schema.items():
            if col in rule_cols:
                continue
            if dtype == pl.String or dtype == pl.Categorical or dtype == pl.Boolean:
                counts = failing[col].value_counts(sort=True)
                if counts.height == 0 or counts.height > CANDIDATE_MAX_DISTINCT:
                    continue
                value, count = counts.row(0)
                share_all = (frame[col] == value).sum() / frame.height if value is not None else 0
                if count / n >= 0.5 and share_all * 2 <= count / n:  # most failures, twice its share
                    hints.append(
                        f"{count} of {n} failures have {col} = {value!r} ({share_all:.0%} of all rows)"
                    )
            elif dtype in (pl.Date,) or isinstance(dtype, pl.Datetime):
                first_fail: Any = failing[col].min()
                first_all: Any = frame[col].min()
                if first_fail is not None and first_all is not None and first_fail > first_all:
                    hints.append(f"failures begin at {col} = {first_fail} (data starts {first_all})")
        hints = hints[:3]
    fix = _FIX.get(result.rule.type)
    if fix:
        hints.append(fix)
    return "; ".join(hints) or None
