"""Expressions: one parser, one message wherever the text is written (filter, derive, flag, a validate
step's expect rules, a suite's row conditions), bounded before the parser sees it, one line always."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from headwater.errors import SpecError
from headwater.spec import load_pipeline
from headwater.transform.expressions import (
    MAX_NESTING,
    MAX_OPERATORS,
    ExpressionError,
    parse_expr,
)
from headwater.transform.registry import OpParseError, parse_op

HUGE_OR = " OR ".join(f"amount = {i}" for i in range(50_000))  # ~890 KB: segfaulted Polars' parser


def spec(expression_place: str) -> str:
    return f"""\
name: exprs
sources:
  feed: {{kind: file, path: feed.csv}}
steps:
  - {{name: extract_feed, type: extract, source: feed}}
{expression_place}
"""


FILTER = """\
  - name: keep
    type: transform
    depends_on: [extract_feed]
    ops:
      - filter: "{text}"
"""
EXPECT = """\
  - name: check
    type: validate
    depends_on: [extract_feed]
    expect:
      - {{name: rule, rule: "{text}"}}
"""


def problems(tmp_path: Path, place: str, text: str) -> list[str]:
    (tmp_path / "feed.csv").write_text("id,amount\n1,10\n2,-5\n")
    path = tmp_path / "exprs.yaml"
    path.write_text(spec(place.format(text=text)))
    with pytest.raises(SpecError) as info:
        load_pipeline(path, env={})
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize("place", [FILTER, EXPECT], ids=["filter", "expect"])
def test_an_unparseable_rule_gets_the_same_one_line_message_in_a_filter_and_an_expect_rule(
    tmp_path: Path, place: str
) -> None:
    (found,) = problems(tmp_path, place, "amount > 0) OR (1=1")
    assert found.count("\n") == 0
    assert found.startswith(f"{tmp_path / 'exprs.yaml'}:10: steps[1].")  # the line of the rule
    assert (
        "cannot parse expression 'amount > 0) OR (1=1': invalid expression (found unexpected token ')')"
        in found
    )
    assert "(fix: write one SQL expression over the columns" in found


def test_a_huge_or_chain_is_refused_before_the_parser_sees_it(tmp_path: Path) -> None:
    (found,) = problems(tmp_path, FILTER, HUGE_OR)
    assert f"{tmp_path / 'exprs.yaml'}:10: steps[1].ops[0].filter" in found
    assert "is too long: 888,886 characters (the limit is 100,000)" in found
    assert len(found) < 600  # the expression is quoted short, not whole


def test_operator_and_nesting_bounds_name_the_limit() -> None:
    many = " OR ".join(f"a = {i}" for i in range(MAX_OPERATORS))  # 2 * MAX - 1 operators, short enough
    with pytest.raises(ExpressionError) as info:
        parse_expr(many)
    assert f"has {2 * MAX_OPERATORS - 1:,} operators" in str(info.value)
    assert "IN (" in info.value.hint
    deep = "(" * (MAX_NESTING + 1) + "a > 1" + ")" * (MAX_NESTING + 1)
    with pytest.raises(ExpressionError, match=f"nests parentheses {MAX_NESTING + 1} deep"):
        parse_expr(deep)
    # what fits the bounds parses and means the same
    near = " OR ".join(f"a = {i}" for i in range(MAX_OPERATORS // 2))
    frame = pl.DataFrame({"a": [0, 3, 10_000]})
    assert frame.filter(parse_expr(near))["a"].to_list() == [0, 3]
    assert frame.filter(parse_expr("(" * MAX_NESTING + "a > 1" + ")" * MAX_NESTING)).height == 2


def test_validate_of_the_huge_expression_exits_cleanly_in_its_own_process(tmp_path: Path) -> None:
    """It segfaulted the process before: validate must answer with the problem and exit 1."""
    (tmp_path / "feed.csv").write_text("id,amount\n1,10\n")
    (tmp_path / "exprs.yaml").write_text(spec(FILTER.format(text=HUGE_OR)))
    done = subprocess.run(
        [sys.executable, "-m", "headwater.cli", "validate", str(tmp_path / "exprs.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "is too long" in done.stdout and "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("__import__('os').system('ls')", "dot-notation field access is currently unsupported"),
        ("a +* b", "unable to parse it as Expr"),
        ("a; DROP TABLE t", "is not a single expression: it contains ';'"),
        ("", "an expression must be a non-empty string"),
    ],
)
def test_polars_internals_never_reach_the_message(text: str, reason: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expr(text)
    message = str(info.value)
    assert reason in message and "\n" not in message
    assert "Function {" not in message and "Ident {" not in message and len(message) < 200


def test_a_semicolon_inside_a_string_is_text() -> None:
    frame = pl.DataFrame({"note": ["a;b", "c"]})
    assert frame.filter(parse_expr("note = 'a;b'")).height == 1


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"filter": {"wher": "id > 1"}}, "filter: unknown parameter 'wher'; filter takes: where"),
        (
            {"aggregate": {"by": ["a"], "aggs": {"x": {"fn": "mean", "colum": "b"}}}},
            "aggregate: aggs.x: unknown parameter 'colum'; "
            "aggregate aggs.x takes: arithmetic, column, fn, round",
        ),
        (
            {"join": {"with": "x", "onn": ["a"]}},
            "join: unknown parameter 'onn'; join takes: how, left_on, on, right_on, select, suffix, "
            "validate, with",
        ),
    ],
)
def test_an_unknown_op_parameter_names_the_key_and_the_keys_allowed(raw: dict, message: str) -> None:
    with pytest.raises(OpParseError) as info:
        parse_op(raw, 0)
    assert str(info.value) == message
    assert info.value.hint and info.value.hint.startswith("e.g. ")
