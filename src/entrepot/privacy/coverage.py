"""A dataset's public coverage: the time range and the codes its policy says it covers.

A standard's code lists are national and its time columns span decades, while one
dataset covers one province's districts over a few months. The policy says so, in
public (``entrepot policy show``)::

    coverage:
      visit_date: {from: 2025-01-01, to: 2025-06-30}   # a time column: first and last day
      district: {within: ["910000"]}                   # every code under these codes
      sex: [1, 2]                                      # or the codes themselves

Output groups come from the coverage instead of the whole list or range, and a query
that asks only about what lies outside it is refused under rule ``coverage``. Both are
decided from the policy text and the query text, never from the data: the coverage is
the provider's public statement, not a figure of the rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from entrepot.errors import InvalidInput, NotFound
from entrepot.standards.codelist import codelist, codelist_names
from entrepot.standards.schema import Field, Role, Standard

__all__ = ["Coverage", "parse_coverage"]

# Codes a refusal lists before it says how many more there are.
_LISTED = 12


@dataclass(frozen=True)
class Coverage:
    """Per time column its first and last day; per dimension the codes it covers."""

    periods: tuple[tuple[str, str, str], ...] = ()
    codes: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.periods or self.codes)

    def period(self, column: str) -> tuple[dt.date, dt.date] | None:
        """The first and last day ``column`` covers, or None when the policy says nothing."""
        for name, first, last in self.periods:
            if name == column:
                return dt.date.fromisoformat(first), dt.date.fromisoformat(last)
        return None

    def codes_of(self, column: str) -> tuple[str, ...] | None:
        """The codes ``column`` covers, in code-list order, or None when not narrowed."""
        for name, codes in self.codes:
            if name == column:
                return codes
        return None

    def describe(self, column: str) -> str:
        """The coverage of ``column`` in words, for refusals and notes."""
        period = self.period(column)
        if period is not None:
            return f"{column} from {period[0].isoformat()} to {period[1].isoformat()}"
        codes = self.codes_of(column) or ()
        listed = ", ".join(codes[:_LISTED])
        more = f" and {len(codes) - _LISTED} more" if len(codes) > _LISTED else ""
        return f"{column} in {listed}{more}"

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            column: {"from": first, "to": last} for column, first, last in self.periods
        }
        document.update({column: list(codes) for column, codes in self.codes})
        return document


def parse_coverage(block: Any, standard: Standard, where: str) -> Coverage:
    """Read the ``coverage`` mapping of a policy; errors name ``coverage.<column>``."""
    if not isinstance(block, Mapping):
        raise _fail(
            where, "coverage", "must be a mapping of columns", "coverage: {district: [...]}"
        )
    periods: list[tuple[str, str, str]] = []
    codes: list[tuple[str, tuple[str, ...]]] = []
    for column, value in block.items():
        key = f"coverage.{column}"
        if not isinstance(column, str) or column not in standard.field_names:
            raise _fail(
                where,
                key,
                f"{column!r} is not a column of {standard.name}",
                f"its time columns and dimensions: {', '.join(_coverable(standard))}",
            )
        field = standard.field(column)
        if field.role is Role.TIME:
            periods.append((column, *_period(value, where, key)))
        elif field.role is Role.DIMENSION:
            codes.append((column, _codes(value, field, where, key)))
        else:
            raise _fail(
                where,
                key,
                f"{column!r} has role {field.role.value}; coverage is declared for time "
                "columns and dimensions",
                f"remove {column!r} from coverage",
            )
    return Coverage(tuple(periods), tuple(codes))


def _coverable(standard: Standard) -> list[str]:
    return [f.name for f in standard.fields if f.role in (Role.TIME, Role.DIMENSION)]


def _fail(where: str, key: str, message: str, hint: str) -> InvalidInput:
    return InvalidInput(f"{where}: {key}: {message}", hint=hint, key=key)


def _day(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _period(value: Any, where: str, key: str) -> tuple[str, str]:
    example = f"{key}: {{from: 2025-01-01, to: 2025-06-30}}"
    if not isinstance(value, Mapping) or set(value) != {"from", "to"}:
        raise _fail(where, key, "must give the first and last day as from and to", example)
    first, last = _day(value["from"]), _day(value["to"])
    if first is None or last is None:
        raise _fail(where, key, "from and to must be dates (YYYY-MM-DD)", example)
    if first > last:
        raise _fail(where, key, f"from {first} is after to {last}", "swap them")
    return first.isoformat(), last.isoformat()


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value)


def _codes(value: Any, field: Field, where: str, key: str) -> tuple[str, ...]:
    known = _known(field)
    if isinstance(value, Mapping):
        if set(value) != {"within"} or not isinstance(value["within"], list):
            raise _fail(where, key, "must be a list of codes or {within: [codes]}", f"{key}: [..]")
        parents = [_text(v) for v in value["within"]]
        if field.codelist is None or not parents or None in parents:
            raise _fail(
                where,
                key,
                "within needs a code-list dimension and a list of codes of its hierarchy",
                f'{key}: {{within: ["910000"]}}',
            )
        chosen = set(_under(field.codelist, {p for p in parents if p is not None}))
        if not chosen:
            raise _fail(
                where,
                key,
                f"no code of {field.codelist} lies under {', '.join(map(str, parents))}",
                f"see `entrepot standard codes {field.codelist}` and its parent codes",
            )
    elif isinstance(value, list) and value:
        texts = [_text(v) for v in value]
        if None in texts:
            raise _fail(where, key, "codes must be strings or integers", f'{key}: ["910101"]')
        chosen = {t for t in texts if t is not None}
        unknown = sorted(chosen - set(known)) if known is not None else []
        if unknown:
            raise _fail(
                where,
                key,
                f"{', '.join(unknown[:_LISTED])} not in the column's public codes",
                "list codes of the column's code list (`entrepot standard codes <list>`)",
            )
    else:
        raise _fail(where, key, "must be a non-empty list of codes or {within: [...]}", key)
    order = known if known is not None else sorted(chosen)
    return tuple(code for code in order if code in chosen)


def _known(field: Field) -> tuple[str, ...] | None:
    """The column's public codes as text, or None for a code list not shipped here."""
    if field.enum is not None:
        return tuple(str(v) for v in field.enum)
    if field.codelist is None:
        return None
    try:
        return codelist(field.codelist).codes
    except NotFound:
        return None


def _under(name: str, ancestors: set[str]) -> list[str]:
    """The codes of ``name`` with one of ``ancestors`` up their chain of parents."""
    try:
        listed = codelist(name)
    except NotFound:
        return []
    parent = _parents(name.split(".")[0])
    out = []
    for code in listed.codes:
        seen: set[str] = set()
        step: str | None = code
        while step is not None and step not in seen:
            if step in ancestors:
                out.append(code)
                break
            seen.add(step)
            step = parent.get(step)
    return out


@cache
def _parents(family: str) -> dict[str, str]:
    """Each code's parent across the shipped code lists of one family (``region.*``)."""
    parent: dict[str, str] = {}
    for name in codelist_names():
        if name.split(".")[0] != family:
            continue
        for code, _label, up in codelist(name).rows():
            if up is not None:
                parent.setdefault(code, up)
    return parent
