"""String ops against independent computations: Python's own string methods and `re`, DuckDB SQL, or
hand-written frames. No external service needed."""

from __future__ import annotations

import re
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from headwater.transform import OpContext
from headwater.transform.registry import OpParseError, OpSchemaError, chain_lineage, parse_op, run_ops
from tests.transform.helpers import run
from tests.transform.lineage_check import assert_lineage_matches

TEXT = [
    "  Ann  Smith ",
    "\tbob\n",
    None,
    "",
    "   ",
    "straße\u00a0",
    "\u2003ÉCOLE  d'été\u3000",
    "o'neil mcDONALD-smith",
    "😀 emoji",
]


def python_map(values: list[str | None], fn: Any) -> list[Any]:
    return [None if v is None else fn(v) for v in values]


def duck(sql: str, **frames: pl.DataFrame) -> pl.DataFrame:
    con = duckdb.connect()
    for name, frame in frames.items():
        con.register(name, frame)
    return pl.DataFrame(pl.from_arrow(con.sql(sql).to_arrow_table()))


def metrics(op: dict[str, Any], frame: pl.DataFrame) -> dict[str, Any]:
    return run_ops(frame.lazy(), [parse_op(op, 0)], OpContext())[1]


def fullwidth(text: str) -> str:
    """The text with ASCII digits and signs as their full-width forms (U+FF0B, U+FF10...)."""
    return "".join(chr(ord(c) + 0xFEE0) if c != " " else c for c in text)


def frame_of(**columns: list[Any]) -> pl.DataFrame:
    return pl.DataFrame(columns, schema={name: pl.String for name in columns})


# --- trim, change_case, normalize_whitespace -----------------------------------------------------


def test_trim_strips_unicode_whitespace_like_python() -> None:
    frame = pl.DataFrame({"a": TEXT, "b": list(reversed(TEXT)), "n": range(len(TEXT))})
    out = run({"trim": ["a", "b"]}, frame)
    expected = frame.with_columns(
        pl.Series("a", python_map(TEXT, str.strip)), pl.Series("b", python_map(TEXT[::-1], str.strip))
    )
    assert_frame_equal(out, expected)


@pytest.mark.parametrize(
    ("side", "method"), [("both", str.strip), ("start", str.lstrip), ("end", str.rstrip)]
)
def test_trim_given_characters_on_one_or_both_sides(side: str, method: Any) -> None:
    values = ["**£12.50--", "-*-", None, "x", "é*é"]
    out = run({"trim": {"columns": ["a"], "characters": "*-", "side": side}}, frame_of(a=values))
    assert out["a"].to_list() == python_map(values, lambda v: method(v, "*-"))


@pytest.mark.parametrize(("to", "method"), [("upper", str.upper), ("lower", str.lower), ("title", str.title)])
def test_change_case_matches_python_unicode_rules(to: str, method: Any) -> None:
    values = [*TEXT, "ǆemal", "İstanbul"]
    out = run({"change_case": {"columns": ["a"], "to": to}}, frame_of(a=values))
    assert out["a"].to_list() == python_map(values, method)
    if to == "upper":
        assert out["a"][5] == "STRASSE\u00a0"


def test_normalize_whitespace_collapses_runs_and_trims() -> None:
    values = [*TEXT, "a\u2009\u2009b\r\n\tc", "no_change"]
    out = run({"normalize_whitespace": ["a"]}, frame_of(a=values))
    assert out["a"].to_list() == python_map(values, lambda v: " ".join(v.split()))
    assert out["a"][0] == "Ann Smith"


# --- regex_replace, regex_extract ----------------------------------------------------------------


def test_regex_replace_matches_duckdb_regexp_replace() -> None:
    frame = frame_of(code=["ab-12 cd-3", "x", None, "", "zz-999"], other=["1", "2", "3", "4", "5"])
    out = run(
        {"regex_replace": {"columns": ["code"], "pattern": "([a-z]+)-([0-9]+)", "replacement": "$2/${1}"}},
        frame,
    )
    expected = duck(
        r"SELECT regexp_replace(code, '([a-z]+)-([0-9]+)', '\2/\1', 'g') AS code, other FROM t", t=frame
    )
    assert_frame_equal(out, expected)
    assert out["code"][0] == "12/ab 3/cd"


def test_regex_replace_unicode_classes_and_named_groups_match_python() -> None:
    values = ["Straße 12", "Rue d'Été 7", None, fullwidth("123") + " fullwidth"]
    op = {
        "regex_replace": {"columns": ["a"], "pattern": r"(?P<word>\w+)\s+(\d+)", "replacement": "$2 ${word}"}
    }
    out = run(op, frame_of(a=values))
    expected = python_map(values, lambda v: re.sub(r"(?P<word>\w+)\s+(\d+)", r"\2 \g<word>", v))
    assert out["a"].to_list() == expected
    assert out["a"][0] == "12 Straße"


