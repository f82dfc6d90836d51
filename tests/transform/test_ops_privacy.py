"""Privacy ops against independent computations: Python's hmac for keyed hashes, DuckDB SQL for
dates and ages, hand-written frames for masks, ZIPs and redaction; nulls, empty frames, bad
parameters and lineage."""

from __future__ import annotations

import hmac
from datetime import UTC, date, datetime
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from headwater.transform import OpContext
from headwater.transform.lineage import Kind
from headwater.transform.ops.privacy import SAFE_HARBOR_ZIP3, _Digests
from headwater.transform.registry import OpSchemaError, chain_lineage, parse_op, run_ops
from tests.transform.helpers import parse_error, run
from tests.transform.lineage_check import assert_lineage_matches

SALT = "pepper-for-tests-0123456789"
OTHER_SALT = "another-salt-for-tests-9876"


def counted(op: dict[str, Any], frame: pl.DataFrame) -> dict[str, Any]:
    return run_ops(frame.lazy(), [parse_op(op, 0)], OpContext())[1]


def duck(frame: pl.DataFrame, sql: str) -> pl.DataFrame:
    con = duckdb.connect()
    con.register("t", frame.to_arrow())
    return pl.from_arrow(con.sql(sql).to_arrow_table())  # type: ignore[return-value]


def hmac_hex(value: str | None, salt: str = SALT) -> str | None:
    if value is None:
        return None
    return hmac.new(salt.encode(), value.encode(), "sha256").hexdigest()


# ---------------------------------------------------------------- hash_columns


def test_hash_columns_is_hmac_sha256_of_the_text() -> None:
    frame = pl.DataFrame(
        {
            "email": ["ann@example.org", None, "ann@example.org", "zoë@exämple.de"],
            "member": [1001, 2002, None, 1001],
            "born": [date(1950, 1, 2), None, date(2001, 12, 31), date(1950, 1, 2)],
            "keep": ["a", "b", "c", "d"],
        }
    )
    out = run({"hash_columns": {"columns": ["email", "member", "born"], "salt": SALT}}, frame)
    expected = pl.DataFrame(
        {
            "email": [hmac_hex(v) for v in frame["email"]],
            "member": [hmac_hex(None if v is None else str(v)) for v in frame["member"]],
            "born": [hmac_hex(None if v is None else v.isoformat()) for v in frame["born"]],
            "keep": ["a", "b", "c", "d"],
        }
    )
    assert_frame_equal(out, expected)
    assert out["email"][0] == out["email"][2] and len(out["email"][0]) == 64


def test_hash_columns_salt_changes_every_hash() -> None:
    frame = pl.DataFrame({"id": ["a", "b", "c"]})
    one = run({"hash_columns": {"columns": ["id"], "salt": SALT}}, frame)["id"]
    two = run({"hash_columns": {"columns": ["id"], "salt": OTHER_SALT}}, frame)["id"]
    assert not set(one) & set(two)
    assert two.to_list() == [hmac_hex(v, OTHER_SALT) for v in ["a", "b", "c"]]


def test_hash_columns_empty_and_all_null() -> None:
    op = {"hash_columns": {"columns": ["id"], "salt": SALT}}
    empty = run(op, pl.DataFrame(schema={"id": pl.Int64, "x": pl.Float64}))
    assert_frame_equal(empty, pl.DataFrame(schema={"id": pl.String, "x": pl.Float64}))
    nulls = run(op, pl.DataFrame({"id": [None, None]}, schema={"id": pl.String}))
    assert nulls["id"].to_list() == [None, None]


def test_hash_columns_salt_rules() -> None:
    msg = parse_error({"hash_columns": {"columns": ["id"], "salt": "short-salt"}})
    assert "at least 16 characters" in msg and "short-salt" not in msg
    assert "salt" in parse_error({"hash_columns": {"columns": ["id"]}})
    assert "columns" in parse_error({"hash_columns": {"columns": [], "salt": SALT}})
    op = parse_op({"hash_columns": {"columns": ["id"], "salt": SALT}}, 0)
    assert SALT not in repr(op) and SALT not in str(op.model_dump())
    # the documented placeholder parses, but an op that was never interpolated refuses to run
    placeholder = parse_op({"hash_columns": {"columns": ["id"], "salt": "${HASH_SALT}"}}, 0)
    with pytest.raises(ValueError, match="not interpolated"):
        placeholder.apply(pl.LazyFrame({"id": ["a"]}), OpContext())


