"""The catalog's wire shapes: datasets, versions, a dataset's page; the slug grammar."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from entrepot.schemas._types import UtcDateTime

if TYPE_CHECKING:
    from entrepot.exchange.catalog import DatasetSummary

__all__ = [
    "DATASET_REF",
    "NODE_DATASET_REF",
    "SLUG",
    "DatasetOut",
    "DatasetPageOut",
    "StandardRef",
    "TermOut",
    "VersionOut",
]


# The server's slug grammar (entrepot.vault.refs): words joined by single hyphens.
SLUG = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"


# `<provider>/<dataset>`; each part is also at most SLUG_MAX long, which the server checks.
DATASET_REF = r"^[a-z0-9]+(?:-[a-z0-9]+)*/[a-z0-9]+(?:-[a-z0-9]+)*$"
# A dataset of this node, or of a peer as <node>:<provider>/<dataset>.
NODE_DATASET_REF = (
    r"^(?:[a-z0-9]+(?:-[a-z0-9]+)*:)?[a-z0-9]+(?:-[a-z0-9]+)*/[a-z0-9]+(?:-[a-z0-9]+)*$"
)


_OWNER_ONLY = "{}; null unless the caller is the dataset's provider or an operator."

# A dataset's page and its versions are validated on first use, not when the module is
# imported: listing the catalog validates only DatasetOut.
_ON_FIRST_USE = ConfigDict(defer_build=True)


class TermOut(BaseModel):
    """A code of a shipped code list, with its label."""

    code: str = Field(examples=["910000"])
    label: str = Field(examples=["Lanshan Province"])
    codelist: str = Field(examples=["region.province"])


_REGIONS = (
    "The regions the dataset covers, as its provider declared them at publish "
    "(codes of region.province, region.city or region.district); empty if none."
)
_SECTOR = "Its sector of activity (a code of the sector list), as declared; null if none."


class DatasetOut(BaseModel):
    dataset: str = Field(examples=["riverside-hospitals/outpatient-visits"])
    sql_name: str = Field(examples=["riverside_hospitals.outpatient_visits"])
    title: str
    description: str
    provider: str
    standard: str
    regions: list[TermOut] = Field(default_factory=list, description=_REGIONS)
    sector: TermOut | None = Field(default=None, description=_SECTOR)
    versions: int
    latest_version: int | None
    rows: int | None = Field(description=_OWNER_ONLY.format("Rows of the newest version"))
    updated_at: UtcDateTime
    score: float | None = Field(None, description="Search rank (higher is better).")
    node: str | None = Field(
        None,
        description="In a federated search: the node that offers the dataset "
        "(query it as `<node>.<sql_name>`).",
    )

    @classmethod
    def of(cls, summary: DatasetSummary) -> DatasetOut:
        return cls.model_validate(summary.to_dict())


class StandardRef(BaseModel):
    model_config = _ON_FIRST_USE

    name: str
    title: str
    version: str
    privacy_unit: str | None
    primary_key: list[str]


class VersionOut(BaseModel):
    model_config = _ON_FIRST_USE

    dataset: str
    version: int
    title: str
    sha256: str | None = Field(
        description=_OWNER_ONLY.format("SHA-256 of the version's Parquet file")
    )
    size_bytes: int | None = Field(description=_OWNER_ONLY.format("Size of the file in bytes"))
    rows: int | None = Field(description=_OWNER_ONLY.format("Rows published"))
    rows_rejected: int | None = Field(
        description=_OWNER_ONLY.format("Rows refused by the validation")
    )
    standard: str
    standard_version: str
    created_at: UtcDateTime
    quality: dict[str, Any] | None = Field(
        description=_OWNER_ONLY.format("Completeness per column and validation counts")
    )
    unit_bound: int | None = Field(
        default=None,
        description="Rows per privacy unit at the quantile `unit_level`, released with "
        "differential privacy at publish; null when none was estimated",
    )
    unit_level: float | None = Field(
        default=None,
        description="The quantile of rows per unit `unit_bound` estimates: 0.95 where "
        "the data has units enough to resolve it, lower where it has not (chosen by a "
        "noisy count of units); null when none was estimated",
    )
    bound_epsilon: float = Field(
        default=0.0,
        description="The ε that estimate and the rows it keeps and removes spent of the "
        "dataset's global cap",
    )
    unit_kept: float | None = Field(
        default=None,
        description=_OWNER_ONLY.format(
            "Rows the bound keeps, released with differential privacy at publish"
        ),
    )
    unit_removed: float | None = Field(
        default=None,
        description=_OWNER_ONLY.format(
            "Rows the bound removes (each unit's up to 3 times the bound), released with "
            "differential privacy at publish"
        ),
    )
    unit_removed_scale: float | None = Field(
        default=None,
        description=_OWNER_ONLY.format("The Laplace scale of each of those two counts' noise"),
    )


class DatasetPageOut(BaseModel):
    model_config = _ON_FIRST_USE

    dataset: str
    sql_name: str
    title: str
    description: str
    provider: str
    regions: list[TermOut] = Field(default_factory=list, description=_REGIONS)
    sector: TermOut | None = Field(default=None, description=_SECTOR)
    versions: list[VersionOut]
    latest_version: int | None
    rows: int | None = Field(description=_OWNER_ONLY.format("Rows of the newest version"))
    updated_at: UtcDateTime
    created_at: UtcDateTime
    standard: StandardRef
    schema_: list[dict[str, Any]] = Field(alias="schema", serialization_alias="schema")
    quality: dict[str, Any] | None = Field(
        description=_OWNER_ONLY.format("The newest version's quality figures")
    )
