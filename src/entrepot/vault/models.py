"""Metadata of a node's vaults: providers, their datasets and immutable versions.

A version row is written in the same transaction that makes its Parquet file
visible under its final name, so a committed row always names a complete file
(see :mod:`entrepot.vault.publish`). The classes are mapped on the Core tables of
:mod:`entrepot.vault.tables`, which a read that needs no ORM uses directly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Mapped, relationship

from entrepot.db import Base
from entrepot.vault import tables

__all__ = ["Dataset", "DatasetRegion", "Provider", "Version"]


class Provider(Base):
    """The vault's row of an organization that holds data on this node and publishes it.

    Its :class:`~entrepot.organizations.Organization` references it and is written in
    the same transaction (see :func:`entrepot.vault.providers.add_provider`).
    """

    __table__ = tables.providers

    id: Mapped[int]
    slug: Mapped[str]
    name: Mapped[str]
    created_at: Mapped[datetime]

    datasets: Mapped[list[Dataset]] = relationship(back_populates="provider")


class Dataset(Base):
    """A named series of versions that all follow one standard."""

    __table__ = tables.datasets

    id: Mapped[int]
    provider_id: Mapped[int]
    slug: Mapped[str]
    title: Mapped[str]
    description: Mapped[str]
    standard: Mapped[str]
    schema: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    sector: Mapped[str | None]

    provider: Mapped[Provider] = relationship(back_populates="datasets")
    versions: Mapped[list[Version]] = relationship(
        back_populates="dataset", order_by="Version.number"
    )
    regions: Mapped[list[DatasetRegion]] = relationship(
        back_populates="dataset", order_by="DatasetRegion.position", cascade="all, delete-orphan"
    )

    @property
    def region_codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.regions)

    @property
    def ref(self) -> str:
        return f"{self.provider.slug}/{self.slug}"


class DatasetRegion(Base):
    """A region a dataset covers, as its provider declared it at publish."""

    __table__ = tables.dataset_regions

    dataset_id: Mapped[int]
    code: Mapped[str]
    position: Mapped[int]

    dataset: Mapped[Dataset] = relationship(back_populates="regions")


class Version(Base):
    """One immutable, published version of a dataset: a Parquet file and its figures."""

    __table__ = tables.versions

    id: Mapped[int]
    dataset_id: Mapped[int]
    number: Mapped[int]
    title: Mapped[str]
    path: Mapped[str]
    sha256: Mapped[str]
    commitment_key: Mapped[bytes]
    size_bytes: Mapped[int]
    rows: Mapped[int]
    rows_rejected: Mapped[int]
    quarantine_path: Mapped[str | None]
    standard_version: Mapped[str]
    mapping: Mapped[str | None]
    report: Mapped[dict[str, Any]]
    quality: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    unit_bound: Mapped[int | None]
    unit_level: Mapped[float | None]
    bound_epsilon_nano: Mapped[int]
    unit_kept: Mapped[float | None]
    unit_removed: Mapped[float | None]
    unit_removed_scale: Mapped[float | None]

    dataset: Mapped[Dataset] = relationship(back_populates="versions")