def test_regex_extract_is_null_without_a_match() -> None:
    values = ["ann@example.com", "no at sign", None, "", "bob@straße.de", "x@"]
    frame = frame_of(email=values)
    out = run({"regex_extract": {"column": "email", "pattern": "@(.+)$", "as": "domain"}}, frame)

    def domain(v: str) -> str | None:
        found = re.search("@(.+)$", v)
        return found.group(1) if found else None

    assert_frame_equal(out, frame.with_columns(pl.Series("domain", python_map(values, domain), pl.String)))


def test_regex_extract_named_group_and_group_that_did_not_take_part() -> None:
    values = ["ab12", "cd", None, "99"]
    op = {
        "regex_extract": {
            "column": "a",
            "pattern": "(?P<word>[a-z]+)?(?P<num>[0-9]+)?",
            "group": "num",
            "as": "a",
        }
    }
    out = run(op, frame_of(a=values))
    expected = python_map(values, lambda v: re.match("(?P<word>[a-z]+)?(?P<num>[0-9]+)?", v).group("num"))
    assert out["a"].to_list() == expected == ["12", None, None, "99"]


# --- split ------------------------------------------------------------------------------------------


def test_split_into_a_list_matches_duckdb_string_split() -> None:
    frame = frame_of(tags=["a,b,c", "solo", None, "", "x,,y", "é,😀"])
    out = run({"split": {"column": "tags", "by": ",", "as": "tag_list"}}, frame)
    expected = duck("SELECT tags, string_split(tags, ',') AS tag_list FROM t", t=frame)
    assert_frame_equal(out, expected)


@pytest.mark.parametrize("remainder", ["keep", "drop"])
def test_split_into_named_columns(remainder: str) -> None:
    values = ["Ann Marie Smith", "Bob", None, "", "Éva Ñúñez"]
    op = {"split": {"column": "name", "by": " ", "into": ["first", "rest"], "remainder": remainder}}
    out = run(op, frame_of(name=values))

    def part(v: str | None, i: int) -> str | None:
        if v is None:
            return None
        parts = v.split(" ", 1) if remainder == "keep" else v.split(" ")[:2]
        return parts[i] if i < len(parts) else None

    expected = frame_of(name=values, first=[part(v, 0) for v in values], rest=[part(v, 1) for v in values])
    assert_frame_equal(out, expected)
    assert out["rest"][0] == ("Marie Smith" if remainder == "keep" else "Marie")


# --- pad -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("side", "method"), [("left", str.rjust), ("right", str.ljust)])
def test_pad_counts_characters_and_leaves_longer_values(side: str, method: Any) -> None:
    values = ["7", "é", "😀😀", "toolong", None, ""]
    op = {"pad": {"columns": ["a"], "width": 4, "fill_char": "·", "side": side}}
    out = run(op, frame_of(a=values))
    assert out["a"].to_list() == python_map(values, lambda v: method(v, 4, "·"))


def test_pad_integers_become_zero_padded_text() -> None:
    frame = pl.DataFrame({"account": [42, None, 123456, -5]}, schema={"account": pl.Int32})
    out = run({"pad": {"columns": ["account"], "width": 5, "fill_char": "0"}}, frame)
    assert_frame_equal(out, frame_of(account=["00042", None, "123456", "000-5"]))


# --- normalize_email, normalize_phone -------------------------------------------------------------

EMAILS = {
    " Ann@Example.COM ": "ann@example.com",
    "first.last+tag@sub.example.co.uk": "first.last+tag@sub.example.co.uk",
    "JOSÉ@Exämple.DE": "josé@exämple.de",
    "o'brien@example.ie": "o'brien@example.ie",
    "user@xn--80ak6aa92e.com": "user@xn--80ak6aa92e.com",
    "bad@": None,
    "no-at-sign.com": None,
    "two@@example.com": None,
    "a..b@example.com": None,
    ".lead@example.com": None,
    "x@y.c": None,
    "x@-bad-.com": None,
    "spa ce@example.com": None,
    "Name <a@example.com>": None,
}


def test_normalize_email_trims_lowercases_and_nulls_invalid() -> None:
    values = [*EMAILS, None, "", "   "]
    out = run({"normalize_email": ["email"]}, frame_of(email=values, id=[str(i) for i in range(len(values))]))
    assert out["email"].to_list() == [*EMAILS.values(), None, None, None]
    assert out["id"].to_list() == [str(i) for i in range(len(values))]


def test_normalize_email_counts_invalid_but_not_blank_values() -> None:
    values = [*EMAILS, None, "", "   "]
    invalid = sum(v is None for v in EMAILS.values())
    assert metrics({"normalize_email": ["email"]}, frame_of(email=values)) == {
        "normalize_email#1.email_invalid": invalid
    }


