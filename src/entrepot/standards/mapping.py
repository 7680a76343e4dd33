"""Provider mappings: how a provider's local file format becomes a standard.

A mapping is a small YAML file a provider writes once per local format::

    standard: health.visit            # optional: the standard it targets
    source:
      encoding: gbk                   # utf-8 (default) | utf-8-sig | gbk
      delimiter: ";"                  # one character; default ","
      header: true                    # false: name the columns in `columns`
      null_values: ["", "NA"]         # texts that mean "no value"
    columns:                          # standard column -> how to get it
      visit_id: {from: VisitNo}
      visit_date: {from: 就诊日期, date_format: "%Y年%m月%d日"}
      cost: {from: fee_fen, unit: fen_to_yuan}
      duration_hours: {from: minutes, factor: 0.0166666667}
      district: {from: qx, codes_file: district-codes.csv}
      sex: {from: gender, codes: {M: "1", F: "2"}}
      age_band: {constant: "25-34"}

Standard columns the mapping does not name are taken from the source column of the
same name. See ``docs/standard.md`` for every key.
"""

from __future__ import annotations

import csv
import io
import math
import os
import stat
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from entrepot.errors import InvalidInput, NotFound

__all__ = [
    "ENCODINGS",
    "UNITS",
    "ColumnMap",
    "Mapping",
    "Source",
    "load_mapping",
    "parse_mapping",
    "read_yaml",
    "write_yaml",
]

# Encodings providers use; anything else is re-saved as UTF-8 before publishing.
ENCODINGS = ("utf-8", "utf-8-sig", "gbk")
_ENCODING_ALIASES = {"utf8": "utf-8", "utf-8-bom": "utf-8-sig", "gb2312": "gbk", "cp936": "gbk"}

# Named unit conversions: the factor a source value is multiplied by.
UNITS: dict[str, float] = {
    "fen_to_yuan": 0.01,
    "jiao_to_yuan": 0.1,
    "wan_yuan_to_yuan": 10_000.0,
    "seconds_to_minutes": 1 / 60,
    "seconds_to_hours": 1 / 3600,
    "minutes_to_hours": 1 / 60,
    "hours_to_minutes": 60.0,
}

# A date_format of "epoch" reads integer seconds since 1970-01-01 UTC.
EPOCH = "epoch"

_TOP_KEYS = ("standard", "source", "columns")
_SOURCE_KEYS = ("encoding", "delimiter", "quote", "header", "columns", "null_values")
_COLUMN_KEYS = ("from", "constant", "date_format", "factor", "unit", "codes", "codes_file")
# Characters that end a line cannot separate or quote values on one.
_LINE_BREAKS = ("\n", "\r")
# A mapping is a short document; a code list of a million codes stays well under this.
_MAX_FILE_BYTES = 64 * 1024 * 1024


class _Int(int):
    """An integer read from YAML that remembers how it was written (``0101``, ``1_000``)."""

    written: str

    def __new__(cls, value: int, written: str) -> _Int:
        made = super().__new__(cls, value)
        made.written = written
        return made


class _Float(float):
    """A number read from YAML that remembers how it was written (``1.10``)."""

    written: str

    def __new__(cls, value: float, written: str) -> _Float:
        made = super().__new__(cls, value)
        made.written = written
        return made


@dataclass(frozen=True)
class Source:
    """How to read the raw file."""

    encoding: str = "utf-8"
    delimiter: str = ","
    quote: str = '"'
    header: bool = True
    columns: tuple[str, ...] = ()
    null_values: tuple[str, ...] = ("",)


@dataclass(frozen=True)
class ColumnMap:
    """How one standard column is obtained from the source."""

    target: str
    source: str | None = None
    constant: str | None = None
    date_format: str | None = None
    factor: float | None = None
    codes: MappingABC[str, str] = field(default_factory=dict)

    @property
    def epoch(self) -> bool:
        return self.date_format == EPOCH


@dataclass(frozen=True)
class Mapping:
    """A parsed mapping; ``where`` names the file it came from."""

    where: str
    source: Source = Source()
    columns: tuple[ColumnMap, ...] = ()
    standard: str | None = None

    def column(self, target: str) -> ColumnMap | None:
        for candidate in self.columns:
            if candidate.target == target:
                return candidate
        return None


def _fail(where: str, key: str, message: str, hint: str) -> InvalidInput:
    return InvalidInput(f"{where}: {key}: {message}", hint=hint, source=where, key=key)