def test_hash_columns_refuses_nested_columns() -> None:
    op = parse_op({"hash_columns": {"columns": ["tags"], "salt": SALT}}, 0)
    with pytest.raises(OpSchemaError, match="tags"):
        chain_lineage(pl.Schema({"tags": pl.List(pl.String)}), [op], OpContext())


def test_hash_columns_lineage() -> None:
    frame = pl.DataFrame({"a": ["x", None, "y"], "b": [1, 2, None], "c": [1.5, 2.5, 3.5]})
    op = {"hash_columns": {"columns": ["a", "b"], "salt": SALT}}
    assert_lineage_matches(op, frame)
    assert parse_op(op, 0).lineage(frame.schema, OpContext())["a"].kind is Kind.DERIVED


# ---------------------------------------------------------------- pseudonymize


def test_pseudonymize_prefix_and_digits() -> None:
    frame = pl.DataFrame({"patient_id": ["PAT-001", "PAT-002", None, "PAT-001"], "n": [1, 2, 3, 4]})
    op = {"pseudonymize": {"columns": ["patient_id"], "prefix": "P-", "length": 12, "salt": SALT}}
    out = run(op, frame)
    expected = frame.with_columns(
        patient_id=pl.Series(["P-" + h[:12] if (h := hmac_hex(v)) else None for v in frame["patient_id"]])
    )
    assert_frame_equal(out, expected)
    assert out["patient_id"][0] == out["patient_id"][3] != out["patient_id"][1]


def test_pseudonymize_is_stable_and_salt_dependent() -> None:
    frame = pl.DataFrame({"id": [f"id{i}" for i in range(50)]})
    first = run({"pseudonymize": {"columns": ["id"], "salt": SALT}}, frame)
    again = run({"pseudonymize": {"columns": ["id"], "salt": SALT}}, frame.reverse()).reverse()
    other = run({"pseudonymize": {"columns": ["id"], "salt": OTHER_SALT}}, frame)
    assert_frame_equal(first, again)
    assert first["id"].n_unique() == 50 and first["id"].str.len_chars().to_list() == [16] * 50
    assert not set(first["id"]) & set(other["id"])


def test_pseudonymize_collision_fails() -> None:
    # 17 distinct values cannot have distinct 1-digit hex pseudonyms (the op's minimum is 8 digits)
    values = pl.Series("id", [f"secret-id-{i}" for i in range(17)])
    with pytest.raises(pl.exceptions.ComputeError, match="share a pseudonym") as info:
        _Digests(SALT.encode(), "id", length=1, unique=True)(values)
    assert "secret-id" not in str(info.value)


def test_pseudonymize_params_and_empty() -> None:
    assert "length" in parse_error({"pseudonymize": {"columns": ["id"], "salt": SALT, "length": 4}})
    assert "unknown" in parse_error({"pseudonymize": {"columns": ["id"], "salt": SALT, "unknown": 1}})
    out = run({"pseudonymize": {"columns": ["id"], "salt": SALT}}, pl.DataFrame(schema={"id": pl.Int32}))
    assert out.schema == pl.Schema({"id": pl.String}) and out.height == 0


def test_pseudonymize_lineage() -> None:
    frame = pl.DataFrame({"id": ["a", "b", None], "v": [1, 2, 3]})
    op = {"pseudonymize": {"columns": ["id"], "prefix": "P-", "salt": SALT}}
    assert_lineage_matches(op, frame)
    assert parse_op(op, 0).lineage(frame.schema, OpContext())["id"].kind is Kind.DERIVED


# ---------------------------------------------------------------- mask


def test_mask_keeps_last_four_and_separators() -> None:
    frame = pl.DataFrame(
        {
            "ssn": ["123-45-6789", "987654321", None, "12-3", "", "Zoë Ünal 1234"],
            "acct": [123456789, None, 42, 1, 5555, 1000000],
        }
    )
    out = run({"mask": {"columns": ["ssn", "acct"]}}, frame)
    expected = pl.DataFrame(
        {
            "ssn": ["XXX-XX-6789", "XXXXX4321", None, "XX-X", "", "XXX XXXX 1234"],
            "acct": ["XXXXX6789", None, "XX", "X", "XXXX", "XXX0000"],
        }
    )
    assert_frame_equal(out, expected)


def test_mask_first_and_last_without_separators() -> None:
    frame = pl.DataFrame({"email": ["ann.lee@example.org", "ab@c", None]})
    out = run(
        {
            "mask": {
                "columns": ["email"],
                "keep_first": 2,
                "keep_last": 4,
                "char": "$",
                "keep_separators": False,
            }
        },
        frame,
    )
    assert out["email"].to_list() == ["an" + "$" * 13 + ".org", "$$$$", None]
    empty = run({"mask": ["email"]}, pl.DataFrame(schema={"email": pl.String}))
    assert_frame_equal(empty, pl.DataFrame(schema={"email": pl.String}))