PHONES = {  # input -> (default_country_code 44, no default)
    "020 7946 0958": ("+442079460958", None),
    "+44 (0)20 7946 0958": ("+442079460958", "+442079460958"),
    "0044 20 7946 0958": ("+442079460958", "+442079460958"),
    "07700-900-123 ext. 45": ("+447700900123", None),
    "(01632) 960 001": ("+441632960001", None),
    "+1 (555) 123-4567": ("+15551234567", "+15551234567"),
    fullwidth("+44 7700 900123"): ("+447700900123", "+447700900123"),
    "\u00a0+33 1 23 45 67 89\u00a0": ("+33123456789", "+33123456789"),
    "call me": (None, None),
    "0800 FLOWERS": (None, None),
    "12": (None, None),
    "+44 20 7946 0958 1234 5678": (None, None),
    "44+20 7946": (None, None),
    "+0 20 7946 0958": (None, None),
}


@pytest.mark.parametrize("with_default", [True, False])
def test_normalize_phone_to_e164(with_default: bool) -> None:
    values = [*PHONES, None, "", " "]
    params: dict[str, Any] = {"columns": ["phone"]}
    if with_default:
        params["default_country_code"] = 44
    out = run({"normalize_phone": params}, frame_of(phone=values))
    expected = [pair[0 if with_default else 1] for pair in PHONES.values()]
    assert out["phone"].to_list() == [*expected, None, None, None]
    count = metrics({"normalize_phone": params}, frame_of(phone=values))["normalize_phone#1.phone_invalid"]
    assert count == sum(e is None for e in expected)


def test_normalize_phone_us_style_prefixes() -> None:
    values = ["1 (555) 123-4567", "555.123.4567", "011 44 20 7946 0958", "123"]
    op = {
        "normalize_phone": {
            "columns": ["p"],
            "default_country_code": "+1",
            "trunk_prefix": "1",
            "international_prefix": "011",
        }
    }
    out = run(op, frame_of(p=values))
    assert out["p"].to_list() == ["+15551234567", "+15551234567", "+442079460958", None]


# --- map_values -------------------------------------------------------------------------------------


def test_map_values_keeps_unmapped_values_by_default() -> None:
    mapping = {"flowers": "florist", "Florist": "florist", "photo": "photographer"}
    values = ["flowers", "FLOWERS", "Florist", "photo", "venue", None, ""]
    out = run({"map_values": {"columns": ["c"], "mapping": mapping}}, frame_of(c=values))
    assert out["c"].to_list() == python_map(values, lambda v: mapping.get(v, v))


def test_map_values_case_insensitive_with_default() -> None:
    mapping = {"Flowers": "florist", "photo": "photographer", "Straße": "street"}
    values = ["FLOWERS", "flowers", "Photo", "venue", None, "STRASSE", "straße"]
    op = {"map_values": {"columns": ["c"], "mapping": mapping, "default": "other", "case_insensitive": True}}
    out = run(op, frame_of(c=values))
    lower = {k.lower(): v for k, v in mapping.items()}
    assert out["c"].to_list() == python_map(values, lambda v: lower.get(v.lower(), "other"))
    assert out["c"][5] == "other"  # lowercase comparison, not Unicode case folding (ß != ss)
    assert metrics(op, frame_of(c=values)) == {"map_values#1.c_unmapped": 2}


def test_map_values_to_booleans_with_null_default() -> None:
    op = {"map_values": {"columns": ["ok"], "mapping": {"y": True, "yes": True, "n": False}, "default": None}}
    out = run(op, frame_of(ok=["y", "yes", "n", "maybe", None]))
    assert_frame_equal(out, pl.DataFrame({"ok": [True, True, False, None, None]}))


# --- empty frames, wrong types, bad parameters, lineage ---------------------------------------------

ALL_OPS: list[tuple[dict[str, Any], dict[str, pl.DataType]]] = [
    ({"trim": ["a"]}, {}),
    ({"change_case": {"columns": ["a"], "to": "title"}}, {}),
    ({"regex_replace": {"columns": ["a"], "pattern": r"\s+", "replacement": " "}}, {}),
    ({"regex_extract": {"column": "a", "pattern": "@(.+)$", "as": "d"}}, {"d": pl.String}),
    ({"split": {"column": "a", "by": ","}}, {"a": pl.List(pl.String)}),
    ({"split": {"column": "a", "by": ",", "into": ["x", "y"]}}, {"x": pl.String, "y": pl.String}),
    ({"pad": {"columns": ["n"], "width": 3}}, {"n": pl.String}),
    ({"normalize_whitespace": ["a"]}, {}),
    ({"normalize_email": ["a"]}, {}),
    ({"normalize_phone": {"columns": ["a"], "default_country_code": "44"}}, {}),
    ({"map_values": {"columns": ["a"], "mapping": {"x": "y"}}}, {}),
    ({"map_values": {"columns": ["a"], "mapping": {"x": 1}, "default": 0}}, {"a": pl.Int64}),
]


