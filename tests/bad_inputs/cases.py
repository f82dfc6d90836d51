"""The corpus: bad inputs a new user hits (files, specs, sources, expressions, loads), each with the
outcome it must have. `test_corpus.py` runs every case through `headwater validate` and a run.

A case is a pipeline named after it, loading table `target`. Outcomes:
- refused: validate reports it and the run does not start (recorded failed, SpecError);
- failed:  the run fails at a step (validate may or may not see it), the target as it was;
- loaded:  the run loads, and the target equals an independent computation over the raw input.
Every message of a refused or failed case must name a place (`file:line`, the data file's line, a
row, a column, a key, a field) and a fix."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl

Outcome = Literal["refused", "failed", "loaded"]
SPEC_PLACE = r"\.yaml:\d+: [\w\[\]\.]+"
FIX = r"\(fix: .{8,}|Fix: .{8,}"


@dataclass
class Case:
    id: str
    outcome: Outcome
    spec: str
    """The spec after `name: <id>`; `{here}` is the case's folder."""
    place: str = SPEC_PLACE
    """A regex the message must match: where the problem is."""
    says: str = ""
    """A regex the message must match: what the problem is."""
    files: dict[str, str | bytes] = field(default_factory=dict)
    validate_sees: bool | None = None
    """Whether validate reports it (default: refused cases only)."""
    seed: list[str] = field(default_factory=list)
    """SQL run on the warehouse before: the target's rows that a failed run must leave alone."""
    expected: Callable[[Path], pl.DataFrame] | None = None
    """For loaded cases: the target computed independently from the raw files."""
    status: str = "completed"
    params: dict[str, str] = field(default_factory=dict)
    setup: Callable[[Path], None] | None = None

    @property
    def validate_problem(self) -> bool:
        return self.outcome == "refused" if self.validate_sees is None else self.validate_sees


def file_to_target(path: str, load: str = "{table: target, mode: append}", **source: Any) -> str:
    options = "".join(f", {k}: {json.dumps(v)}" for k, v in source.items())
    return f"""\
sources:
  feed: {{kind: file, path: {path}{options}}}
steps:
  - {{name: extract, type: extract, source: feed}}
  - {{name: load, type: load, depends_on: [extract], destination: {load}}}
"""


def with_ops(ops: str, path: str = "feed.csv", load: str = "{table: target, mode: append}") -> str:
    return f"""\
sources:
  feed: {{kind: file, path: {path}}}
steps:
  - {{name: extract, type: extract, source: feed}}
  - name: shape
    type: transform
    depends_on: [extract]
    ops:
{ops}
  - {{name: load, type: load, depends_on: [shape], destination: {load}}}
"""


def with_rules(rules: str, path: str = "feed.csv") -> str:
    return f"""\
sources:
  feed: {{kind: file, path: {path}}}
steps:
  - {{name: extract, type: extract, source: feed}}
  - name: check
    type: validate
    depends_on: [extract]
{rules}
  - {{name: load, type: load, depends_on: [check], destination: {{table: target, mode: append}}}}
"""


FEED = "id,name,amount\n1,Ann,10.5\n2,Bo,20\n3,Cy,30.25\n"


def csv_rows(
    name: str, encoding: str = "utf-8", types: dict[str, Any] | None = None
) -> Callable[[Path], pl.DataFrame]:
    """The file read by Python's csv module (any line ending; quotes as RFC 4180), typed by hand."""
    types = types or {"id": int, "name": str, "amount": float}

    def expected(folder: Path) -> pl.DataFrame:
        text = (folder / name).read_bytes().decode(encoding).removeprefix("\ufeff")
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        return pl.DataFrame(
            {c: [None if r[c] == "" else t(r[c]) for r in rows] for c, t in types.items()},
            schema={
                c: pl.Int64 if t is int else pl.Float64 if t is float else pl.String for c, t in types.items()
            },
        )

    return expected