def test_mask_params() -> None:
    assert "char" in parse_error({"mask": {"columns": ["a"], "char": "**"}})
    assert "keep_last" in parse_error({"mask": {"columns": ["a"], "keep_last": -1}})


def test_mask_lineage() -> None:
    frame = pl.DataFrame({"ssn": ["123-45-6789", None, "111-22-3333"], "other": [1, 2, 3]})
    assert_lineage_matches({"mask": {"columns": ["ssn"], "keep_last": 4}}, frame)


# ---------------------------------------------------------------- generalize_date


def date_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "d": [date(2024, 2, 29), date(1999, 12, 31), None, date(1900, 1, 1)],
            "ts": [datetime(2024, 3, 9, 23, 59), None, datetime(2000, 1, 1), datetime(1987, 12, 25, 8)],
        }
    )


@pytest.mark.parametrize(
    ("to", "fmt", "sql"),
    [
        ("year", "date", "date_trunc('year', d)::DATE AS d, date_trunc('year', ts) AS ts"),
        ("month", "date", "date_trunc('month', d)::DATE AS d, date_trunc('month', ts) AS ts"),
        ("year", "integer", "year(d)::INTEGER AS d, year(ts)::INTEGER AS ts"),
        (
            "month",
            "integer",
            "(year(d) * 100 + month(d))::INTEGER AS d, (year(ts) * 100 + month(ts))::INTEGER AS ts",
        ),
        ("year", "text", "strftime(d, '%Y') AS d, strftime(ts, '%Y') AS ts"),
        ("month", "text", "strftime(d, '%Y-%m') AS d, strftime(ts, '%Y-%m') AS ts"),
    ],
    ids=["year-date", "month-date", "year-integer", "month-integer", "year-text", "month-text"],
)
def test_generalize_date_matches_duckdb(to: str, fmt: str, sql: str) -> None:
    frame = date_frame()
    out = run({"generalize_date": {"columns": ["d", "ts"], "to": to, "format": fmt}}, frame)
    assert_frame_equal(out, duck(frame, f"SELECT {sql} FROM t"), check_dtypes=False)
    assert (
        out.schema
        == run({"generalize_date": {"columns": ["d", "ts"], "to": to, "format": fmt}}, frame.clear()).schema
    )


def test_generalize_date_in_the_time_zone_of_the_value() -> None:
    utc = pl.Series([datetime(2024, 1, 1, 2, tzinfo=UTC), None]).dt.convert_time_zone("America/New_York")
    frame = pl.DataFrame({"at": utc})
    out = run({"generalize_date": {"columns": ["at"], "format": "integer"}}, frame)
    assert out["at"].to_list() == [2023, None]  # 2024-01-01 02:00 UTC is still 2023 in New York
    trunc = run({"generalize_date": ["at"]}, frame)["at"]
    assert trunc.dtype == pl.Datetime("us", "America/New_York")
    assert trunc[0] == datetime(2023, 1, 1, tzinfo=trunc[0].tzinfo)


def test_generalize_date_refuses_text_and_bad_params() -> None:
    op = parse_op({"generalize_date": ["when"]}, 0)
    with pytest.raises(OpSchemaError, match="not a date"):
        chain_lineage(pl.Schema({"when": pl.String}), [op], OpContext())
    assert "to" in parse_error({"generalize_date": {"columns": ["d"], "to": "day"}})


def test_generalize_date_lineage() -> None:
    frame = date_frame().with_columns(x=pl.lit(1))
    op = {"generalize_date": {"columns": ["d", "ts"], "format": "integer"}}
    assert_lineage_matches(op, frame)
    assert parse_op(op, 0).lineage(frame.schema, OpContext())["d"].kind is Kind.CALCULATION


# ---------------------------------------------------------------- generalize_zip


def test_generalize_zip_text_and_integers() -> None:
    frame = pl.DataFrame(
        {
            "zip": ["02134", "2134", "02134-1234", "021341234", " 10001 ", "03601", "89301-0001", "ABCDE",
                    "123456", None],
            "zip_int": [2134, 21341234, 501, 5011234, 10001, 3601, 89012, 12, 1234567890, None],
        }
    )  # fmt: skip
    out = run({"generalize_zip": ["zip", "zip_int"]}, frame)
    expected = pl.DataFrame(
        {
            "zip": ["021", "021", "021", "021", "100", "000", "000", None, None, None],
            "zip_int": ["021", "021", "005", "005", "100", "000", "000", None, None, None],
        }
    )
    assert_frame_equal(out, expected)
    assert counted({"generalize_zip": ["zip", "zip_int"]}, frame) == {
        "generalize_zip#1.zip_invalid": 2,
        "generalize_zip#1.zip_int_invalid": 2,
    }


