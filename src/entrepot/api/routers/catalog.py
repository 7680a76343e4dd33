"""The catalog: list, search, show, and the DCAT-3 export (readable by every account).

Every account reads the public metadata (titles, schema with roles, standard, version
numbers and times). The exact content figures — ``rows``, ``rows_rejected``,
``size_bytes``, ``sha256``, ``quality`` — are filled in only for the dataset's
provider and the node's operators; for every other caller they are ``null``, never
zero (see docs/privacy.md, "What anyone can see"). Never a value of an individual row.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from entrepot.api._exchange import exchange_of
from entrepot.api._types import UtcDateTime
from entrepot.api.auth import AnyActor
from entrepot.api.pagination import Page, PageParams, page_of, page_params
from entrepot.exchange.catalog import Catalog, CatalogVersion, DatasetPage, DatasetSummary
from entrepot.exchange.dcat import export_dcat
from entrepot.vault.refs import SLUG_MAX

__all__ = ["DATASET_REF", "SLUG", "VersionOut", "catalog", "router"]

router = APIRouter(prefix="/v1/catalog", tags=["catalog"])

# The server's slug grammar (entrepot.vault.refs): words joined by single hyphens.
SLUG = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
# `<provider>/<dataset>`; each part is also at most SLUG_MAX long, which the server checks.
DATASET_REF = r"^[a-z0-9]+(?:-[a-z0-9]+)*/[a-z0-9]+(?:-[a-z0-9]+)*$"
Paging = Annotated[PageParams, Depends(page_params)]
ProviderSlug = Annotated[
    str, Path(pattern=SLUG, max_length=SLUG_MAX, examples=["riverside-hospitals"])
]
DatasetSlug = Annotated[
    str, Path(pattern=SLUG, max_length=SLUG_MAX, examples=["outpatient-visits"])
]


def catalog(request: Request, actor: AnyActor) -> Catalog:
    """The catalog as the caller sees it: content figures for its own datasets only."""
    return exchange_of(request).catalog(actor)


CatalogDep = Annotated[Catalog, Depends(catalog)]


_OWNER_ONLY = "{}; null unless the caller is the dataset's provider or an operator."


class DatasetOut(BaseModel):
    dataset: str = Field(examples=["riverside-hospitals/outpatient-visits"])
    sql_name: str = Field(examples=["riverside_hospitals.outpatient_visits"])
    title: str
    description: str
    provider: str
    standard: str
    versions: int
    latest_version: int | None
    rows: int | None = Field(description=_OWNER_ONLY.format("Rows of the newest version"))
    updated_at: UtcDateTime
    score: float | None = Field(None, description="Search rank (higher is better).")

    @classmethod
    def of(cls, summary: DatasetSummary) -> DatasetOut:
        return cls.model_validate(summary.to_dict())


class StandardRef(BaseModel):
    name: str
    title: str
    version: str
    privacy_unit: str | None
    primary_key: list[str]


class VersionOut(BaseModel):
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

    @classmethod
    def of(cls, version: CatalogVersion) -> VersionOut:
        return cls.model_validate(version.to_dict())


class DatasetPageOut(BaseModel):
    dataset: str
    sql_name: str
    title: str
    description: str
    provider: str
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

    @classmethod
    def of(cls, page: DatasetPage) -> DatasetPageOut:
        return cls.model_validate(page.to_dict())


@router.get("/datasets", summary="Every dataset in the catalog, by reference.")
def list_datasets(
    domain: CatalogDep,
    paging: Paging,
    provider: Annotated[
        str | None, Query(pattern=SLUG, max_length=SLUG_MAX, description="Only this provider.")
    ] = None,
) -> Page[DatasetOut]:
    return page_of(domain.datasets(provider=provider), paging, DatasetOut.of)


@router.get("/search", summary="Full-text search over titles, descriptions, columns; ranked.")
def search(
    domain: CatalogDep,
    paging: Paging,
    q: Annotated[str, Query(max_length=500, description="Words to find (prefixes match).")],
) -> Page[DatasetOut]:
    # The catalog ranks at most `catalog_max_results` hits; pages are cut from those.
    ranked = domain.search(q, limit=domain.max_results)
    return page_of(ranked, paging, DatasetOut.of)


@router.get("/datasets/{provider}/{dataset}", summary="A dataset's page.")
def show_dataset(
    domain: CatalogDep, provider: ProviderSlug, dataset: DatasetSlug
) -> DatasetPageOut:
    return DatasetPageOut.of(domain.show(f"{provider}/{dataset}"))


@router.get("/dcat", summary="The whole catalog as DCAT-3 JSON-LD.")
def dcat(
    request: Request,
    domain: CatalogDep,
    base_url: Annotated[
        str | None,
        Query(
            max_length=500,
            pattern=r"^https?://[^\s]+$",
            description="Where the node is published, for the document's ids (default: "
            "the URL this request reached).",
        ),
    ] = None,
) -> dict[str, Any]:
    return export_dcat(domain, base_url=base_url or str(request.base_url))
