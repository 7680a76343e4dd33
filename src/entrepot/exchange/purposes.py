"""The purpose vocabulary: what an access request may be for.

Shipped as data (``purposes.json``); each purpose may name a broader one, and a
grant for a purpose also covers every narrower purpose. Where the W3C Data Privacy
Vocabulary has a matching purpose, ``dpv`` points at it. A purpose marked ``rows``
allows anonymized and synthetic releases (row-level data); the others, aggregates only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from entrepot.errors import InvalidInput

__all__ = ["Purpose", "check_purpose", "covers", "purposes"]


@dataclass(frozen=True)
class Purpose:
    id: str
    label: str
    description: str
    broader: str | None
    dpv: str | None
    rows: bool = False  # a grant for it may receive row-level releases


@cache
def purposes() -> dict[str, Purpose]:
    """The purpose vocabulary, by id."""
    text = resources.files("entrepot.exchange").joinpath("purposes.json").read_text("utf-8")
    return {p["id"]: Purpose(**p) for p in json.loads(text)["purposes"]}


def check_purpose(purpose_id: str) -> Purpose:
    known = purposes()
    if purpose_id not in known:
        raise InvalidInput(
            f"unknown purpose {purpose_id!r}",
            hint=f"choose one of: {', '.join(sorted(known))}",
        )
    return known[purpose_id]


def covers(granted: str, used: str) -> bool:
    """A grant for a purpose also covers every narrower purpose."""
    known = purposes()
    current: str | None = used
    while current is not None:
        if current == granted:
            return True
        current = known[current].broader if current in known else None
    return False
