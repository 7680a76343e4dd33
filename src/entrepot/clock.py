"""The node's clock and its one convention for timestamps.

Every timestamp column of the metadata DB is a plain ``DateTime`` (``TIMESTAMP
WITHOUT TIME ZONE`` on PostgreSQL, text on SQLite) holding UTC, and the code reads
and writes naive UTC datetimes: :func:`utcnow` is the only "now" a service takes by
default. Naive values compare with each other on both databases alike, where a mix
of aware and naive ones would raise on comparison, and SQLite hands back naive
values whatever was written. An offset is added only where a time leaves the node
(JSON, logs, receipts): :func:`as_utc` makes the aware UTC datetime that prints as
RFC 3339 with ``+00:00``.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["as_utc", "rfc3339", "utcnow"]


def utcnow() -> datetime:
    """Now, as the naive UTC datetime every timestamp column stores."""
    return datetime.now(UTC).replace(tzinfo=None)


def as_utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime; a naive one is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def rfc3339(moment: datetime) -> str:
    """``moment`` as the API's models write a time: ISO 8601 in UTC with ``Z`` for its
    offset (a naive one is taken to be UTC already)."""
    return as_utc(moment).isoformat().replace("+00:00", "Z")
