"""Log entries: one canonical JSON object per event, built with :func:`make_entry`.

An entry is a flat object: the common keys ``kind``, ``time``, ``actor`` and, when
they apply, ``dataset``, ``purpose`` and ``epsilon`` (a decimal string), plus the
fields of its kind (e.g. ``action``, ``outcome``, ``query_commitment``).

Personal data never goes in an entry: the log is public. ``actor`` names who acted
in one way, whatever door it came through (:func:`actor_name`): ``org:<slug>`` for an
organization (through an API token of any of its accounts, the local CLI's ``--as``,
or a local publish for it), ``local`` for the node's holder at the node's own
machine, and ``system`` for the node acting by itself (a grant's expiry). An
account's name is never logged: it may be a person's. A query, its answer and the
dataset versions it read are named by commitments a guess cannot confirm
(:mod:`entrepot.transparency.commitments`), never by a plain hash or their text;
rows and identifiers are never logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from typing import Any

from entrepot.errors import InvalidInput
from entrepot.transparency.canonical import canonical_json, decimal_text, timestamp

__all__ = [
    "LOCAL_ACTOR",
    "SYSTEM_ACTOR",
    "Entry",
    "Kind",
    "actor_name",
    "entry_datasets",
    "make_entry",
]

# The node's holder acting at its own machine (the local CLI without --as).
LOCAL_ACTOR = "local"
# The node acting by itself, on a rule set earlier (a grant that expires).
SYSTEM_ACTOR = "system"


def entry_datasets(entry: Mapping[str, Any]) -> list[str]:
    """The datasets an entry is about: its ``dataset``, or each of its ``datasets``,
    named by text (a refusal) or by an object with its version (an answer)."""
    if isinstance(entry.get("dataset"), str):
        return [entry["dataset"]]
    named = entry.get("datasets")
    if not isinstance(named, list):
        return []
    found = (d.get("dataset") if isinstance(d, dict) else d for d in named)
    return [d for d in found if isinstance(d, str)]


def actor_name(org_slug: str | None) -> str:
    """How the log, the ledger and contract histories name an actor: ``org:<slug>``,
    or :data:`LOCAL_ACTOR` for the node's holder (no organization)."""
    return f"org:{org_slug}" if org_slug else LOCAL_ACTOR


class Kind(StrEnum):
    """What happened; the fields each kind carries are listed in docs/transparency.md."""

    ACCOUNT = "account"  # an account was created, changed or disabled
    GRANT = "grant"  # access to a dataset was granted, changed or revoked
    POLICY = "policy"  # a dataset's privacy policy changed
    DATASET_VERSION = "dataset_version"  # a dataset version was published
    QUERY = "query"  # a query was answered or refused, with ε and its commitment
    JOIN = "join"  # a private join across holders ran
    RELEASE = "release"  # an anonymized release was made
    DOWNLOAD = "download"  # a release was downloaded
    PEER = "peer"  # a federated peer was added, changed or removed


_COMMON = ("kind", "time", "actor", "dataset", "purpose", "epsilon")


@dataclass(frozen=True)
class Entry:
    kind: Kind
    time: str
    actor: str
    dataset: str | None = None
    purpose: str | None = None
    epsilon: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        clash = sorted(set(self.fields) & set(_COMMON))
        if clash:
            raise InvalidInput(
                f"field {clash[0]!r} is a common key of every entry",
                hint=f"pass {clash[0]} as its own argument",
            )

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": str(self.kind), "time": self.time, "actor": self.actor}
        for name in ("dataset", "purpose", "epsilon"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        body.update(self.fields)
        return body

    @cached_property
    def encoded(self) -> bytes:
        return canonical_json(self.to_json(), where=f"{self.kind} entry")

    def to_bytes(self) -> bytes:
        """The canonical JSON the log stores and hashes (encoded once per entry)."""
        return self.encoded


def make_entry(
    kind: Kind | str,
    actor: str,
    *,
    dataset: str | None = None,
    purpose: str | None = None,
    epsilon: float | int | str | Decimal | None = None,
    time: datetime | None = None,
    **fields: Any,
) -> Entry:
    """Build an entry; ε becomes a decimal string and the entry is checked for canonical JSON.

    Example: ``make_entry("query", "acme-insights", dataset="riverside/visits",
    purpose="capacity planning", epsilon=0, outcome="refused",
    query_commitment=QueryOpening.fresh(sql).commitment)``.
    """
    try:
        known = Kind(kind)
    except ValueError as error:
        raise InvalidInput(
            f"log entry kind {kind!r} is unknown",
            hint=f"use one of: {', '.join(k.value for k in Kind)}",
        ) from error
    if not actor:
        raise InvalidInput(
            "a log entry needs an actor", hint="pass the account or node name that acted"
        )
    entry = Entry(
        kind=known,
        time=timestamp(time),
        actor=actor,
        dataset=dataset,
        purpose=purpose,
        epsilon=None if epsilon is None else decimal_text(epsilon),
        fields=dict(fields),
    )
    entry.to_bytes()
    return entry