def _check_keys(raw: dict[str, Any], allowed: tuple[str, ...], where: str, key: str) -> None:
    for name in raw:
        if name not in allowed:
            raise _fail(
                where,
                f"{key}.{name}" if key else str(name),
                "unknown key",
                f"allowed keys here: {', '.join(allowed)}",
            )


def _text(value: Any, where: str, key: str) -> str:
    """A text value; a number stands for the text it was written as (``0101`` is
    ``"0101"``, not 65 as YAML 1.1 reads an octal number)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _fail(where, key, f"expected text, got {type(value).__name__}", 'quote it: "..."')
    return str(getattr(value, "written", value))


def _one_character(raw: dict[str, Any], name: str, default: str, where: str) -> str:
    text = _text(raw.get(name, default), where, f"source.{name}")
    if text in _LINE_BREAKS:
        raise _fail(
            where,
            f"source.{name}",
            f"a line break ({text!r}) cannot be the {name}",
            "e.g. delimiter: ';' (or '\\t' for tabs); the default quote is '\"'",
        )
    return text


def _check_names(names: tuple[str, ...], where: str) -> None:
    """Column names of a file without a header: each given, none twice (DuckDB reads
    ``ID`` and ``id`` as one name)."""
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        key = f"source.columns[{i}]"
        if not name.strip():
            raise _fail(where, key, "a column needs a name", "name every column, in order")
        if name.casefold() in seen:
            raise _fail(
                where,
                key,
                f"{name!r} repeats source.columns[{seen[name.casefold()]}] (names ignore case)",
                "give each column its own name",
            )
        seen[name.casefold()] = i


def _parse_source(raw: Any, where: str) -> Source:
    if raw is None:
        return Source()
    if not isinstance(raw, dict):
        raise _fail(where, "source", "expected a mapping of options", "source: {delimiter: ';'}")
    _check_keys(raw, _SOURCE_KEYS, where, "source")
    encoding = _text(raw.get("encoding", "utf-8"), where, "source.encoding").lower()
    encoding = _ENCODING_ALIASES.get(encoding, encoding)
    if encoding not in ENCODINGS:
        raise _fail(
            where,
            "source.encoding",
            f"unsupported encoding {encoding!r}",
            f"use one of: {', '.join(ENCODINGS)}",
        )
    delimiter = _one_character(raw, "delimiter", ",", where)
    if delimiter == "\\t":
        delimiter = "\t"
    if len(delimiter) != 1:
        raise _fail(
            where,
            "source.delimiter",
            f"{delimiter!r} is not one character",
            "e.g. delimiter: ';' (or '\\t' for tabs)",
        )
    quote = _one_character(raw, "quote", '"', where)
    if len(quote) != 1 or quote == delimiter:
        raise _fail(
            where,
            "source.quote",
            f"{quote!r} is not one character distinct from the delimiter",
            "the default is '\"'",
        )
    header = raw.get("header", True)
    if not isinstance(header, bool):
        raise _fail(where, "source.header", "expected true or false", "header: true")
    columns = raw.get("columns", [])
    if not isinstance(columns, list):
        raise _fail(where, "source.columns", "expected a list of names", "columns: [a, b, c]")
    names = tuple(_text(c, where, f"source.columns[{i}]") for i, c in enumerate(columns))
    _check_names(names, where)
    if not header and not names:
        raise _fail(
            where,
            "source.columns",
            "a file without a header needs column names",
            "list them in order: columns: [a, b, c]",
        )
    if header and names:
        raise _fail(
            where,
            "source.columns",
            "names are read from the header",
            "drop source.columns, or set header: false",
        )
    nulls = raw.get("null_values", [""])
    if not isinstance(nulls, list):
        raise _fail(where, "source.null_values", "expected a list", 'null_values: ["", "NA"]')
    return Source(
        encoding=encoding,
        delimiter=delimiter,
        quote=quote,
        header=header,
        columns=names,
        null_values=tuple(_text(n, where, "source.null_values") for n in nulls),
    )


class _NotRegular(OSError):
    """A path that names a directory, a pipe or a device rather than a file."""


def _read_regular(path: Path) -> str:
    """The UTF-8 text of the file at ``path``, refusing what is not a regular file before
    reading it (a pipe without a writer never answers, ``/dev/zero`` never ends) and a
    file larger than any mapping or code list."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _NotRegular(0, "not a regular file")
        if info.st_size > _MAX_FILE_BYTES:
            raise _NotRegular(0, f"larger than {_MAX_FILE_BYTES // 2**20} MiB")
        os.set_blocking(fd, True)
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        return handle.read(_MAX_FILE_BYTES + 1).decode("utf-8-sig")


