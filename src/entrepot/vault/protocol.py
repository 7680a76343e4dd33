"""The one seam between the exchange and a provider's data: the :class:`Vault` protocol.

:class:`~entrepot.vault.local.LocalVault` keeps the data in the node's own home; a
remote vault speaks the same protocol over HTTP. Signatures therefore carry only
plain values (references, standards, streams, figures): no database sessions and no
file paths. A vault never hands out rows: it publishes them, describes them with
public figures, and exposes them as a view inside an engine that the privacy layer
controls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, BinaryIO, Protocol, runtime_checkable

from entrepot.engine import Engine
from entrepot.standards.mapping import Mapping
from entrepot.standards.schema import Standard
from entrepot.vault.refs import DatasetRef

__all__ = [
    "AttachedView",
    "OnError",
    "Progress",
    "PublishRequest",
    "Published",
    "Vault",
    "VersionInfo",
]

# Called as progress(step, done, total) while a publish runs; total 0 means unknown.
Progress = Callable[[str, int, int], None]


class OnError(StrEnum):
    """What a publish does with rows that break the standard."""

    REJECT = "reject"  # publish nothing, report why
    QUARANTINE = "quarantine"  # publish the valid rows, keep the others with reasons


@dataclass(frozen=True)
class PublishRequest:
    """Everything a publish needs besides the raw bytes."""

    provider: str
    standard: Standard
    title: str
    dataset: str | None = None  # default: the title, slugified, without a trailing year
    description: str = ""
    mapping: Mapping | None = None  # how the provider's local format becomes the standard
    mapping_text: str | None = None  # the mapping as written, kept with the version
    on_error: OnError = OnError.REJECT
    filename: str = "upload.csv"  # names the source in reports; its suffix tells the format
    # Called with the dataset and its count of valid rows once validated, before anything
    # is written; raising refuses the publish (the exchange checks its policy's δ here).
    admit: Callable[[DatasetRef, int], None] | None = None


@dataclass(frozen=True)
class VersionInfo:
    """One published version, described by figures a provider would show publicly."""

    ref: DatasetRef
    number: int
    title: str
    sha256: str
    size_bytes: int
    rows: int
    rows_rejected: int
    standard: str
    standard_version: str
    created_at: datetime
    quality: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": str(self.ref),
            "version": self.number,
            "title": self.title,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "rows": self.rows,
            "rows_rejected": self.rows_rejected,
            "standard": self.standard,
            "standard_version": self.standard_version,
            "created_at": self.created_at.isoformat(),
            "quality": self.quality,
        }


@dataclass(frozen=True)
class Published:
    """The outcome of a publish: the new version and, for its provider, the full report."""

    version: VersionInfo
    report: dict[str, Any]
    rows_total: int
    quarantined: int

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.version.to_dict(),
            "rows_total": self.rows_total,
            "quarantined": self.quarantined,
            "report": self.report,
        }


@dataclass(frozen=True)
class AttachedView:
    """A version exposed read-only inside an engine: what the privacy layer needs."""

    view: str
    ref: DatasetRef
    standard: Standard
    version: int
    sha256: str
    rows: int


@runtime_checkable
class Vault(Protocol):
    """Publish, list and attach dataset versions; never return rows."""

    def publish(
        self, request: PublishRequest, data: BinaryIO, *, progress: Progress | None = None
    ) -> Published:
        """Validate ``data`` and add it as the dataset's next immutable version."""
        ...

    def versions(self, ref: DatasetRef | str) -> list[VersionInfo]:
        """The dataset's versions, oldest first."""
        ...

    def attach(
        self, engine: Engine, ref: DatasetRef | str, *, version: int | None = None
    ) -> AttachedView:
        """Register a version (default: the newest) as a read-only view in ``engine``."""
        ...