def sqlite_source(folder: Path) -> None:
    with sqlite3.connect(folder / "source.db") as db:
        db.executescript(
            """
            CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, amount REAL);
            INSERT INTO orders VALUES (1, 'a', 10.0), (2, 'b', 20.0), (3, 'a', 5.5);
            CREATE TABLE typed (id INTEGER PRIMARY KEY, qty INTEGER);
            INSERT INTO typed VALUES (1, 5), (2, 'seven'), (3, 9);
            """
        )


CASES: list[Case] = [
    # ---------------------------------------------------------------- data files
    Case("cr_only_csv", "loaded", file_to_target("mac.csv"), files={"mac.csv": FEED.replace("\n", "\r")},
         expected=csv_rows("mac.csv")),
    Case("mixed_line_endings", "loaded", file_to_target("mixed.csv"),
         files={"mixed.csv": "id,name,amount\r\n1,Ann,10.5\n2,Bo,20\r3,Cy,30.25\r\n"}, expected=csv_rows("mixed.csv")),
    Case("utf8_bom", "loaded", file_to_target("bom.csv"), files={"bom.csv": "\ufeff" + FEED},
         expected=csv_rows("bom.csv", "utf-8-sig")),
    Case("latin1_read_with_encoding", "loaded", file_to_target("latin.csv", encoding="latin-1"),
         files={"latin.csv": "id,name,amount\n1,José,1\n2,Renée,2\n".encode("latin-1")},
         expected=csv_rows("latin.csv", "latin-1")),
    Case("latin1_without_encoding", "failed", file_to_target("latin.csv"), validate_sees=True,
         files={"latin.csv": "id,name,amount\n1,José,1\n".encode("latin-1")},
         place=r"latin\.csv: line 2", says=r"not valid UTF-8.*encoding: latin-1"),
    Case("utf16_without_encoding", "failed", file_to_target("wide.csv"), validate_sees=True,
         files={"wide.csv": FEED.encode("utf-16")}, place=r"wide\.csv", says=r"encoding: utf-16"),
    Case("ragged_row", "failed", file_to_target("ragged.csv"), validate_sees=True,
         files={"ragged.csv": "id,name,amount\n1,Ann,1\n2,Bo,2,extra\n3,Cy,3\n"},
         place=r"ragged\.csv: line 3", says=r"4 fields where the header has 3"),
    Case("unclosed_quote", "failed", file_to_target("quote.csv"), validate_sees=True,
         files={"quote.csv": 'id,name,amount\n1,Ann,1\n2,"Bo,2\n3,Cy,3\n'}, place=r"quote\.csv: line 3"),
    Case("broken_ndjson_line", "failed", file_to_target("events.ndjson"), validate_sees=True,
         files={"events.ndjson": '{"id": 1}\n{"id": 2\n{"id": 3}\n'},
         place=r"events\.ndjson: line 2", says=r"not valid JSON"),
    Case("control_character_header", "failed", file_to_target("odd.csv"), validate_sees=True,
         files={"odd.csv": b"id,na\x07me\n1,a\n"}, place=r"odd\.csv: line 1", says="control character"),
    Case("tsv_read_as_csv", "failed", file_to_target("tabs.csv"), validate_sees=True,
         files={"tabs.csv": "id\tname\n1\tAnn\n"}, place=r"tabs\.csv: line 1", says=r"separator"),
    Case("duplicate_header", "failed", file_to_target("dup.csv"), validate_sees=True,
         files={"dup.csv": "id,id,amount\n1,2,3\n"}, place=r"dup\.csv: line 1", says="more than once"),
    Case("empty_file", "failed", file_to_target("empty.csv"), validate_sees=True, files={"empty.csv": ""},
         place=r"empty\.csv", says=r"empty \(0 bytes\)"),
    Case("value_not_of_declared_type", "failed", file_to_target("typed.csv", columns={"amount": "int"}),
         validate_sees=True, files={"typed.csv": "id,amount\n" + "".join(f"{i},{i}\n" for i in range(1, 40)) + "40,n/a\n"},
         place=r"typed\.csv: line 41", says=r"amount"),
    Case("json_records_path_wrong", "failed", file_to_target("doc.json", records="data.rows"), validate_sees=True,
         files={"doc.json": json.dumps({"data": {"items": [{"id": 1}]}})}, place=r"doc\.json", says=r"'rows'"),
    Case("unknown_file_format", "failed", file_to_target("data.txt"), validate_sees=True,
         files={"data.txt": FEED}, place=r"data\.txt", says=r"set format: csv"),
    Case("corrupt_parquet", "failed", file_to_target("broken.parquet"), validate_sees=True,
         files={"broken.parquet": b"PAR1 this is not really parquet"}, place=r"broken\.parquet"),
    Case("zip_with_two_files", "failed", file_to_target("two.zip"), validate_sees=True,
         setup=lambda folder: _zip(folder / "two.zip"), place=r"two\.zip", says="holds 2 files"),
    Case("header_only_file", "loaded", file_to_target("header.csv"), files={"header.csv": "id,name,amount\n"},
         expected=lambda folder: pl.DataFrame(schema={"id": pl.String, "name": pl.String, "amount": pl.String})),
    Case("missing_file", "refused", file_to_target("nowhere.csv"), says="no file matches 'nowhere.csv'"),
    # ---------------------------------------------------------------- specs
    Case("yaml_syntax_error", "refused", "sources:\n  feed: {kind: file, path: feed.csv\nsteps: []\n",
         files={"feed.csv": FEED}, place=r"\.yaml:\d+: \(yaml\)", says="not valid YAML"),
    Case("unknown_top_level_key", "refused", file_to_target("feed.csv") + "shedule: {cron: '0 6 * * *'}\n",
         files={"feed.csv": FEED}, says="unknown key 'shedule'"),
    Case("unknown_step_type", "refused",
         "sources:\n  feed: {kind: file, path: feed.csv}\nsteps:\n  - {name: x, type: extrct, source: feed}\n",
         files={"feed.csv": FEED}, says="extrct"),
    Case("depends_on_unknown_step", "refused", file_to_target("feed.csv").replace("depends_on: [extract]", "depends_on: [extrakt]"),
         files={"feed.csv": FEED}, says="unknown step 'extrakt'"),
    Case("steps_in_a_cycle", "refused", with_ops("      - select: [id]").replace("depends_on: [extract]", "depends_on: [load]"),
         files={"feed.csv": FEED}, says="cycle"),
    Case("duplicate_step_names", "refused", file_to_target("feed.csv").replace("name: load,", "name: extract,"),
         files={"feed.csv": FEED}, says="used twice"),
    Case("literal_password_in_url", "refused",
         "sources:\n  db: {kind: sql, connection: {url: 'postgresql://app:hunter2secret@db/x'}, table: t}\n"
         "steps:\n  - {name: extract, type: extract, source: db}\n", says="literal password"),
    Case("environment_variable_not_set", "refused",
         "sources:\n  feed: {kind: file, path: '${HW_CORPUS_UNSET_DIR}/feed.csv'}\nsteps:\n  - {name: extract, type: extract, source: feed}\n",
         says="HW_CORPUS_UNSET_DIR is not set"),
    Case("bad_cron", "refused", file_to_target("feed.csv") + "schedule: {cron: '61 * * * *'}\n",
         files={"feed.csv": FEED}, says="invalid cron"),
    Case("unknown_time_zone", "refused", file_to_target("feed.csv") + "schedule: {cron: '0 6 * * *', timezone: Mars/Olympus}\n",
         files={"feed.csv": FEED}, says="unknown time zone"),
    Case("upsert_without_key", "refused", file_to_target("feed.csv", load="{table: target, mode: upsert}"),
         files={"feed.csv": FEED}, says="upsert needs a key.*give primary_key"),
    Case("primary_key_not_in_data", "refused", file_to_target("feed.csv", load="{table: target, mode: upsert, primary_key: [code]}"),
         files={"feed.csv": FEED}, says=r"primary key column\(s\) code"),
    Case("separator_and_delimiter", "refused", file_to_target("feed.csv", separator=";", delimiter=","),
         files={"feed.csv": FEED}, says="same option"),
    Case("unknown_encoding", "refused", file_to_target("feed.csv", encoding="latin-42"),
         files={"feed.csv": FEED}, says="unknown text encoding"),
    Case("bad_parameter_value", "refused",
         "params:\n  limit: {type: integer, default: 5}\n" + with_ops("      - limit: '${params.limit}'"),
         files={"feed.csv": FEED}, params={"limit": "lots"}, says="limit", validate_sees=False),
    Case("quality_threshold_out_of_range", "refused", with_rules("    suite: suite.json"),
         files={"feed.csv": FEED, "suite.json": json.dumps({"name": "s", "expectations": [
             {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"},
              "meta": {"headwater": {"name": "id_present", "threshold": 150}}}]})},
         place=r"suite\.json: expectations\[0\] \(id_present\): threshold", says="less than or equal to 100"),
    # ---------------------------------------------------------------- ops and expressions
    Case("unknown_op", "refused", with_ops("      - filtr: 'amount > 1'"), files={"feed.csv": FEED}, says="unknown op 'filtr'"),
    Case("unknown_op_parameter", "refused", with_ops("      - filter: {wher: 'amount > 1'}"),
         files={"feed.csv": FEED}, says="unknown parameter 'wher'; filter takes: where"),
    Case("unknown_column_in_op", "refused", with_ops("      - derive: {total: 'amount * qty'}"),
         files={"feed.csv": FEED}, says="qty"),
    Case("unbalanced_parentheses", "refused", with_ops("      - filter: 'amount > 0) OR (1=1'"),
         files={"feed.csv": FEED}, says="cannot parse expression"),
    Case("python_in_an_expression", "refused", with_ops("      - derive: {x: \"__import__('os').getcwd()\"}"),
         files={"feed.csv": FEED}, says="dot-notation field access is currently unsupported"),
    Case("huge_or_chain", "refused",
         with_ops("      - filter: \"" + " OR ".join(f"amount = {i}" for i in range(50_000)) + "\""),
         files={"feed.csv": FEED}, says=r"too long: [\d,]+ characters \(the limit is 100,000\)"),
    Case("parentheses_too_deep", "refused", with_ops("      - filter: '" + "(" * 40 + "amount > 1" + ")" * 40 + "'"),
         files={"feed.csv": FEED}, says="nests parentheses 40 deep"),
    Case("expect_rule_unparseable", "refused", with_rules("    expect:\n      - {name: positive, rule: 'amount >> 0'}"),
         files={"feed.csv": FEED}, says="cannot parse expression"),
    Case("string_compared_with_number", "failed", with_ops("      - filter: 'name > 5'"), validate_sees=True,
         files={"feed.csv": FEED}, place=r"step shape|steps\[1\]\.ops\[0\]", says="cannot compare string with numeric"),
    Case("strict_cast_of_text", "failed", with_ops("      - cast: {name: int}"), validate_sees=False,
         files={"feed.csv": FEED}, place="step shape", says=r"name|str"),
    # ---------------------------------------------------------------- SQL sources
    Case("sql_query_that_writes", "refused",
         "sources:\n  db: {kind: sql, connection: {url: 'sqlite:///{here}/source.db'}, query: 'DELETE FROM orders'}\n"
         "steps:\n  - {name: extract, type: extract, source: db}\n", setup=sqlite_source, says="must be a SELECT"),
    Case("sql_query_placeholder_without_value", "refused",
         "sources:\n  db: {kind: sql, connection: {url: 'sqlite:///{here}/source.db'}, "
         "query: 'SELECT * FROM orders WHERE amount > :least'}\n"
         "steps:\n  - {name: extract, type: extract, source: db}\n", setup=sqlite_source, says=":least"),
    Case("sql_table_missing", "failed",
         "sources:\n  db: {kind: sql, connection: {url: 'sqlite:///{here}/source.db'}, table: ordrs}\n"
         "steps:\n  - {name: extract, type: extract, source: db}\n"
         "  - {name: load, type: load, depends_on: [extract], destination: {table: target, mode: append}}\n",
         setup=sqlite_source, place=r"ordrs", says="no table"),
    Case("sql_value_not_of_declared_type", "failed",
         "sources:\n  db: {kind: sql, connection: {url: 'sqlite:///{here}/source.db'}, table: typed}\n"
         "steps:\n  - {name: extract, type: extract, source: db}\n"
         "  - {name: load, type: load, depends_on: [extract], destination: {table: target, mode: append}}\n",
         setup=sqlite_source, place=r"column qty.*row 2|row 2.*column qty", says="qty"),
    Case("sql_query_aggregates_in_the_database", "loaded",
         "sources:\n  db: {kind: sql, connection: {url: 'sqlite:///{here}/source.db'}, params: {least: 6}, "
         "query: 'SELECT customer, sum(amount) AS total FROM orders WHERE amount > :least GROUP BY customer ORDER BY customer'}\n"
         "steps:\n  - {name: extract, type: extract, source: db}\n"
         "  - {name: load, type: load, depends_on: [extract], destination: {table: target, mode: append}}\n",
         setup=sqlite_source,
         expected=lambda folder: pl.DataFrame({"customer": ["a", "b"], "total": [10.0, 20.0]})),
    # ---------------------------------------------------------------- loads
    Case("duplicate_keys_in_upsert", "failed", file_to_target("dupes.csv", load="{table: target, mode: upsert, primary_key: [id]}"),
         files={"dupes.csv": "id,amount\n1,5\n2,6\n1,7\n"}, seed=["CREATE TABLE target (id BIGINT PRIMARY KEY, amount DOUBLE PRECISION)",
         "INSERT INTO target VALUES (9, 1.0)"], place=r"share a primary key \(id\), e\.g\. \[\(1,\)\]", says="dedupe"),
    Case("null_key", "failed", file_to_target("nulls.csv", load="{table: target, mode: upsert, primary_key: [id]}"),
         files={"nulls.csv": "id,amount\n1,5\n,6\n"}, place=r"null primary key \(id\)", says="fill_null"),
    Case("overwrite_with_nothing", "failed", with_ops("      - filter: 'amount > 1000'", load="{table: target, mode: overwrite}"),
         files={"feed.csv": FEED}, seed=["CREATE TABLE target (id BIGINT, name TEXT, amount DOUBLE PRECISION)",
         "INSERT INTO target VALUES (7, 'kept', 1.5)"], place="overwrite of target with 0 rows", says="allow_empty: true"),
    Case("text_into_a_number_column", "failed", file_to_target("words.csv"),
         files={"words.csv": "id,amount\n1,5\n2,many\n"}, seed=["CREATE TABLE target (id BIGINT, amount DOUBLE PRECISION)",
         "INSERT INTO target VALUES (7, 1.5)"], place=r"row 2 of the load, column amount", says="cast"),
    Case("renamed_column_drifts", "loaded", file_to_target("renamed.csv"), status="completed_with_warnings",
         files={"renamed.csv": "id,full_name,amount\n3,Cy,30\n"},
         seed=["CREATE TABLE target (id BIGINT, name TEXT, amount BIGINT)", "INSERT INTO target VALUES (1, 'Ann', 10)"],
         expected=lambda folder: pl.DataFrame({"id": [1, 3], "name": ["Ann", None], "amount": [10, 30],
                                               "full_name": [None, "Cy"]})),
]  # fmt: skip


def _zip(path: Path) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", FEED)
        archive.writestr("b.csv", FEED)
