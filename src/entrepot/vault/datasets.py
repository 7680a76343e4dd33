"""A dataset's row found by its reference, and its versions' public descriptions."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, contains_eager, selectinload

from entrepot.clock import as_utc
from entrepot.errors import NotFound
from entrepot.vault.models import Dataset, Provider, Version
from entrepot.vault.protocol import VersionInfo
from entrepot.vault.refs import DatasetRef

__all__ = ["dataset_not_found", "find_dataset", "version_info"]


def dataset_not_found(ref: DatasetRef | str) -> NotFound:
    """The one refusal for a dataset that is not here, or not the asker's to see."""
    return NotFound(
        f"no dataset {ref} in the catalog",
        hint='find datasets with `entrepot catalog search "..."` or `entrepot catalog list`',
    )


def find_dataset(session: Session, ref: DatasetRef | str, *, versions: bool = False) -> Dataset:
    """The dataset ``ref`` names, its provider loaded (and its ``versions``, if asked)."""
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


# Nano-ε per ε, as the budget ledger counts it.
_NANO = 10**9


def version_info(dataset: Dataset, version: Version) -> VersionInfo:
    """The public description of ``version`` (its provider must be loaded)."""
    return VersionInfo(
        ref=DatasetRef(dataset.provider.slug, dataset.slug),
        number=version.number,
        title=version.title,
        sha256=version.sha256,
        size_bytes=version.size_bytes,
        rows=version.rows,
        rows_rejected=version.rows_rejected,
        standard=dataset.standard,
        standard_version=version.standard_version,
        created_at=as_utc(version.created_at),
        quality=version.quality,
        unit_bound=version.unit_bound,
        bound_epsilon=version.bound_epsilon_nano / _NANO,
    )
