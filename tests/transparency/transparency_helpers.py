"""Entries the transparency tests append."""

from __future__ import annotations

from entrepot.transparency import Entry, make_entry


def grant(i: int, dataset: str = "riverside/visits") -> Entry:
    return make_entry("grant", "admin", dataset=dataset, action="granted", grantee=f"c{i}")