def test_generalize_zip_every_restricted_prefix() -> None:
    prefixes = list(SAFE_HARBOR_ZIP3)
    listed = "036, 059, 063, 102, 203, 556, 692, 790, 821, 823, 830, 831, 878, 879, 884, 890, 893"
    assert prefixes == listed.split(", ")
    others = ["035", "037", "058", "100", "204", "894", "999", "000"]
    frame = pl.DataFrame({"zip": [p + "12" for p in prefixes + others]})
    out = run({"generalize_zip": ["zip"]}, frame)["zip"].to_list()
    assert out == ["000"] * len(prefixes) + others
    custom = run({"generalize_zip": {"columns": ["zip"], "restricted": ["035"]}}, frame)["zip"].to_list()
    assert custom == [*prefixes, "000", *others[1:]]


def test_generalize_zip_params_and_empty() -> None:
    assert "3 digits" in parse_error({"generalize_zip": {"columns": ["z"], "restricted": ["36"]}})
    out = run({"generalize_zip": ["z"]}, pl.DataFrame(schema={"z": pl.Int64}))
    assert out.schema == pl.Schema({"z": pl.String})
    with pytest.raises(OpSchemaError, match="not text or integer"):
        chain_lineage(pl.Schema({"z": pl.Float64}), [parse_op({"generalize_zip": ["z"]}, 0)], OpContext())


def test_generalize_zip_lineage() -> None:
    frame = pl.DataFrame({"zip": ["02134", "10001", None, "94110-1234"], "n": [4, 3, 2, 1]})
    assert_lineage_matches({"generalize_zip": ["zip"]}, frame)


# ---------------------------------------------------------------- generalize_age


def age_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "age": [0, 9, 10, 45, 89, 90, 104, -3, None],
            "age_f": [0.5, 9.99, 10.0, 45.5, 89.9, 90.0, 101.25, float("nan"), None],
        }
    )


def test_generalize_age_caps_at_90_like_duckdb() -> None:
    frame = age_frame()
    out = run({"generalize_age": ["age", "age_f"]}, frame)
    expected = duck(
        frame,
        "SELECT CASE WHEN age >= 90 THEN 90 WHEN age >= 0 THEN age END AS age, "
        "CASE WHEN isnan(age_f) THEN NULL WHEN age_f >= 90 THEN 90.0 WHEN age_f >= 0 THEN age_f END "
        "AS age_f FROM t",
    )
    assert_frame_equal(out, expected)
    assert counted({"generalize_age": ["age", "age_f"]}, frame) == {
        "generalize_age#1.age_invalid": 1,
        "generalize_age#1.age_f_invalid": 1,
    }


@pytest.mark.parametrize("width", [10, 25])
def test_generalize_age_bands_like_duckdb(width: int) -> None:
    frame = age_frame()
    out = run({"generalize_age": {"columns": ["age", "age_f"], "width": width}}, frame)
    band = (
        "CASE WHEN isnan({c}::DOUBLE) THEN NULL WHEN {c} >= 90 THEN '90+' WHEN {c} >= 0 THEN "
        "(floor({c})::BIGINT // {w} * {w})::VARCHAR || '-' || "
        "least(floor({c})::BIGINT // {w} * {w} + {w} - 1, 89)::VARCHAR END AS {c}"
    )
    sql = f"SELECT {band.format(c='age', w=width)}, {band.format(c='age_f', w=width)} FROM t"
    assert_frame_equal(out, duck(frame, sql))
    if width == 25:
        assert out["age"].to_list()[4:7] == ["75-89", "90+", "90+"]


def test_generalize_age_label_and_params() -> None:
    frame = pl.DataFrame({"age": [34, 95, None]}, schema={"age": pl.Int16})
    out = run({"generalize_age": {"columns": ["age"], "top_label": "90 or older"}}, frame)
    assert out["age"].to_list() == ["34", "90 or older", None]
    assert run({"generalize_age": ["age"]}, frame).schema == pl.Schema({"age": pl.Int16})
    assert "width" in parse_error({"generalize_age": {"columns": ["age"], "width": 1}})
    with pytest.raises(OpSchemaError, match="not a number"):
        chain_lineage(pl.Schema({"age": pl.String}), [parse_op({"generalize_age": ["age"]}, 0)], OpContext())
    empty = run({"generalize_age": {"columns": ["age"], "width": 5}}, frame.clear())
    assert empty.schema == pl.Schema({"age": pl.String}) and empty.height == 0


