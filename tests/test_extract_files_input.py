"""headwater.extract.files on awkward real files in tmp_path: line endings, encodings, byte-order marks,
ragged rows, unclosed quotes, broken NDJSON lines and the csv options (separator, skip_rows,
comment_prefix, quote_char, encoding). Rows read are compared with Python's csv/json modules or with
frames written by hand; errors must name the file, the line and the fix. Needs no service."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from headwater.errors import PermanentError, SpecError
from headwater.extract.files import file_schema, read_files
from headwater.spec.loader import parse_spec
from headwater.spec.models import FileSource


def source(path: str, **fields: Any) -> FileSource:
    return FileSource(kind="file", path=path, **fields)


def python_csv(text: str, **dialect: Any) -> pl.DataFrame:
    """The rows Python's csv module reads (it takes CR, LF and CRLF as line ends), all as strings; an
    empty field is null, as Polars reads it."""
    header, *rows = list(csv.reader(io.StringIO(text, newline=""), **dialect))
    rows = [[value or None for value in row] for row in rows]
    return pl.DataFrame(rows, schema=dict.fromkeys(header, pl.String), orient="row")


def as_text(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(pl.all().cast(pl.String))


def refused(tmp_path: Path, src: FileSource) -> str:
    """The message of the PermanentError a read raises; the schema read must raise the same."""
    with pytest.raises(PermanentError) as info:
        read_files("feed", src, tmp_path)
    message = str(info.value)
    assert message.startswith("source feed: cannot read ")
    with pytest.raises(PermanentError) as schema_info:
        file_schema(src, tmp_path)
    assert str(schema_info.value) == message.removeprefix("source feed: ")
    return message


# ---------------------------------------------------------------- line endings

ROWS = 'id,name,amount\n1,alpha,10\n2,"b, c",20\n3,,30\n'


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(ROWS, id="lf"),
        pytest.param(ROWS.replace("\n", "\r\n"), id="crlf"),
        pytest.param(ROWS.replace("\n", "\r"), id="cr-only"),
        pytest.param('id,name,amount\r1,alpha,10\n2,"b, c",20\r\n3,,30\r', id="mixed"),
    ],
)
def test_line_endings_read_the_same_rows(tmp_path: Path, content: str) -> None:
    (tmp_path / "feed.csv").write_bytes(content.encode())
    frame = read_files("feed", source("feed.csv"), tmp_path)
    assert frame.columns == ["id", "name", "amount"]
    assert_frame_equal(as_text(frame), python_csv(content))
    expected = pl.DataFrame({"id": [1, 2, 3], "name": ["alpha", "b, c", None], "amount": [10, 20, 30]})
    assert_frame_equal(frame, expected)
    assert file_schema(source("feed.csv"), tmp_path) == frame.schema


def test_cr_only_with_quoted_separator_and_quoted_line_break(tmp_path: Path) -> None:
    content = 'id,note,amount\r1,"x, y",10\r2,"two\rlines",20\r3,plain,30\r'
    (tmp_path / "mac.csv").write_bytes(content.encode())
    frame = read_files("mac", source("mac.csv"), tmp_path)
    expected = pl.DataFrame(
        {"id": [1, 2, 3], "note": ["x, y", "two\nlines", "plain"], "amount": [10, 20, 30]}
    )
    assert_frame_equal(frame, expected)  # a quoted CR line break reads as a line feed
    rows = python_csv(content).with_columns(pl.col("note").str.replace_all("\r", "\n", literal=True))
    assert_frame_equal(as_text(frame), rows)


def test_cr_only_gzipped(tmp_path: Path) -> None:
    (tmp_path / "mac.csv.gz").write_bytes(gzip.compress(ROWS.replace("\n", "\r").encode()))
    frame = read_files("mac", source("mac.csv.gz"), tmp_path)
    assert_frame_equal(as_text(frame), python_csv(ROWS))


@pytest.mark.parametrize("width", [1, 3])
def test_lone_crs_past_the_sniffed_bytes_are_still_line_breaks(tmp_path: Path, width: int) -> None:
    """A file whose first 64 KiB end lines with LF and whose tail uses lone CRs (two exports joined)."""
    lf = "".join(",".join(f"v{i}_{c}" for c in range(width)) + "\n" for i in range(12_000))
    cr = "".join(",".join(f"w{i}_{c}" for c in range(width)) + "\r" for i in range(5))
    content = ",".join(f"c{c}" for c in range(width)) + "\n" + lf + cr
    assert len(lf.encode()) > 64 * 1024
    (tmp_path / "joined.csv").write_bytes(content.encode())
    frame = read_files("joined", source("joined.csv"), tmp_path)
    assert frame.height == 12_005
    assert_frame_equal(frame, python_csv(content))


def test_control_character_in_header_is_refused(tmp_path: Path) -> None:
    (tmp_path / "feed.csv").write_bytes(b"id,na\x1bme,amount\n1,a,10\n")
    message = refused(tmp_path, source("feed.csv"))
    assert f"{tmp_path / 'feed.csv'}: line 1: column name 'na\\x1b…' holds the control character" in message
    assert "Fix: remove it from the header line, or set skip_rows:" in message


def test_tab_separated_header_in_a_csv_is_refused_with_the_separator_fix(tmp_path: Path) -> None:
    (tmp_path / "feed.csv").write_text("note\nid\tname\n1\ta\n")
    message = refused(tmp_path, source("feed.csv", skip_rows=1))
    assert "feed.csv: line 2: column name 'id\\t…' holds the control character '\\t'" in message
    assert 'Fix: the header is tab-separated: set separator: "\\t" (or format: tsv)' in message


# ---------------------------------------------------------------- malformed rows


@pytest.mark.parametrize(
    ("content", "options", "line", "says", "fix"),
    [
        pytest.param(
            "id,name,amount\n1,a,10\n2,b,20,5\n3,c,30\n",
            {},
            3,
            "4 fields where the header has 3",
            "fix that line, or quote the field that contains the separator ','",
            id="ragged",
        ),
        pytest.param(
            'id,name,amount\n1,"a\nb",10\n2,"x\ny\nz",20\n3,c,30,40,50\n',
            {},
            7,
            "5 fields where the header has 3",
            "fix that line, or quote the field",
            id="ragged-below-quoted-line-breaks",
        ),
        pytest.param(
            "title\n# comment\nid;name\n# another\n1;a\n2;b;c\n",
            {"skip_rows": 1, "comment_prefix": "#", "separator": ";"},
            6,
            "3 fields where the header has 2",
            "fix that line, or quote the field that contains the separator ';'",
            id="ragged-after-skip-and-comments",
        ),
        pytest.param(
            'id,name,amount\n1,a,10\n2,"b,20\n3,c,30\n',
            {},
            3,
            'a field quoted with " starts on this line and is never closed',
            "close the quote on that line, or set quote_char: null",
            id="unclosed-quote",
        ),
        pytest.param(
            "id,name,amount\r1,a,10\r2,b,20\r3,'c,30\r",
            {"quote_char": "'"},
            4,
            "a field quoted with ' starts on this line and is never closed",
            "close the quote on that line",
            id="unclosed-quote-cr-only",
        ),
    ],
)
def test_malformed_rows_name_the_line_and_the_fix(
    tmp_path: Path, content: str, options: dict[str, Any], line: int, says: str, fix: str
) -> None:
    for name in ("feed.csv", "feed.csv.gz"):
        data = content.encode()
        (tmp_path / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        message = refused(tmp_path, source(name, **options))
        assert f"{tmp_path / name}: line {line}: {says}" in message
        assert f"Fix: {fix}" in message


def test_unclosed_quote_message_holds_no_row_data(tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text(
        'id,email\n1,a@example.com\n2,"bob@example.com\n3,carol@example.com\n'
    )
    message = refused(tmp_path, source("people.csv"))
    assert "people.csv: line 3: " in message
    assert "example.com" not in message


def test_bad_value_line_counts_skipped_and_comment_lines(tmp_path: Path) -> None:
    content = 'exported by X\n\nid,amount,note\n1,10,a\n# checked\n2,20,"two\nlines"\n3,x7,c\n'
    (tmp_path / "feed.csv").write_text(content)
    options: dict[str, Any] = {"skip_rows": 2, "comment_prefix": "#", "columns": {"amount": "int"}}
    message = refused(tmp_path, source("feed.csv", **options))
    assert (
        f"{tmp_path / 'feed.csv'}: line 8: could not parse `x7` as dtype `i64` at column 'amount'" in message
    )
    # a bad value spanning lines is named by its first line, and not shown past it
    (tmp_path / "feed.csv").write_text(content.replace("2,20,", '2,"2\n0",'))
    message = refused(tmp_path, source("feed.csv", **options))
    assert f"{tmp_path / 'feed.csv'}: line 6: could not parse `" in message
    assert "lines" not in message


@pytest.mark.parametrize("name", ["events.ndjson", "events.jsonl.gz"])
def test_broken_ndjson_line_is_named(tmp_path: Path, name: str) -> None:
    lines = [json.dumps({"id": i, "ok": True}) for i in range(5)]
    lines[3] = '{"id": 3, "ok": tru}'
    data = ("\n".join(lines) + "\n").encode()
    (tmp_path / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    message = refused(tmp_path, source(name))
    assert f"{tmp_path / name}: line 4: not valid JSON: Expecting value" in message
    assert "Fix: fix that line" in message


def test_json_document_syntax_error_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "doc.json").write_text('[\n  {"id": 1},\n  {"id": 2,}\n]\n')
    message = refused(tmp_path, source("doc.json"))
    assert "doc.json: line 3: not valid JSON: Expecting property name" in message


# ---------------------------------------------------------------- encodings

PEOPLE = "id,name\n1,José\n2,Zoë\n"
PEOPLE_FRAME = pl.DataFrame({"id": [1, 2], "name": ["José", "Zoë"]})


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_latin1_is_refused_with_the_encoding_fix_then_read_with_it(tmp_path: Path, encoding: str) -> None:
    (tmp_path / "people.csv").write_bytes(PEOPLE.encode(encoding))
    message = refused(tmp_path, source("people.csv"))
    assert f"{tmp_path / 'people.csv'}: line 2: not valid UTF-8 (byte 0xe9 at byte offset 13)" in message
    assert "Fix: set encoding: latin-1 (or cp1252) on the source" in message
    frame = read_files("people", source("people.csv", encoding=encoding), tmp_path)
    assert_frame_equal(frame, PEOPLE_FRAME)
    assert frame["name"][0] == "José"
    assert file_schema(source("people.csv", encoding=encoding), tmp_path) == frame.schema


def test_latin1_past_the_first_bytes_names_its_line(tmp_path: Path) -> None:
    rows = "".join(f"{i},name{i}\n" for i in range(10_000))
    (tmp_path / "people.csv").write_bytes(("id,name\n" + rows).encode() + "10000,José\n".encode("latin-1"))
    with pytest.raises(PermanentError, match=r"people\.csv: line 10002: not valid UTF-8 \(byte 0xe9"):
        read_files("people", source("people.csv"), tmp_path)


@pytest.mark.parametrize(("codec", "name"), [("utf-16", "people.csv"), ("utf-16", "people.ndjson")])
def test_utf16_bom_is_refused_with_the_fix_then_read(tmp_path: Path, codec: str, name: str) -> None:
    text = PEOPLE if name.endswith(".csv") else "".join(json.dumps(r) + "\n" for r in PEOPLE_FRAME.to_dicts())
    (tmp_path / name).write_bytes(text.encode(codec))  # Python writes the byte-order mark
    message = refused(tmp_path, source(name))
    assert f"{tmp_path / name}: line 1: the file starts with a UTF-16 byte-order mark" in message
    assert "Fix: set encoding: utf-16 on the source" in message
    frame = read_files("people", source(name, encoding="utf-16"), tmp_path)
    assert_frame_equal(frame, PEOPLE_FRAME)


@pytest.mark.parametrize("name", ["people.csv", "people.csv.gz", "people.ndjson", "people.json"])
def test_utf8_bom_just_works(tmp_path: Path, name: str) -> None:
    if name.endswith((".csv", ".csv.gz")):
        text = PEOPLE
    elif name.endswith(".ndjson"):
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in PEOPLE_FRAME.to_dicts())
    else:
        text = json.dumps(PEOPLE_FRAME.to_dicts(), ensure_ascii=False)
    data = "\ufeff".encode() + text.encode()
    (tmp_path / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    frame = read_files("people", source(name), tmp_path)
    assert frame.columns == ["id", "name"]
    assert_frame_equal(frame, PEOPLE_FRAME)


# ---------------------------------------------------------------- options

OPTION_CASES = [
    pytest.param(
        "Monthly export\nGenerated 2026-11-01\nid,name\n1,a\n2,b\n",
        {"skip_rows": 2},
        {},
        {"id": [1, 2], "name": ["a", "b"]},
        id="skip_rows",
    ),
    pytest.param(
        '# exported\nid,name\n1,a\n# a note, with "quotes\n2,b\n',
        {"comment_prefix": "#"},
        {},
        {"id": [1, 2], "name": ["a", "b"]},
        id="comment_prefix",
    ),
    pytest.param(
        "id,name\n1,'x, y'\n2,'it''s'\n",
        {"quote_char": "'"},
        {"quotechar": "'"},
        {"id": [1, 2], "name": ["x, y", "it's"]},
        id="quote_char",
    ),
    pytest.param(
        'id,name\n1,"a\n2,b"\n',
        {"quote_char": None},
        {"quoting": csv.QUOTE_NONE},
        {"id": [1, 2], "name": ['"a', 'b"']},
        id="no-quoting",
    ),
    pytest.param(
        "id;name\n1;a,b\n2;c\n",
        {"separator": ";"},
        {"delimiter": ";"},
        {"id": [1, 2], "name": ["a,b", "c"]},
        id="separator",
    ),
    pytest.param(
        "id|name\n1|a\n",
        {"delimiter": "|"},
        {"delimiter": "|"},
        {"id": [1], "name": ["a"]},
        id="delimiter",
    ),
    pytest.param(
        "junk line\n# c\nid;name\r\n1;'José'\r\n# c2\r\n2;'a;b'\r\n",
        {"skip_rows": 1, "comment_prefix": "#", "separator": ";", "quote_char": "'", "encoding": "cp1252"},
        None,
        {"id": [1, 2], "name": ["José", "a;b"]},
        id="all-together-cp1252-crlf",
    ),
]


@pytest.mark.parametrize(("content", "options", "dialect", "expected"), OPTION_CASES)
def test_csv_options_read_the_rows_and_the_schema_agrees(
    tmp_path: Path,
    content: str,
    options: dict[str, Any],
    dialect: dict[str, Any] | None,
    expected: dict[str, list[Any]],
) -> None:
    (tmp_path / "feed.csv").write_bytes(content.encode(options.get("encoding", "utf-8")))
    frame = read_files("feed", source("feed.csv", **options), tmp_path)
    assert_frame_equal(frame, pl.DataFrame(expected))
    if dialect is not None:  # independent: Python's csv module over the lines Polars should read
        lines = content.splitlines(keepends=True)[options.get("skip_rows", 0) :]
        kept = "".join(x for x in lines if not x.startswith(options.get("comment_prefix") or "\0"))
        assert_frame_equal(as_text(frame), python_csv(kept, **dialect))
    assert file_schema(source("feed.csv", **options), tmp_path) == frame.schema


def test_tsv_honours_options(tmp_path: Path) -> None:
    (tmp_path / "feed.tsv").write_bytes("skip me\nid\tname\n1\tJosé\n".encode("latin-1"))
    src = source("feed.tsv", skip_rows=1, encoding="latin-1")
    frame = read_files("feed", src, tmp_path)
    assert_frame_equal(frame, pl.DataFrame({"id": [1], "name": ["José"]}))
    assert file_schema(src, tmp_path) == frame.schema


@pytest.mark.parametrize(
    ("name", "options", "says"),
    [
        ("data.parquet", {"skip_rows": 1}, "skip_rows only applies to csv/tsv files"),
        ("data.parquet", {"encoding": "latin-1"}, "encoding only applies to csv/tsv files"),
        ("data.json", {"separator": ";", "quote_char": "'"}, "separator, quote_char only applies"),
        ("data.ndjson", {"comment_prefix": "#"}, "comment_prefix only applies to csv/tsv files"),
    ],
)
def test_csv_options_on_other_formats_are_refused(
    tmp_path: Path, name: str, options: dict[str, Any], says: str
) -> None:
    frame = pl.DataFrame({"id": [1, 2]})
    match name.rsplit(".", 1)[1]:
        case "parquet":
            frame.write_parquet(tmp_path / name)
        case "json":
            frame.write_json(tmp_path / name)
        case _:
            frame.write_ndjson(tmp_path / name)
    message = refused(tmp_path, source(name, **options))
    assert f"source feed: cannot read {tmp_path / name}: {says}" in message
    assert "Fix: remove " in message


def test_encoding_applies_to_json(tmp_path: Path) -> None:
    records = [{"id": 1, "name": "José"}]
    (tmp_path / "people.json").write_bytes(json.dumps(records, ensure_ascii=False).encode("latin-1"))
    message = refused(tmp_path, source("people.json"))
    assert "people.json: line 1: not valid UTF-8" in message and "set encoding: latin-1" in message
    frame = read_files("people", source("people.json", encoding="latin-1"), tmp_path)
    assert_frame_equal(frame, pl.DataFrame(records))


# ---------------------------------------------------------------- spec load

SPEC = """\
name: feed_sync
sources:
  feed:
    kind: file
    path: feed.csv
{extra}steps:
  - {{name: extract_feed, type: extract, source: feed}}
