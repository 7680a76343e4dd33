"""Standards: Frictionless Table Schema with an entrepot role for every column.

A standard is a Table Schema JSON document. Besides the usual ``fields``,
``primaryKey`` and ``foreignKeys``, entrepot reads these properties:

- per field, ``"entrepot:role"``: one of :class:`Role`; ``"entrepot:bounds"``:
  ``[low, high]``, the public clamping bounds of a ``measure``;
  ``"entrepot:codelist"``: the public code list a ``dimension`` takes its values from;
  ``"entrepot:linkKey"``: the concept (:mod:`entrepot.standards.linkkeys`) an
  ``identifier`` names, which makes it a link key for private joins;
- per schema, ``"entrepot:privacyUnit"``: the ``identifier`` field that names a
  person or firm, and ``"entrepot:oneRowPerUnit"``: true when each unit has at most
  one row (no contribution bounding needed).

A ``foreignKeys`` entry whose reference resource is ``codelist:<name>`` ties one or
more columns to the columns ``code`` and ``parent`` of a shipped code list, e.g. a
district that must lie in the row's city::

    {"fields": ["district", "city"],
     "reference": {"resource": "codelist:region.district", "fields": ["code", "parent"]}}
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from entrepot._text import TEXT_MAX, check_text
from entrepot.errors import InvalidInput, NotFound
from entrepot.standards.codelist import codelist_names
from entrepot.standards.linkkeys import concept_names

__all__ = [
    "TYPES",
    "Field",
    "ForeignKey",
    "Role",
    "Standard",
    "load_standard_file",
    "parse_standard",
]

# Table Schema field types entrepot validates and stores.
TYPES = ("string", "integer", "number", "boolean", "date", "datetime")


class Role(StrEnum):
    IDENTIFIER = "identifier"
    QUASI_IDENTIFIER = "quasi_identifier"
    SENSITIVE = "sensitive"
    MEASURE = "measure"
    DIMENSION = "dimension"
    TIME = "time"


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    role: Role
    title: str = ""
    description: str = ""
    format: str | None = None
    required: bool = False
    unique: bool = False
    minimum: float | str | None = None
    maximum: float | str | None = None
    enum: tuple[Any, ...] | None = None
    pattern: str | None = None
    bounds: tuple[float, float] | None = None
    codelist: str | None = None
    link_key: str | None = None


@dataclass(frozen=True)
class ForeignKey:
    """Columns ``fields`` must match the columns ``columns`` of a row of ``codelist``."""

    fields: tuple[str, ...]
    codelist: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Standard:
    name: str
    title: str
    description: str
    version: str
    fields: tuple[Field, ...]
    primary_key: tuple[str, ...] = ()
    privacy_unit: str | None = None
    one_row_per_unit: bool = False
    foreign_keys: tuple[ForeignKey, ...] = ()
    document: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> Field:
        for candidate in self.fields:
            if candidate.name == name:
                return candidate
        raise NotFound(
            f"standard {self.name} has no column {name!r}",
            hint=f"its columns are: {', '.join(self.field_names)}",
        )

    def with_role(self, role: Role) -> list[Field]:
        return [f for f in self.fields if f.role is role]

    def summary(self) -> dict[str, Any]:
        """A plain description (columns, roles, constraints, keys) for JSON and tables."""
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "version": self.version,
            "privacy_unit": self.privacy_unit,
            "one_row_per_unit": self.one_row_per_unit,
            "primary_key": list(self.primary_key),
            "foreign_keys": [
                {"fields": list(k.fields), "codelist": k.codelist, "columns": list(k.columns)}
                for k in self.foreign_keys
            ],
            "fields": [_field_summary(f) for f in self.fields],
        }


def _field_summary(f: Field) -> dict[str, Any]:
    constraints: dict[str, Any] = {
        "required": f.required,
        "unique": f.unique,
        "minimum": f.minimum,
        "maximum": f.maximum,
        "enum": list(f.enum) if f.enum is not None else None,
        "pattern": f.pattern,
    }
    return {
        "name": f.name,
        "type": f.type,
        "format": f.format,
        "role": f.role.value,
        "title": f.title,
        "description": f.description,
        "constraints": {k: v for k, v in constraints.items() if v is not None and v is not False},
        "bounds": list(f.bounds) if f.bounds is not None else None,
        "codelist": f.codelist,
        "link_key": f.link_key,
    }


def _fail(where: str, message: str, hint: str) -> InvalidInput:
    return InvalidInput(f"{where}: {message}", hint=hint, source=where)


def _check_texts(raw: dict[str, Any], where: str) -> None:
    """Names, titles and descriptions reach terminals: text, with no control characters."""
    for key in ("name", "title", "description"):
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise _fail(where, f"{key} must be text, not {type(value).__name__}", f'"{key}": "…"')
        if isinstance(value, str):
            try:
                check_text(value, key, most=TEXT_MAX, multiline=key == "description")
            except InvalidInput as error:
                raise _fail(where, error.message, error.hint) from None


def _parse_field(raw: Any, where: str) -> Field:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise _fail(where, "a field must be an object with a string name", 'e.g. {"name": "x"}')
    _check_texts(raw, where)
    name = raw["name"]
    here = f"{where}, field {name!r}"
    ftype = raw.get("type", "string")
    if ftype not in TYPES:
        raise _fail(here, f"unsupported type {ftype!r}", f"use one of: {', '.join(TYPES)}")
    role_text = raw.get("entrepot:role", Role.QUASI_IDENTIFIER.value)
    try:
        role = Role(role_text)
    except ValueError:
        raise _fail(
            here, f"unknown role {role_text!r}", f"use one of: {', '.join(r.value for r in Role)}"
        ) from None
    constraints = raw.get("constraints", {})
    if not isinstance(constraints, dict):
        raise _fail(here, "constraints must be an object", '{"required": true, ...}')
    bounds = raw.get("entrepot:bounds")
    if role is Role.MEASURE:
        if ftype not in ("integer", "number"):
            raise _fail(here, "a measure must be numeric", 'give it "type": "number"')
        if (
            not isinstance(bounds, list)
            or len(bounds) != 2
            or not all(isinstance(b, int | float) for b in bounds)
            or bounds[0] >= bounds[1]
        ):
            raise _fail(
                here,
                "a measure needs public bounds [low, high] with low < high",
                'add "entrepot:bounds": [0, 1000]',
            )
    codelist = raw.get("entrepot:codelist")
    if codelist is not None and codelist not in codelist_names():
        raise _fail(
            here, f"unknown code list {codelist!r}", f"use one of: {', '.join(codelist_names())}"
        )
    enum = constraints.get("enum")
    if enum is not None and (not isinstance(enum, list) or not enum):
        raise _fail(here, "constraints.enum must be a non-empty list", '"enum": ["a", "b"]')
    if role is Role.DIMENSION and codelist is None and enum is None:
        raise _fail(
            here,
            "a dimension needs a public code list or an enum",
            'add "entrepot:codelist": "<name>" or constraints.enum',
        )
    _check_constraints(ftype, constraints, here)
    link_key = _parse_link_key(raw.get("entrepot:linkKey"), role, ftype, here)
    return Field(
        name=name,
        type=ftype,
        role=role,
        title=raw.get("title", ""),
        description=raw.get("description", ""),
        format=raw.get("format") if raw.get("format") not in (None, "default", "any") else None,
        required=bool(constraints.get("required", False)),
        unique=bool(constraints.get("unique", False)),
        minimum=constraints.get("minimum"),
        maximum=constraints.get("maximum"),
        enum=tuple(enum) if enum is not None else None,
        pattern=constraints.get("pattern"),
        bounds=(float(bounds[0]), float(bounds[1])) if role is Role.MEASURE and bounds else None,
        codelist=codelist,
        link_key=link_key,
    )


def _parse_link_key(value: Any, role: Role, ftype: str, where: str) -> str | None:
    if value is None:
        return None
    if value not in concept_names():
        known = ", ".join(concept_names())
        raise _fail(where, f"unknown link-key concept {value!r}", f"use one of: {known}")
    if role is not Role.IDENTIFIER or ftype not in ("string", "integer"):
        raise _fail(
            where,
            "a link key must be a string or integer identifier",
            'give it "entrepot:role": "identifier", or drop "entrepot:linkKey"',
        )
    return str(value)


def _bound_ok(ftype: str, value: Any) -> bool:
    if ftype in ("integer", "number"):
        return isinstance(value, int | float) and not isinstance(value, bool)
    parse = {"date": date.fromisoformat, "datetime": datetime.fromisoformat}.get(ftype)
    if parse is None or not isinstance(value, str):
        return False
    try:
        parse(value)
    except ValueError:
        return False
    return True


def _check_constraints(ftype: str, constraints: dict[str, Any], where: str) -> None:
    """Refuse constraint values the validator could not apply to this type."""
    for key in ("minimum", "maximum"):
        value = constraints.get(key)
        if value is not None and not _bound_ok(ftype, value):
            example = {"integer": "0", "number": "0.5", "date": '"2000-01-01"'}.get(
                ftype, '"2000-01-01T00:00:00"'
            )
            raise _fail(
                where,
                f"{key} {value!r} does not fit type {ftype}",
                f"give a {ftype} value, e.g. {example}"
                if ftype != "string" and ftype != "boolean"
                else f"{key} applies to numbers, dates and datetimes only",
            )
    pattern = constraints.get("pattern")
    if pattern is not None:
        if ftype != "string":
            raise _fail(where, "a pattern applies to string columns only", "drop the pattern")
        try:
            re.compile(str(pattern))
        except re.error as error:
            raise _fail(
                where,
                f"pattern {pattern!r} is not a regular expression ({error})",
                "fix the pattern",
            ) from None
    enum = constraints.get("enum") or []
    if ftype in ("integer", "number") and not all(_bound_ok(ftype, v) for v in enum):
        raise _fail(where, f"enum values must be {ftype}s", "e.g. [1, 2, 3]")


def _as_names(value: Any) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value or ())


def _parse_foreign_key(raw: Any, names: list[str], where: str) -> ForeignKey:
    example = (
        '{"fields": ["district", "city"], "reference": '
        '{"resource": "codelist:region.district", "fields": ["code", "parent"]}}'
    )
    if not isinstance(raw, dict) or not isinstance(raw.get("reference"), dict):
        raise _fail(where, "a foreign key needs fields and a reference", example)
    fields = _as_names(raw.get("fields"))
    resource = str(raw["reference"].get("resource", ""))
    columns = _as_names(raw["reference"].get("fields"))
    if not resource.startswith("codelist:"):
        raise _fail(
            where,
            f"reference resource {resource!r} is not a code list",
            "entrepot checks references to shipped code lists: codelist:<name>",
        )
    target = resource.removeprefix("codelist:")
    if target not in codelist_names():
        raise _fail(
            where, f"unknown code list {target!r}", f"use one of: {', '.join(codelist_names())}"
        )
    if not fields or len(fields) != len(columns):
        raise _fail(where, "fields and reference fields differ in length", example)
    for name in fields:
        if name not in names:
            raise _fail(where, f"foreign key names unknown column {name!r}", "fix its fields")
    for column in columns:
        if column not in ("code", "parent"):
            raise _fail(
                where, f"code lists have no column {column!r}", 'reference "code" or "parent"'
            )
    return ForeignKey(fields=fields, codelist=target, columns=columns)


def parse_standard(document: Any, where: str) -> Standard:
    """Build a :class:`Standard` from a Table Schema document; ``where`` names its source."""
    if not isinstance(document, dict) or not isinstance(document.get("fields"), list):
        raise _fail(where, "not a Table Schema: no list of fields", 'expected {"fields": [...]}')
    _check_texts(document, where)
    fields = tuple(_parse_field(raw, where) for raw in document["fields"])
    names = [f.name for f in fields]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise _fail(where, f"duplicate column(s) {', '.join(duplicates)}", "rename one of each")
    primary_key = document.get("primaryKey", [])
    primary_key = [primary_key] if isinstance(primary_key, str) else list(primary_key)
    for key in primary_key:
        if key not in names:
            raise _fail(where, f"primaryKey names unknown column {key!r}", "fix primaryKey")
    unit = document.get("entrepot:privacyUnit")
    if unit is not None:
        if unit not in names:
            raise _fail(where, f"privacy unit {unit!r} is not a column", "fix privacyUnit")
        if fields[names.index(unit)].role is not Role.IDENTIFIER:
            raise _fail(
                where,
                f"privacy unit {unit!r} must have role identifier",
                f'set "entrepot:role": "identifier" on {unit!r}',
            )
    foreign_keys = tuple(
        _parse_foreign_key(raw, names, f"{where}, foreignKeys[{i}]")
        for i, raw in enumerate(document.get("foreignKeys", []))
    )
    stem = Path(where).stem if where.endswith(".json") else where
    return Standard(
        name=document.get("name", stem),
        title=document.get("title", ""),
        description=document.get("description", ""),
        version=str(document.get("version", "1.0")),
        fields=fields,
        primary_key=tuple(primary_key),
        privacy_unit=unit,
        one_row_per_unit=bool(document.get("entrepot:oneRowPerUnit", False)),
        foreign_keys=foreign_keys,
        document=document,
    )


def load_standard_file(path: Path) -> Standard:
    """Read a Table Schema JSON file; a malformed file is an error naming it."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"no standard file at {path}", hint="check the path") from None
    except OSError as error:
        raise InvalidInput(
            f"{path}: cannot be read as a standard ({error.strerror})",
            hint="give the path of a Table Schema JSON file",
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInput(
            f"{path}: not a JSON Table Schema ({error})", hint="fix the JSON syntax"
        ) from None
    return parse_standard(document, str(path))
