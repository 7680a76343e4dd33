"""Reading a provider's raw file into DuckDB, with one clear error per way it can fail.

The file is read as text only (every column VARCHAR): types are checked afterwards,
strictly, by the validation rules. DuckDB cannot load extensions offline, so a GBK
file is first transcoded to UTF-8 in a streaming pass (constant memory). Each row
keeps its source line number: ``line`` is the record's position plus the header,
which is the physical line unless a quoted value spans several lines.
"""

from __future__ import annotations

import codecs
import csv
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from entrepot._files import open_regular
from entrepot._text import excerpt
from entrepot.errors import InvalidInput, LimitExceeded
from entrepot.standards.mapping import Source

__all__ = ["RawFile", "columns_excerpt", "is_read_error", "open_raw", "read_error", "scan"]

# Enough bytes to tell text from binary: NUL never occurs in UTF-8 or GBK text.
_SNIFF_BYTES = 64 * 1024
# A header names tens of columns: one longer than this is no header (or no table),
# and its names would be repeated in every report.
_MAX_HEADER_BYTES = 64 * 1024
# The first bytes of compressed files. DuckDB would expand gzip and zstd, chosen by the
# file's name; none is read, so a small file cannot expand to fill the disk. (A ZIP
# archive, such as a spreadsheet, is refused as a binary file.)
_COMPRESSED = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
)
_BZIP2 = re.compile(rb"BZh[1-9]1AY&SY")
# Transcoding chunk: large enough to amortize Python overhead, small enough to stream.
_CHUNK_BYTES = 4 * 1024 * 1024
_DELIMITERS = (",", ";", "\t", "|")
_DUCKDB_LINE = re.compile(r"CSV Error on Line: (\d+)")
_DUCKDB_COLUMNS = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")
_DUCKDB_LINE_SIZE = re.compile(r"Maximum line size of (\d+) bytes exceeded")
_DUCKDB_UNTERMINATED = "Value with unterminated quote found"
_DUCKDB_INVALID_STATE = "CSV Parser state machine reached an invalid state"
# An error names a file's columns to help fix a mapping, but quotes no more of the
# file than this: a wrong file (a key, a password file) must not be echoed whole.
_QUOTED_COLUMNS = 12


@dataclass(frozen=True)
class RawFile:
    """A raw file ready for DuckDB: the UTF-8 path to read and its column names."""

    origin: Path
    path: Path
    source: Source
    columns: tuple[str, ...]

    @property
    def first_line(self) -> int:
        """Source line number of the first record."""
        return 2 if self.source.header else 1


def _fail(path: Path, line: int | None, message: str, hint: str) -> InvalidInput:
    where = f"{path}" if line is None else f"{path}, line {line}"
    return InvalidInput(f"{where}: {message}", hint=hint, source=str(path), line=line)


def columns_excerpt(columns: tuple[str, ...] | list[str]) -> str:
    """The first column names, each cut short and escaped, for an error message."""
    shown = ", ".join(excerpt(c) for c in columns[:_QUOTED_COLUMNS])
    more = len(columns) - _QUOTED_COLUMNS
    return shown + (f" and {more} more" if more > 0 else "")


