"""The vault's tables as SQLAlchemy Core tables: providers, datasets, their regions
and versions.

Declared apart from their mapped classes (:mod:`entrepot.vault.models`, built on
these tables) so that a read of the catalog runs on Core, without loading the ORM.
"""

from __future__ import annotations

import secrets

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from entrepot.clock import utcnow
from entrepot.db import METADATA

__all__ = ["dataset_regions", "datasets", "providers", "versions"]

providers = Table(
    "providers",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("slug", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("created_at", DateTime, nullable=False, default=utcnow),
)

datasets = Table(
    "datasets",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("provider_id", Integer, ForeignKey("providers.id"), nullable=False, index=True),
    Column("slug", String(64), nullable=False),
    Column("title", String(300), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("standard", String(200), nullable=False),
    # The standard's Table Schema document, so the catalog can show the schema (and
    # search its column names) even for a standard given as a file.
    Column("schema", JSON, nullable=False),
    Column("created_at", DateTime, nullable=False, default=utcnow),
    Column("updated_at", DateTime, nullable=False, default=utcnow),
    # Its sector of activity, a code of the `sector` list, as the provider declared it
    # at publish (NULL: not declared); see entrepot.standards.scope.
    Column("sector", String(16), nullable=True, index=True),
    UniqueConstraint("provider_id", "slug"),
)

# A region a dataset covers, as its provider declared it at publish: a code of a
# region code list (see entrepot.standards.scope), in the order given.
dataset_regions = Table(
    "dataset_regions",
    METADATA,
    Column("dataset_id", Integer, ForeignKey("datasets.id"), primary_key=True),
    Column("code", String(16), primary_key=True, index=True),
    Column("position", Integer, nullable=False),
)

versions = Table(
    "versions",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("dataset_id", Integer, ForeignKey("datasets.id"), nullable=False, index=True),
    Column("number", Integer, nullable=False),
    Column("title", String(300), nullable=False, default=""),
    # Relative to the node's home, so a home can be moved or backed up as a whole.
    Column("path", String(500), nullable=False),
    Column("sha256", String(64), nullable=False),
    # The secret key of the version's public content commitment (HMAC-SHA256 of
    # ``sha256``): receipts and the log show the commitment, which a rebuilt candidate
    # file cannot confirm; only the provider reveals the key, to an auditor it chooses.
    Column(
        "commitment_key",
        LargeBinary(32),
        nullable=False,
        default=lambda: secrets.token_bytes(32),
    ),
    Column("size_bytes", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("rows_rejected", BigInteger, nullable=False, default=0),
    Column("quarantine_path", String(500), nullable=True),
    Column("standard_version", String(50), nullable=False, default=""),
    Column("mapping", Text, nullable=True),
    Column("report", JSON, nullable=False),
    Column("quality", JSON, nullable=False),
    Column("created_at", DateTime, nullable=False, default=utcnow),
    # The rows-per-unit bound released with differential privacy at publish (NULL:
    # none) and the quantile level of rows per unit it estimates (NULL without a
    # bound), the nano-ε it and the rows it keeps and removes spent
    # of the dataset's global cap, and those rows with the Laplace scale of each one's
    # noise (NULL: not released).
    Column("unit_bound", Integer, nullable=True),
    Column("unit_level", Float, nullable=True),
    Column("bound_epsilon_nano", BigInteger, nullable=False, default=0, server_default="0"),
    Column("unit_kept", Float, nullable=True),
    Column("unit_removed", Float, nullable=True),
    Column("unit_removed_scale", Float, nullable=True),
    UniqueConstraint("dataset_id", "number"),
)