def _load_codes(path: Path, where: str, key: str) -> dict[str, str]:
    try:
        rows = list(csv.reader(io.StringIO(_read_regular(path), newline="")))
    except csv.Error as error:
        raise _fail(
            where, key, f"{path} is not a CSV file ({error})", "give the path of a CSV file"
        ) from None
    except FileNotFoundError:
        raise _fail(
            where, key, f"no code file at {path}", "give a path relative to the mapping file"
        ) from None
    except UnicodeDecodeError:
        raise _fail(where, key, f"{path} is not UTF-8", "re-save the code file as UTF-8") from None
    except OSError as error:
        raise _fail(
            where, key, f"{path} cannot be read ({error.strerror})", "give the path of a CSV file"
        ) from None
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["local", "standard"]:
        raise _fail(
            where,
            key,
            f"{path} must start with the header local,standard",
            "first line: local,standard",
        )
    codes: dict[str, str] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) < 2:
            raise _fail(
                where,
                key,
                f"{path} line {number} has no standard code",
                "each line: <local code>,<standard code>",
            )
        codes[row[0]] = row[1]
    return codes


def _factor(value: Any, where: str, key: str) -> float:
    """A conversion factor: a finite, non-zero number."""
    number = None
    if not isinstance(value, bool) and isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            number = None
    if number is None or not math.isfinite(number) or number == 0:
        shown = getattr(value, "written", value)
        raise _fail(
            where,
            key,
            f"expected a finite, non-zero number, got {str(shown)[:40]!r}",
            "e.g. factor: 0.01 to turn fen into yuan",
        )
    return number


def _parse_column(target: str, raw: Any, where: str, base: Path | None) -> ColumnMap:
    key = f"columns.{target}"
    if isinstance(raw, str):
        return ColumnMap(target=target, source=raw)
    if not isinstance(raw, dict):
        raise _fail(
            where,
            key,
            "expected a source column name or options",
            f"{target}: {{from: <source column>}}",
        )
    _check_keys(raw, _COLUMN_KEYS, where, key)
    has_from, has_constant = "from" in raw, "constant" in raw
    if has_from == has_constant:
        raise _fail(
            where,
            key,
            "give exactly one of `from` and `constant`",
            f"{target}: {{from: <source column>}} or {{constant: <value>}}",
        )
    if "factor" in raw and "unit" in raw:
        raise _fail(
            where,
            key,
            "give either `factor` or `unit`, not both",
            f"e.g. unit: fen_to_yuan (factor {UNITS['fen_to_yuan']})",
        )
    factor: float | None = None
    if "unit" in raw:
        unit = _text(raw["unit"], where, f"{key}.unit")
        if unit not in UNITS:
            raise _fail(
                where,
                f"{key}.unit",
                f"unknown unit conversion {unit!r}",
                f"use one of: {', '.join(UNITS)}, or a numeric `factor`",
            )
        factor = UNITS[unit]
    if "factor" in raw:
        factor = _factor(raw["factor"], where, f"{key}.factor")
    codes: dict[str, str] = {}
    if "codes" in raw:
        if not isinstance(raw["codes"], dict):
            raise _fail(
                where, f"{key}.codes", "expected local: standard pairs", 'codes: {"0101": "910101"}'
            )
        codes = {
            _text(k, where, f"{key}.codes"): _text(v, where, f"{key}.codes.{k}")
            for k, v in raw["codes"].items()
        }
    if "codes_file" in raw:
        name = _text(raw["codes_file"], where, f"{key}.codes_file")
        path = Path(name) if base is None or Path(name).is_absolute() else base / name
        codes = {**_load_codes(path, where, f"{key}.codes_file"), **codes}
    date_format = raw.get("date_format")
    if date_format is not None:
        date_format = _text(date_format, where, f"{key}.date_format")
        if date_format != EPOCH and "%" not in date_format:
            raise _fail(
                where,
                f"{key}.date_format",
                f"{date_format!r} is not a date format",
                'use strptime codes like "%d/%m/%Y", "%Y年%m月%d日", or "epoch"',
            )
    return ColumnMap(
        target=target,
        source=_text(raw["from"], where, f"{key}.from") if has_from else None,
        constant=_text(raw["constant"], where, f"{key}.constant") if has_constant else None,
        date_format=date_format,
        factor=factor,
        codes=codes,
    )


