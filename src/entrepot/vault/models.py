"""Metadata of a node's vaults: providers, their datasets and immutable versions.

A version row is written in the same transaction that makes its Parquet file
visible under its final name, so a committed row always names a complete file
(see :mod:`entrepot.vault.publish`).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from entrepot.clock import utcnow
from entrepot.db import Base

__all__ = ["Dataset", "DatasetRegion", "Provider", "Version"]


class Provider(Base):
    """The vault's row of an organization that holds data on this node and publishes it.

    Its :class:`~entrepot.organizations.Organization` references it and is written in
    the same transaction (see :func:`entrepot.vault.providers.add_provider`).
    """

    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    datasets: Mapped[list[Dataset]] = relationship(back_populates="provider")


class Dataset(Base):
    """A named series of versions that all follow one standard."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("provider_id", "slug"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    slug: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    standard: Mapped[str] = mapped_column(String(200))
    # The standard's Table Schema document, so the catalog can show the schema (and
    # search its column names) even for a standard given as a file.
    schema: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Its sector of activity, a code of the `sector` list, as the provider declared it
    # at publish (NULL: not declared); see entrepot.standards.scope.
    sector: Mapped[str | None] = mapped_column(String(16), index=True)

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
    """A region a dataset covers, as its provider declared it at publish: a code of a
    region code list (see entrepot.standards.scope), in the order given."""

    __tablename__ = "dataset_regions"

    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), primary_key=True)
    code: Mapped[str] = mapped_column(String(16), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer)

    dataset: Mapped[Dataset] = relationship(back_populates="regions")


class Version(Base):
    """One immutable, published version of a dataset: a Parquet file and its figures."""

    __tablename__ = "versions"
    __table_args__ = (UniqueConstraint("dataset_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300), default="")
    # Relative to the node's home, so a home can be moved or backed up as a whole.
    path: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    # The secret key of the version's public content commitment (HMAC-SHA256 of
    # ``sha256``): receipts and the log show the commitment, which a rebuilt candidate
    # file cannot confirm; only the provider reveals the key, to an auditor it chooses.
    commitment_key: Mapped[bytes] = mapped_column(
        LargeBinary(32), default=lambda: secrets.token_bytes(32)
    )
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(BigInteger)
    rows_rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    quarantine_path: Mapped[str | None] = mapped_column(String(500), nullable=True)
    standard_version: Mapped[str] = mapped_column(String(50), default="")
    mapping: Mapped[str | None] = mapped_column(Text, nullable=True)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    quality: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # The rows-per-unit bound released with differential privacy at publish (NULL:
    # none), and the nano-ε it spent of the dataset's global cap.
    unit_bound: Mapped[int | None] = mapped_column(Integer, nullable=True)
    bound_epsilon_nano: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    dataset: Mapped[Dataset] = relationship(back_populates="versions")
