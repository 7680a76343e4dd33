"""A dataset's scope in the catalog: the regions it covers and its sector of activity.

Both are public catalog metadata that the provider declares when it publishes, as
codes of the shipped code lists: a region is a province, city or district
(``region.province``, ``region.city``, ``region.district``: codes are unique across
the three), a sector one of the ``sector`` list. Codes, not free text, so that the
same place or sector is one facet value whoever publishes, and so that a harvester
reads them as concepts (DCAT ``dct:spatial`` and ``dcat:theme``). Nothing here looks
at a dataset's rows: a scope is what its provider says it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from entrepot.errors import InvalidInput
from entrepot.standards.codelist import codelist

__all__ = [
    "MAX_REGIONS",
    "REGION_LISTS",
    "SECTOR_LIST",
    "Term",
    "check_regions",
    "check_sector",
    "region",
    "sector",
]

# From the widest to the narrowest: a region is a code of one of these lists.
REGION_LISTS = ("region.province", "region.city", "region.district")
SECTOR_LIST = "sector"
# A dataset covering more places than this is better described by their province.
MAX_REGIONS = 64


@dataclass(frozen=True)
class Term:
    """A code of a shipped code list, with its label and the list's name."""

    code: str
    label: str
    codelist: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "label": self.label, "codelist": self.codelist}


def region(code: str) -> Term:
    """The region ``code`` names; an unknown code is refused with the lists to look in."""
    for name in REGION_LISTS:
        found = codelist(name)
        if code in found:
            return Term(code, found.label(code), name)
    raise InvalidInput(
        f"region {code!r} is not a code of {', '.join(REGION_LISTS)}",
        hint="give a province, city or district code; list them with "
        "`entrepot standard codes region.province` (or region.city, region.district)",
    )


def sector(code: str) -> Term:
    """The sector ``code`` names; an unknown code is refused with the list to look in."""
    found = codelist(SECTOR_LIST)
    if code not in found:
        raise InvalidInput(
            f"sector {code!r} is not a code of {SECTOR_LIST}",
            hint=f"choose one of {', '.join(found.codes)} "
            "(`entrepot standard codes sector` lists their labels)",
        )
    return Term(code, found.label(code), SECTOR_LIST)


def check_regions(codes: Iterable[str]) -> tuple[str, ...]:
    """``codes`` once each, in the order given, every one a known region."""
    unique = tuple(dict.fromkeys(code.strip() for code in codes))
    if len(unique) > MAX_REGIONS:
        raise InvalidInput(
            f"a dataset covers at most {MAX_REGIONS} regions, not {len(unique)}",
            hint="name the provinces or cities that hold them instead",
        )
    for code in unique:
        region(code)
    return unique


def check_sector(code: str | None) -> str | None:
    """``code`` if it is a known sector (None stays None)."""
    return None if code is None else sector(code.strip()).code