def parse_mapping(document: Any, where: str, base: Path | None = None) -> Mapping:
    """Build a :class:`Mapping` from parsed YAML; ``where`` names its source in errors.

    ``base`` is the folder relative ``codes_file`` paths are read from.
    """
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise _fail(
            where,
            "(top)",
            "a mapping file holds keys, not a list or a value",
            "start with `columns:`",
        )
    _check_keys(document, _TOP_KEYS, where, "")
    columns_raw = document.get("columns") or {}
    if not isinstance(columns_raw, dict):
        raise _fail(
            where,
            "columns",
            "expected standard column: source pairs",
            "columns: {visit_id: VisitNo}",
        )
    standard = document.get("standard")
    return Mapping(
        where=where,
        source=_parse_source(document.get("source"), where),
        columns=tuple(
            _parse_column(str(getattr(t, "written", t)), raw, where, base)
            for t, raw in columns_raw.items()
        ),
        standard=_text(standard, where, "standard") if standard is not None else None,
    )


@cache
def _loader() -> type[Any]:
    """PyYAML's safe loader, with numbers that remember how they were written."""
    import yaml

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
            _refuse_repeated_keys(self, node)
            return super().construct_mapping(node, deep)

    def integer(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> _Int:
        return _Int(loader.construct_yaml_int(node), str(node.value))

    def number(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> _Float:
        return _Float(loader.construct_yaml_float(node), str(node.value))

    Loader.add_constructor("tag:yaml.org,2002:int", integer)
    Loader.add_constructor("tag:yaml.org,2002:float", number)
    return Loader


class _RepeatedKey(Exception):
    """A mapping's key given twice: YAML would keep the last one, and drop the first
    without a word."""

    def __init__(self, key: str, first: int, again: int) -> None:
        super().__init__(key)
        self.key, self.first, self.again = key, first, again


def _refuse_repeated_keys(loader: Any, node: Any) -> None:
    """Raise :class:`_RepeatedKey` for a key of ``node`` equal to an earlier one (as the
    dict would hold them: ``0101`` is ``65``). Keys a merge (``<<``) brings in may be
    given again: overriding them is what a merge is for."""
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            first = seen.get(key)
        except TypeError:
            # An unhashable key: the constructor refuses it next, in its own words.
            continue
        if first is not None:
            raise _RepeatedKey(str(key_node.value), first, line)
        seen[key] = line


def write_yaml(document: Any) -> str:
    """The YAML text of a document :func:`read_yaml` read, each number as it was written
    (``0101`` stays ``0101``, read back as the same text)."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def written(tag: str) -> Any:
        return lambda dumper, value: dumper.represent_scalar(tag, value.written)

    Dumper.add_representer(_Int, written("tag:yaml.org,2002:int"))
    Dumper.add_representer(_Float, written("tag:yaml.org,2002:float"))
    return yaml.dump(document, Dumper=Dumper, sort_keys=False, allow_unicode=True)


def read_yaml(text: str, where: str) -> Any:
    """Parse a mapping's YAML text; ``where`` names it in errors.

    Numbers keep the text they were written as, for the keys that take text: a code
    ``0101`` stays ``"0101"``.
    """
    # PyYAML loads here: reading a standard or listing the catalog reads no mapping.
    import yaml

    try:
        return yaml.load(text, Loader=_loader())
    except _RepeatedKey as error:
        raise InvalidInput(
            f"{where} line {error.again}: key {error.key!r} is given twice (first on line "
            f"{error.first})",
            hint="give each key once: YAML would keep the last and drop the first",
            source=where,
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise InvalidInput(
            f"{where}{line}: not valid YAML ({getattr(error, 'problem', error)})",
            hint="check indentation and quote values that contain ':' or '#'",
            source=where,
        ) from None
    except RecursionError:
        raise InvalidInput(
            f"{where}: not a mapping: its YAML is nested too deeply to read",
            hint="a mapping has three levels: columns, a column, its options",
            source=where,
        ) from None


def load_mapping(path: Path) -> Mapping:
    """Read a mapping YAML file; any mistake is an error naming the file and key."""
    try:
        text = _read_regular(path)
    except FileNotFoundError:
        raise NotFound(f"no mapping file at {path}", hint="check the --mapping path") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: not UTF-8 text", hint="save the mapping as UTF-8") from None
    except OSError as error:
        raise InvalidInput(
            f"{path}: cannot be read as a mapping ({error.strerror})",
            hint="give the path of a mapping YAML file",
        ) from None
    return parse_mapping(read_yaml(text, str(path)), str(path), base=path.parent)