@pytest.mark.parametrize(("op", "changed"), ALL_OPS, ids=lambda v: next(iter(v)) if v else "")
def test_empty_frame_gives_empty_frame_of_the_right_schema(
    op: dict[str, Any], changed: dict[str, pl.DataType]
) -> None:
    schema = {"a": pl.String, "n": pl.Int64}
    out = run(op, pl.DataFrame(schema=schema))
    assert out.height == 0
    assert out.schema == pl.Schema({**schema, **changed})
    assert parse_op(op, 0).output_schema(pl.Schema(schema), OpContext()) == out.schema


@pytest.mark.parametrize(("op", "changed"), ALL_OPS, ids=lambda v: next(iter(v)) if v else "")
def test_lineage_matches_behaviour(op: dict[str, Any], changed: dict[str, pl.DataType]) -> None:
    frame = pl.DataFrame(
        {
            "a": [" ann@Example.com ", "x,y  z", "solo", None, "+44 20 7946 0958", "x", "Straße,1"],
            "n": [1, 22, None, 4, 5, 6, 7],
            "other": ["p", "q", "r", "s", None, "t", "u"],
        }
    )
    assert_lineage_matches(op, frame)


def test_text_ops_reject_non_text_columns_from_the_schema() -> None:
    schema = pl.Schema({"n": pl.Int64, "a": pl.String})
    with pytest.raises(OpSchemaError, match="trim needs a text column, but n is Int64"):
        chain_lineage(schema, [parse_op({"trim": ["n"]}, 0)], OpContext())
    with pytest.raises(OpSchemaError, match='unable to find column "missing"'):
        chain_lineage(schema, [parse_op({"normalize_email": ["missing"]}, 0)], OpContext())


@pytest.mark.parametrize(
    ("op", "message"),
    [
        ({"regex_replace": {"columns": ["a"], "pattern": "(a"}}, "not a valid regular expression"),
        ({"regex_replace": {"columns": ["a"], "pattern": "(?<=a)b"}}, "not supported by Polars: look-around"),
        (
            {"regex_replace": {"columns": ["a"], "pattern": r"(a)\1"}},
            "not supported by Polars: backreferences",
        ),
        ({"regex_replace": {"columns": ["a"], "pattern": "(a)", "replacement": "$1x"}}, r"write \$\{1\}x"),
        ({"regex_replace": {"columns": ["a"], "pattern": "(a)", "replacement": "$2"}}, "group '2'"),
        ({"regex_replace": {"columns": ["a"], "pattern": "(a)", "replacement": r"\1"}}, r"not \\1"),
        ({"regex_extract": {"column": "a", "pattern": "(a)", "group": 2, "as": "b"}}, "has 1 group"),
        ({"regex_extract": {"column": "a", "pattern": "(a)", "group": "x", "as": "b"}}, "no group named 'x'"),
        ({"regex_extract": {"column": "a", "pattern": "(a)"}}, "as: Field required"),
        ({"trim": {"columns": ["a"], "colums": ["b"]}}, "unknown parameter 'colums'; trim takes: "),
        ({"change_case": {"columns": ["a"], "to": "sentence"}}, "to: Input should be"),
        ({"split": {"column": "a", "by": ""}}, "by: String should have at least 1"),
        ({"split": {"column": "a", "by": ",", "into": ["x"], "as": "y"}}, "either into"),
        ({"pad": {"columns": ["a"], "width": 0}}, "width: Input should be greater than or equal to 1"),
        ({"pad": {"columns": ["a"], "width": 3, "fill_char": "ab"}}, "fill_char: String should have at most"),
        (
            {"normalize_phone": {"columns": ["a"], "default_country_code": "0044"}},
            "not a country calling code",
        ),
        ({"normalize_phone": {"columns": ["a"], "trunk_prefix": "x"}}, "trunk_prefix: String should match"),
        ({"map_values": {"columns": ["a"], "mapping": {"x": 1, "y": "z"}}}, "mix types: int, string"),
        ({"map_values": {"columns": ["a"], "mapping": {"x": True}}}, "needs a default"),
        (
            {"map_values": {"columns": ["a"], "mapping": {"X": "1", "x": "2"}, "case_insensitive": True}},
            "differ only in case",
        ),
    ],
)
def test_bad_parameters_fail_at_parse_time(op: dict[str, Any], message: str) -> None:
    with pytest.raises(OpParseError, match=message) as err:
        parse_op(op, 0)
    assert err.value.hint and err.value.hint.startswith(f"e.g. {next(iter(op))}:")