def test_generalize_age_lineage() -> None:
    frame = pl.DataFrame({"age": [30, 91, None, 5], "other": ["a", "b", "c", "d"]})
    assert_lineage_matches({"generalize_age": {"columns": ["age"], "width": 10}}, frame)


# ---------------------------------------------------------------- redact_text

REDACT_CASES = [
    ("write to ann.lee+x@mail.example.org today", "write to [EMAIL] today"),
    ("call (415) 555-2671 or 415.555.2672 or +1 415 555 2673", "call [PHONE] or [PHONE] or [PHONE]"),
    ("fax 212-555-0100; uk +44 20 7946 0958.", "fax [PHONE]; uk [PHONE]."),
    ("ssn 123-45-6789 and 078 05 1120", "ssn [SSN] and [SSN]"),
    ("see https://portal.example.com/p?id=ann@x.org, or www.example.net.", "see [URL], or [URL]."),
    ("from 192.168.10.254 and 2001:db8:85a3::8a2e:370:7334 and ::1", "from [IP] and [IP] and [IP]"),
    ("fe80:0:0:0:202:b3ff:fe1e:8329 logged", "[IP] logged"),
    # not identifiers: dates, amounts, times, versions, ZIPs, codes
    (
        "on 2024-03-15 at 10:30:45 paid $1,234.56 for 99213 (v1.2.3) zip 02134 ref 12-3456",
        "on 2024-03-15 at 10:30:45 paid $1,234.56 for 99213 (v1.2.3) zip 02134 ref 12-3456",
    ),
    ("Zoë's note: é-mail zoë@exämple.de", "Zoë's note: é-mail [EMAIL]"),
    ("", ""),
    (None, None),
]


def test_redact_text_cases() -> None:
    frame = pl.DataFrame({"notes": [c[0] for c in REDACT_CASES]}, schema={"notes": pl.String})
    out = run({"redact_text": ["notes"]}, frame)
    assert out["notes"].to_list() == [c[1] for c in REDACT_CASES]


def test_redact_text_kinds_patterns_and_counters() -> None:
    frame = pl.DataFrame({"t": ["MRN: 00123 mail a@b.co call 415-555-2671", None, "MRN#9 x@y.org"]})
    op = {"redact_text": {"columns": ["t"], "kinds": ["email"], "patterns": {"MRN": "MRN[:# ]*[0-9]+"}}}
    assert run(op, frame)["t"].to_list() == ["[MRN] mail [EMAIL] call 415-555-2671", None, "[MRN] [EMAIL]"]
    assert counted(op, frame) == {"redact_text#1.t_mrn": 2, "redact_text#1.t_email": 2}
    # an email inside a URL goes with the URL and is not counted twice
    url = pl.DataFrame({"t": ["https://x.org/?u=a@b.co and c@d.org"]})
    assert counted({"redact_text": ["t"]}, url) == {
        "redact_text#1.t_url": 1,
        "redact_text#1.t_email": 1,
        "redact_text#1.t_ip": 0,
        "redact_text#1.t_ssn": 0,
        "redact_text#1.t_phone": 0,
    }


def test_redact_text_params_empty_and_types() -> None:
    assert "not a valid regex" in parse_error({"redact_text": {"columns": ["t"], "patterns": {"X": "(a"}}})
    assert "token" in parse_error({"redact_text": {"columns": ["t"], "patterns": {"$1": "a"}}})
    assert "kinds" in parse_error({"redact_text": {"columns": ["t"], "kinds": ["name"]}})
    assert "at least one" in parse_error({"redact_text": {"columns": ["t"], "kinds": []}})
    empty = run({"redact_text": ["t"]}, pl.DataFrame(schema={"t": pl.String, "n": pl.Int8}))
    assert_frame_equal(empty, pl.DataFrame(schema={"t": pl.String, "n": pl.Int8}))
    with pytest.raises(OpSchemaError, match="not text"):
        chain_lineage(pl.Schema({"t": pl.Int64}), [parse_op({"redact_text": ["t"]}, 0)], OpContext())


def test_redact_text_lineage() -> None:
    frame = pl.DataFrame({"t": ["mail a@b.co", None, "plain"], "u": ["call 415-555-2671", "x", None]})
    assert_lineage_matches({"redact_text": ["t", "u"]}, frame)
