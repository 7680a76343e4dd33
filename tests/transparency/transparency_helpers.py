"""Entries the transparency tests append."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from entrepot.transparency import Entry, make_entry


def grant(i: int, dataset: str = "riverside/visits") -> Entry:
    return make_entry("grant", "admin", dataset=dataset, action="granted", grantee=f"c{i}")


class Clock:
    """A hand-moved clock, so head cadence never depends on the wall clock."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