"""


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ('    separator: ";"\n    delimiter: ";"\n', "separator and delimiter are the same option"),
        ("    encoding: utf-9\n", "unknown text encoding 'utf-9'"),
        ("    encoding: base64\n", "unknown text encoding 'base64'"),
        ("    skip_rows: -1\n", "greater than or equal to 0"),
        ("    quote_char: '\"\"'\n", "at most 1 character"),
        ('    separator: "é"\n', "is not one ASCII character"),
        ('    separator: "\'"\n    quote_char: "\'"\n', "quote_char and the separator are both"),
    ],
)
def test_bad_file_options_are_refused_at_spec_load(extra: str, says: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(SPEC.format(extra=extra), "feed_sync.yaml", env={})
    [problem] = info.value.problems
    assert problem.file == "feed_sync.yaml" and problem.field.startswith("sources.feed")
    assert says in problem.message, problem.message


def test_good_file_options_load() -> None:
    extra = (
        '    separator: ";"\n    encoding: Latin-1\n    skip_rows: 2\n'
        '    comment_prefix: "//"\n    quote_char: null\n'
    )
    loaded = parse_spec(SPEC.format(extra=extra), "feed_sync.yaml", env={})
    feed = loaded.spec.sources["feed"]
    assert isinstance(feed, FileSource)
    assert (feed.field_separator, feed.encoding, feed.skip_rows) == (";", "Latin-1", 2)
    assert (feed.comment_prefix, feed.quote_char) == ("//", None)
