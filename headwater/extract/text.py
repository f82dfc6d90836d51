"""Bytes and text of a data file: the payload (plain, .gz, or the one file of a .zip), encodings and
byte-order marks, and line breaks (CR-only and mixed read as line feeds). Cheap checks on the first
bytes come before any parser sees a file; what is wrong is an `Unreadable` naming the line and the fix."""

from __future__ import annotations

import codecs
import gzip
import logging
import zipfile
from pathlib import Path

from headwater.errors import PermanentError
from headwater.spec.models import FileSource

log = logging.getLogger(__name__)

SNIFF_BYTES = 64 * 1024


UTF8 = ("utf-8", "utf-8-sig")


_BOMS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class Unreadable(Exception):
    """What is wrong with one file, where, and the fix; the caller names the source."""

    def __init__(self, path: Path, problem: str, hint: str, line: int | None = None) -> None:
        self.path, self.problem, self.hint, self.line = path, problem, hint, line
        super().__init__(f"{path}: line {line}: {problem}" if line else f"{path}: {problem}")


def payload_of(path: Path) -> bytes | Path:
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes())
    if path.suffix == ".zip":
        member = zip_member(path)
        with zipfile.ZipFile(path) as archive:
            return archive.read(member)
    return path


def zip_member(path: Path) -> str:
    """The one file inside a .zip (a zip of several is refused: which one would be meant?)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.namelist() if not m.endswith("/")]
    except zipfile.BadZipFile as exc:
        raise PermanentError(f"{path} is not a readable zip file ({exc})", hint="check the file") from exc
    if len(members) != 1:
        raise PermanentError(
            f"{path} holds {len(members)} files; expected exactly one",
            hint="unzip it and point path at the files with a glob",
        )
    return members[0]


def raw_bytes(payload: bytes | Path) -> bytes:
    return payload if isinstance(payload, bytes) else payload.read_bytes()


def lone_crs(data: bytes, truncated: bool = False) -> int:
    """Carriage returns not followed by a line feed: CR-only (old Mac) or mixed line breaks. A CR
    that ends a `truncated` prefix may be half of a CRLF, so it is not counted."""
    lone = data.count(b"\r") - data.count(b"\r\n")
    return lone - 1 if truncated and data.endswith(b"\r") else lone


def _line_breaks(head: bytes, truncated: bool = False) -> str:
    """lf, crlf, cr, mixed or none: the line breaks seen in a file's first bytes."""
    crlf = head.count(b"\r\n")
    seen = [
        kind
        for kind, count in (
            ("lf", head.count(b"\n") - crlf),
            ("crlf", crlf),
            ("cr", lone_crs(head, truncated)),
        )
        if count
    ]
    return seen[0] if len(seen) == 1 else "mixed" if seen else "none"


def _line_of(data: bytes, offset: int, codec: str) -> int:
    """The 1-based line holding byte `offset`, lines ending at LF, CRLF or a lone CR."""
    before = data[:offset].decode(codec, errors="replace")
    return before.count("\n") + before.count("\r") - before.count("\r\n") + 1


def encoding_problem(path: Path, data: bytes, codec: str, exc: UnicodeDecodeError) -> Unreadable:
    line = _line_of(data, exc.start, codec)
    where = f"byte 0x{data[exc.start]:02x} at byte offset {exc.start}"
    if codec in UTF8:
        return Unreadable(
            path,
            f"not valid UTF-8 ({where}): the file may be Latin-1 or Windows-1252",
            "set encoding: latin-1 (or cp1252) on the source",
            line,
        )
    return Unreadable(
        path,
        f"not valid {codec} ({where})",
        f"set encoding: to the file's real encoding (now {codec}; utf-8 if unset)",
        line,
    )


def check_start(head: bytes, codec: str, path: Path, truncated: bool) -> None:
    """Refuse a UTF-16/32 byte-order mark the encoding does not expect and, for UTF-8, bytes that are
    not UTF-8 among the first bytes: the cheap checks every text file gets before Polars reads it."""
    for bom, family in _BOMS:
        if head.startswith(bom):
            if not codec.startswith(family):
                raise Unreadable(
                    path,
                    f"the file starts with a {family.upper()} byte-order mark but is read as {codec}",
                    f"set encoding: {family} on the source",
                    1,
                )
            return
    if codec in UTF8:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if not (truncated and exc.end == len(head)):  # not just a character cut by the prefix
                raise encoding_problem(path, head, codec, exc) from exc


def as_utf8(data: bytes, codec: str, path: Path) -> bytes:
    """`data` as UTF-8 without a byte-order mark, with lone CRs read as line feeds."""
    if codec in UTF8:
        data = data.removeprefix(codecs.BOM_UTF8)
    else:
        try:
            data = data.decode(codec).removeprefix("\ufeff").encode()
        except UnicodeDecodeError as exc:
            raise encoding_problem(path, data, codec, exc) from exc
    if lone_crs(data):
        log.info("%s: %s line breaks, read as line feeds", path, _line_breaks(data))
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return data


def text_bytes(payload: bytes | Path, codec: str, path: Path) -> bytes:
    data = raw_bytes(payload)
    check_start(data[:SNIFF_BYTES], codec, path, truncated=len(data) > SNIFF_BYTES)
    return as_utf8(data, codec, path)


def whole_text(source: FileSource, path: Path) -> str:
    """The whole file as text with LF line breaks, for finding a line once something is wrong."""
    codec = codecs.lookup(source.encoding).name
    raw = raw_bytes(payload_of(path))
    text = raw.decode("utf-8-sig" if codec in UTF8 else codec, errors="replace").removeprefix("\ufeff")
    return text.replace("\r\n", "\n").replace("\r", "\n")