def _encoding_hint(source: Source) -> str:
    if source.encoding == "gbk":
        return "the file is not GBK either; re-save it as UTF-8 and set `encoding: utf-8`"
    return "if the file comes from a Chinese-locale tool, set `encoding: gbk` under `source:`"


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _check_bytes(path: Path, max_bytes: int | None) -> None:
    with open_regular(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        head = handle.read(_SNIFF_BYTES)
    if size == 0:
        raise _fail(
            path, None, "the file is empty (0 bytes)", "export the data again, with a header"
        )
    if max_bytes is not None and size > max_bytes:
        raise LimitExceeded(
            f"{path}: {size} bytes is more than the limit of {max_bytes}",
            setting="max_upload_bytes",
            hint="split the file, or raise ENTREPOT_MAX_UPLOAD_BYTES",
        )
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _fail(path, 1, "the file is UTF-16 text", "re-save it as UTF-8 (or GBK)")
    kind = _compression(head)
    if kind is not None:
        raise _fail(
            path,
            None,
            f"the file is compressed ({kind}); compressed files are not read",
            "decompress it and give the delimited text file itself",
        )
    if b"\x00" in head:
        raise _fail(
            path,
            _line_of(head, head.index(b"\x00")),
            "this is a binary file, not delimited text (it contains NUL bytes)",
            "export the table as CSV; spreadsheets (.xlsx) and archives cannot be read",
        )


def _compression(head: bytes) -> str | None:
    for magic, kind in _COMPRESSED:
        if head.startswith(magic):
            return kind
    return "bzip2" if _BZIP2.match(head) else None


def _transcode(path: Path, target: Path) -> None:
    """Stream a GBK file into UTF-8; an undecodable byte is an error naming its line."""
    decoder = codecs.getincrementaldecoder("gbk")()
    line = 1
    with path.open("rb") as src, target.open("wb") as out:
        while chunk := src.read(_CHUNK_BYTES):
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as error:
                raise _fail(
                    path,
                    line + chunk.count(b"\n", 0, error.start),
                    "the file is not valid GBK",
                    _encoding_hint(Source(encoding="gbk")),
                ) from None
            line += chunk.count(b"\n")
            out.write(text.encode("utf-8"))
        try:
            out.write(decoder.decode(b"", final=True).encode("utf-8"))
        except UnicodeDecodeError:
            raise _fail(
                path, line, "the file ends inside a GBK character", "export it again"
            ) from None


def _first_lines(path: Path, origin: Path, source: Source) -> list[str]:
    """The header line, whole, and the start of the next non-blank line (enough to tell
    there is one), decoded one by one so an error names its line."""
    lines: list[str] = []
    number = 0
    starts_line = True
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    with path.open("rb") as handle:
        while len(lines) < 2:
            limit = _SNIFF_BYTES if lines else _MAX_HEADER_BYTES + 1
            raw = handle.readline(limit)
            if not raw:
                break
            whole = raw.endswith(b"\n") or len(raw) < limit
            if not lines and not whole:
                _refuse_long_header(origin, raw)
            if starts_line:
                number += 1
                decoder = codecs.getincrementaldecoder("utf-8-sig" if number == 1 else "utf-8")()
            try:
                # A piece of a line may end inside a character: only its line's end is final.
                text = decoder.decode(raw, final=whole)
            except UnicodeDecodeError:
                raise _fail(
                    origin, number, "the file is not valid UTF-8", _encoding_hint(source)
                ) from None
            starts_line = whole
            if text.strip():
                lines.append(text)
            elif not lines:
                _refuse_leading_blank(origin, source)
    return lines


def _lone_cr(origin: Path) -> InvalidInput:
    return _fail(
        origin,
        1,
        "the lines end with a lone carriage return (CR), an old Mac line ending",
        "re-save the file with LF or CRLF line endings",
    )


def _refuse_long_header(origin: Path, start: bytes) -> None:
    if b"\r" in start:
        raise _lone_cr(origin)
    raise _fail(
        origin,
        1,
        f"the header is longer than {_MAX_HEADER_BYTES:,} bytes, the most it may have",
        "check that the file is delimited text that starts with one header line",
    )


def _refuse_leading_blank(origin: Path, source: Source) -> None:
    """A blank first line: DuckDB would take it for the header (or skip it and shift
    every line number), and read the real header as a row."""
    first = "the header" if source.header else "the first row"
    raise _fail(
        origin,
        1,
        f"the file starts with a blank line where {first} should be",
        f"delete the blank lines before {first}",
    )


def _header(path: Path, origin: Path, source: Source) -> tuple[tuple[str, ...], bool]:
    """The column names and whether at least one data row follows."""
    lines = _first_lines(path, origin, source)
    if not lines:
        raise _fail(origin, None, "the file holds only blank lines", "export the data again")
    try:
        # A header is read as DuckDB reads it: strictly (a quote left open, or followed
        # by more text, would make it read on into the rows, taking them for the
        # header), and with a quote after spaces opening a quoted name (unless spaces
        # delimit). A first row may hold a quoted line break: only its values count.
        first = next(
            csv.reader(
                lines[:1],
                delimiter=source.delimiter,
                quotechar=source.quote,
                skipinitialspace=source.header and source.delimiter != " ",
                strict=source.header,
            )
        )
    except csv.Error as error:
        if "\r" in lines[0].rstrip("\r\n"):
            raise _lone_cr(origin) from None
        raise _broken_header(origin, source, error) from None
    if not source.header:
        if len(first) != len(source.columns):
            raise _fail(
                origin,
                1,
                f"found {len(first)} columns but the mapping names {len(source.columns)}",
                "list one name per column in source.columns, or check source.delimiter",
            )
        return source.columns, True
    names = tuple(name.strip() for name in first)
    blank = [i + 1 for i, name in enumerate(names) if not name]
    if blank:
        raise _fail(origin, 1, f"header column(s) {blank} have no name", "name every column")
    # DuckDB resolves column names case-insensitively: "ID" and "id" would collide.
    folded = Counter(n.casefold() for n in names)
    duplicates = sorted({n for n in names if folded[n.casefold()] > 1})
    if duplicates:
        raise _fail(
            origin, 1, f"duplicate header name(s) {columns_excerpt(duplicates)}", "rename them"
        )
    return names, len(lines) > 1


def _broken_header(origin: Path, source: Source, error: csv.Error) -> InvalidInput:
    quote = source.quote
    if "expected after" in str(error):
        return _fail(
            origin,
            1,
            f"the header has text after a closing quote ({quote})",
            f"quote the whole name and double a {quote} inside it ({quote}{quote}), or "
            "remove the quotes",
        )
    if "end of data" in str(error):
        return _fail(
            origin,
            1,
            f"the header opens a quote ({quote}) that is not closed on its line",
            "close the quote: a column name cannot span lines",
        )
    return _fail(origin, 1, f"cannot read the header ({error})", "check its quoting")


def open_raw(path: Path, source: Source, workdir: Path, max_bytes: int | None = None) -> RawFile:
    """Check ``path`` and prepare it for DuckDB; ``workdir`` holds any transcoded copy."""
    _check_bytes(path, max_bytes)
    readable = path
    if source.encoding == "gbk":
        readable = workdir / "transcoded.csv"
        _transcode(path, readable)
    columns, has_rows = _header(readable, path, source)
    if not has_rows:
        raise _fail(
            path,
            2,
            f"the file has a header ({columns_excerpt(columns)}) but no data rows",
            "an empty dataset cannot be validated or published; export the rows too",
        )
    return RawFile(origin=path, path=readable, source=source, columns=columns)


def guess_delimiter(raw: RawFile) -> str | None:
    """A delimiter other than the configured one that splits a one-column header."""
    if len(raw.columns) != 1:
        return None
    for candidate in _DELIMITERS:
        if candidate != raw.source.delimiter and candidate in raw.columns[0]:
            return candidate
    return None


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def scan(raw: RawFile, wanted: list[str]) -> str:
    """SQL reading the ``wanted`` columns of ``raw`` as text, in file order.

    Nothing is stored: the validation numbers, types and checks the rows as they are
    read.
    """
    columns = "{" + ", ".join(f"{_quote(c)}: 'VARCHAR'" for c in raw.columns) + "}"
    nulls = "[" + ", ".join(_quote(n) for n in raw.source.null_values) + "]"
    options = ", ".join(
        [
            f"header = {str(raw.source.header).lower()}",
            "auto_detect = false",
            f"delim = {_quote(raw.source.delimiter)}",
            f"quote = {_quote(raw.source.quote)}",
            f"escape = {_quote(raw.source.quote)}",
            "strict_mode = true",
            # Whatever the file's name (an upload keeps its suffix), its bytes are text.
            "compression = 'none'",
            "null_padding = false",
            f"nullstr = {nulls}",
            f"columns = {columns}",
        ]
    )
    selected = ", ".join(_ident(c) for c in wanted) or "NULL AS _empty"
    return f"(SELECT {selected} FROM read_csv({_quote(str(raw.path))}, {options}))"


def is_read_error(text: str) -> bool:
    """Whether a DuckDB error came from reading the file rather than from a rule."""
    return (
        "CSV Error" in text
        or "Invalid unicode" in text
        or "not utf-8" in text
        or _DUCKDB_INVALID_STATE in text
        or _DUCKDB_COLUMNS.search(text) is not None
    )


def _line_endings(path: Path) -> tuple[int, str] | None:
    """The first line whose ending is not the first line's (or that holds a lone CR),
    and what is wrong with it: DuckDB reads one kind of line ending per file.

    Lines are read in pieces of at most ``_CHUNK_BYTES``: a file may be one line of
    gigabytes, which must not be held in memory."""
    first: str | None = None
    number = 1
    # A CR that ended the previous piece of the line: a CRLF may be cut between pieces.
    carried = b""
    with path.open("rb") as handle:
        while piece := handle.readline(_CHUNK_BYTES):
            line, carried = carried + piece, b""
            if not line.endswith(b"\n"):
                if line.endswith(b"\r"):
                    line, carried = line[:-1], b"\r"
                if b"\r" in line:
                    return number, "holds a lone carriage return (CR)"
                continue
            crlf = line.endswith(b"\r\n")
            if b"\r" in line[: -2 if crlf else -1]:
                return number, "holds a lone carriage return (CR)"
            ending = "CRLF" if crlf else "LF"
            if first is None:
                first = ending
            elif ending != first:
                return number, f"ends with {ending} where the lines before end with {first}"
            number += 1
    return (number, "holds a lone carriage return (CR)") if carried else None


def _invalid_state(raw: RawFile) -> InvalidInput:
    found = _line_endings(raw.path)
    if found is None:
        return _fail(
            raw.origin,
            None,
            "cannot read the file: it is not delimited text DuckDB can parse",
            "check the quoting and that every line ends the same way (LF or CRLF)",
        )
    line, problem = found
    return _fail(
        raw.origin,
        line,
        f"this line {problem}",
        "re-save the file with one kind of line ending (LF or CRLF) throughout, or quote "
        "the value that holds the line break",
    )


def read_error(raw: RawFile, text: str) -> InvalidInput:
    match = _DUCKDB_LINE.search(text)
    line = int(match.group(1)) if match else None
    if "Invalid unicode" in text or "not utf-8" in text:
        return _fail(raw.origin, line, "the file is not valid UTF-8", _encoding_hint(raw.source))
    if _DUCKDB_INVALID_STATE in text:
        return _invalid_state(raw)
    size = _DUCKDB_LINE_SIZE.search(text)
    if size:
        return _fail(
            raw.origin,
            line,
            f"this line is longer than {int(size.group(1)):,} bytes, the most a row may have",
            "check for a quote that is never closed, or split the long value",
        )
    if _DUCKDB_UNTERMINATED in text:
        quote = raw.source.quote
        return _fail(
            raw.origin,
            line,
            f"a value opens a quote ({quote}) that is never closed",
            f"close the quote, or double a {quote} inside a quoted value ({quote}{quote})",
        )
    counts = _DUCKDB_COLUMNS.search(text)
    if counts:
        expected, found = counts.groups()
        return _fail(
            raw.origin,
            line,
            f"this row has {found} values but the header has {expected} columns",
            "fix the row (a missing or extra delimiter, or an unquoted value containing "
            f"{raw.source.delimiter!r})",
        )
    first = text.strip().splitlines()[0] if text.strip() else "unreadable file"
    return _fail(
        raw.origin,
        line,
        f"cannot read the file ({excerpt(first, 120)})",
        "check it is delimited text",
    )
