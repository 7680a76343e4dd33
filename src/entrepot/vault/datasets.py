"""A dataset's row found by its reference, and its versions' public descriptions.

Its mapped classes load with :func:`find_dataset`: the catalog reads a dataset's page
with Core and describes its versions here, without the ORM or the vault's protocol
(which names :class:`VersionInfo` in its signatures).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from entrepot.clock import as_utc
from entrepot.errors import NotFound
from entrepot.vault.refs import DatasetRef

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

    from entrepot.vault.models import Dataset, Version

__all__ = [
    "VersionInfo",
    "dataset_not_found",
    "dataset_ref",
    "describe_version",
    "find_dataset",
    "version_info",
]


def dataset_not_found(ref: DatasetRef | str) -> NotFound:
    """The one refusal for a dataset that is not here, or not the asker's to see."""
    return NotFound(
        f"no dataset {ref} in the catalog",
        hint='find datasets with `entrepot catalog search "..."` or `entrepot catalog list`',
    )


def find_dataset(session: Session, ref: DatasetRef | str, *, versions: bool = False) -> Dataset:
    """The dataset ``ref`` names, its provider loaded (and its ``versions``, if asked)."""
    from sqlalchemy import select
    from sqlalchemy.orm import contains_eager, selectinload

    from entrepot.vault.models import Dataset, Provider

    ref = DatasetRef.parse(ref) if isinstance(ref, str) else ref
    query = (
        select(Dataset)
        .join(Dataset.provider)
        .where(Provider.slug == ref.provider, Dataset.slug == ref.dataset)
        .options(contains_eager(Dataset.provider))
    )
    if versions:
        query = query.options(selectinload(Dataset.versions))
    dataset = session.scalar(query)
    if dataset is None:
        raise dataset_not_found(ref)
    return dataset


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
    # The rows-per-unit bound estimated at publish and the quantile level of rows per
    # unit it estimates, the ε spent on it and on the rows it keeps and removes (None
    # and 0 without one), and those rows: noisy counts and the Laplace scale of each
    # one's noise (None and 0 where not released).
    unit_bound: int | None = None
    unit_level: float | None = None
    bound_epsilon: float = 0.0
    unit_kept: float | None = None
    unit_removed: float | None = None
    unit_removed_scale: float = 0.0

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
            "unit_bound": self.unit_bound,
            "unit_level": self.unit_level,
            "bound_epsilon": self.bound_epsilon,
            "unit_kept": self.unit_kept,
            "unit_removed": self.unit_removed,
            "unit_removed_scale": self.unit_removed_scale,
        }


def dataset_ref(session: Session | Connection, dataset_id: int) -> tuple[str, str]:
    """The ``provider/dataset`` reference of ``dataset_id`` and its provider's slug, read
    from the vault's Core tables; two empty strings for a dataset that is not here."""
    from sqlalchemy import select

    from entrepot.vault.tables import datasets, providers

    found = session.execute(
        select(providers.c.slug, datasets.c.slug)
        .join(datasets, datasets.c.provider_id == providers.c.id)
        .where(datasets.c.id == dataset_id)
    ).first()
    return ("", "") if found is None else (f"{found[0]}/{found[1]}", found[0])


# Nano-ε per ε, as the budget ledger counts it.
_NANO = 10**9


def version_info(dataset: Dataset, version: Version) -> VersionInfo:
    """The public description of ``version`` (its provider must be loaded)."""
    return describe_version(
        DatasetRef(dataset.provider.slug, dataset.slug), dataset.standard, version
    )


def describe_version(ref: DatasetRef, standard: str, version: Any) -> VersionInfo:
    """The public description of ``version`` of dataset ``ref`` (which follows
    ``standard``): a mapped version, or a row of the versions table with its columns."""
    return VersionInfo(
        ref=ref,
        number=version.number,
        title=version.title,
        sha256=version.sha256,
        size_bytes=version.size_bytes,
        rows=version.rows,
        rows_rejected=version.rows_rejected,
        standard=standard,
        standard_version=version.standard_version,
        created_at=as_utc(version.created_at),
        quality=version.quality,
        unit_bound=version.unit_bound,
        unit_level=version.unit_level,
        bound_epsilon=version.bound_epsilon_nano / _NANO,
        unit_kept=version.unit_kept,
        unit_removed=version.unit_removed,
        unit_removed_scale=version.unit_removed_scale or 0.0,
    )
