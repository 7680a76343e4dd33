"""Link keys: identifier columns that name the same thing across holders.

A standard marks an ``identifier`` column as a link key of a *concept* with
``"entrepot:linkKey": "<concept>"``. Two columns may be joined only when they are
link keys of the same concept. Each concept has one canonical form: every holder
normalizes a value to it before hashing, so that two holders who wrote the same
resident number or phone number in different local formats produce the same token.
A value that does not normalize to a well-formed key is *malformed*: it is dropped
before hashing and never matches anything.

::

    from entrepot.standards import linkkeys
    linkkeys.concept("phone-number").canonicalize("+1 (30) 1234-5678")  # '13012345678'
    linkkeys.joinable(left_field, right_field)                          # same concept?
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from entrepot.errors import NotFound, PolicyViolation

if TYPE_CHECKING:
    from entrepot.standards.schema import Field, Standard

__all__ = [
    "CONCEPTS",
    "Concept",
    "check_joinable",
    "concept",
    "concept_names",
    "joinable",
]

# Separators people type inside identifiers; they carry no information.
_SEPARATORS = re.compile(r"[\s\-‐-―.()/]+")


def _text(value: object) -> str | None:
    """The value as text: NFKC folds full-width digits and letters to ASCII."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        return None
    return unicodedata.normalize("NFKC", value).strip()


def _resident_number(text: str) -> str | None:
    key = _SEPARATORS.sub("", text).upper()
    return key if re.fullmatch(r"[A-Z0-9]{4,32}", key) else None


def _phone_number(text: str) -> str | None:
    key = _SEPARATORS.sub("", text).removeprefix("+")
    # E.164 numbers have at most 15 digits; fewer than 6 is no subscriber number.
    return key if re.fullmatch(r"[0-9]{6,15}", key) else None


def _firm_number(text: str) -> str | None:
    key = _SEPARATORS.sub("", text).upper()
    # GB 32100-2015 unified social credit code: 18 characters, no I, O, S, V, Z.
    return key if re.fullmatch(r"[0-9A-HJ-NPQRTUWXY]{18}", key) else None


@dataclass(frozen=True)
class Concept:
    """What a link key names, and how its values are brought to one canonical form."""

    name: str
    title: str
    canonical_form: str
    normalize: Callable[[str], str | None]

    def canonicalize(self, value: object) -> str | None:
        """The canonical form of ``value``, or None when it is malformed (never matches)."""
        text = _text(value)
        return None if text is None else self.normalize(text)


CONCEPTS: Mapping[str, Concept] = MappingProxyType(
    {
        c.name: c
        for c in (
            Concept(
                "resident-number",
                "a resident's identity number",
                "letters and digits only, upper case, 4 to 32 characters",
                _resident_number,
            ),
            Concept(
                "phone-number",
                "a phone number in international form",
                "digits only (a leading + dropped), 6 to 15 digits",
                _phone_number,
            ),
            Concept(
                "firm-number",
                "a firm's unified social credit code",
                "18 characters of 0-9 and A-Y without I, O, S, V, Z, upper case",
                _firm_number,
            ),
        )
    }
)


def concept_names() -> list[str]:
    return sorted(CONCEPTS)


def concept(name: str) -> Concept:
    """The concept called ``name``; an unknown name is an error listing the known ones."""
    try:
        return CONCEPTS[name]
    except KeyError:
        raise NotFound(
            f"no link-key concept {name!r}", hint=f"use one of: {', '.join(concept_names())}"
        ) from None


def joinable(left: Field, right: Field) -> bool:
    """True when both columns are link keys of the same concept."""
    return left.link_key is not None and left.link_key == right.link_key


def check_joinable(left: Standard, left_column: str, right: Standard, right_column: str) -> Concept:
    """The concept two columns share as link keys, or :class:`PolicyViolation`."""
    a, b = left.field(left_column), right.field(right_column)
    for standard, column in ((left, a), (right, b)):
        if column.link_key is None:
            keys = [f.name for f in standard.fields if f.link_key is not None]
            raise PolicyViolation(
                f"{standard.name}.{column.name} is not a link key",
                rule="link_key",
                hint=f"join on a link key of {standard.name}: {', '.join(keys) or 'it has none'}",
            )
    if not joinable(a, b):
        raise PolicyViolation(
            f"{left.name}.{a.name} is a {a.link_key} but {right.name}.{b.name} is a {b.link_key}",
            rule="link_key",
            hint="join two link keys of the same concept",
        )
    return concept(str(a.link_key))
