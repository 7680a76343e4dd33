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
from pydantic import Field

from entrepot.api.auth import AnyActor
from entrepot.api.openapi import operation_id
from entrepot.api.pagination import Page, PageParams, page_of, page_params
from entrepot.api.routers._client import client_of
from entrepot.client.local import BASE_URL_PATTERN
from entrepot.schemas.catalog import (
    SLUG,
    DatasetOut,
    DatasetPageOut,
)
from entrepot.schemas.paging import page_body
from entrepot.vault.refs import SLUG_MAX

__all__ = ["DatasetSlug", "ProviderSlug", "router"]

router = APIRouter(prefix="/v1/catalog", tags=["catalog"], generate_unique_id_function=operation_id)

Paging = Annotated[PageParams, Depends(page_params)]
ProviderSlug = Annotated[
    str, Path(pattern=SLUG, max_length=SLUG_MAX, examples=["riverside-hospitals"])
]
DatasetSlug = Annotated[
    str, Path(pattern=SLUG, max_length=SLUG_MAX, examples=["outpatient-visits"])
]


# The facets every list of the catalog takes: each repeated for several values, any of
# which matches; all facets given must match.
_CODE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,15}$"
ProviderFacet = Annotated[
    list[Annotated[str, Field(pattern=SLUG, max_length=SLUG_MAX)]] | None,
    Query(description="Only these providers (slugs); repeat for several."),
]
StandardFacet = Annotated[
    list[Annotated[str, Field(max_length=200)]] | None,
    Query(description="Only these standards (names); repeat for several."),
]
RegionFacet = Annotated[
    list[Annotated[str, Field(pattern=_CODE)]] | None,
    Query(
        description="Only datasets covering one of these regions (codes of region.province, "
        "region.city or region.district, matched exactly); repeat for several.",
        examples=["910000"],
    ),
]
SectorFacet = Annotated[
    list[Annotated[str, Field(pattern=_CODE)]] | None,
    Query(
        description="Only datasets of one of these sectors (codes of the sector list); "
        "repeat for several.",
        examples=["Q"],
    ),
]


@router.get("/datasets", summary="Every dataset in the catalog, by reference.")
def list_datasets(
    request: Request,
    actor: AnyActor,
    paging: Paging,
    provider: ProviderFacet = None,
    standard: StandardFacet = None,
    region: RegionFacet = None,
    sector: SectorFacet = None,
) -> Page[DatasetOut]:
    """Datasets by `provider/dataset` reference, with title, standard, regions, sector and
    latest version; content figures only for the dataset's provider and operators."""
    body = client_of(request, actor).catalog_datasets_page(
        provider or (),
        paging.limit,
        paging.offset,
        standard=standard or (),
        region=region or (),
        sector=sector or (),
    )
    return page_of(body, DatasetOut.model_validate)


@router.get("/search", summary="Full-text search over titles, descriptions, columns; ranked.")
def search_catalog(
    request: Request,
    actor: AnyActor,
    paging: Paging,
    q: Annotated[
        str,
        Query(max_length=500, description="Words to find (prefixes match).", examples=["visit"]),
    ],
    provider: ProviderFacet = None,
    standard: StandardFacet = None,
    region: RegionFacet = None,
    sector: SectorFacet = None,
) -> Page[DatasetOut]:
    """Every word must match, as a prefix, within the facets given; hits come best first
    with their `score`. The catalog ranks at most `catalog_max_results` hits, and pages
    are cut from those."""
    body = client_of(request, actor).catalog_search_page(
        q,
        paging.limit,
        paging.offset,
        provider=provider or (),
        standard=standard or (),
        region=region or (),
        sector=sector or (),
    )
    return page_of(body, DatasetOut.model_validate)


@router.get(
    "/federated",
    summary="Search this node's catalog and every trusted peer's, each result marked by node.",
)
def search_federated(
    request: Request,
    actor: AnyActor,
    paging: Paging,
    q: Annotated[
        str,
        Query(max_length=500, description="Words to find (prefixes match).", examples=["visit"]),
    ],
    provider: ProviderFacet = None,
    standard: StandardFacet = None,
    region: RegionFacet = None,
    sector: SectorFacet = None,
) -> Page[DatasetOut]:
    """The node pulls each peer's signed catalog feed first; a peer that cannot be
    reached keeps its last copy. Results carry `node`: query them as `<node>.<sql_name>`.
    The facets keep this node's datasets and the peers' by the same rule as a search.
    One search finds at most `offset` + `limit` datasets; the page is the last `limit`."""
    found = client_of(request, actor).catalog_search_federated(
        q,
        paging.offset + paging.limit,
        provider=provider or (),
        standard=standard or (),
        region=region or (),
        sector=sector or (),
    )
    body = page_body(found[paging.offset :], len(found), paging.limit, paging.offset)
    return page_of(body, DatasetOut.model_validate)


@router.get("/datasets/{provider}/{dataset}", summary="A dataset's page.")
def show_dataset(
    request: Request, actor: AnyActor, provider: ProviderSlug, dataset: DatasetSlug
) -> DatasetPageOut:
    """Its summary, standard (columns with roles and bounds) and versions."""
    page = client_of(request, actor).catalog_show(f"{provider}/{dataset}")
    return DatasetPageOut.model_validate(page)


@router.get("/dcat", summary="The whole catalog as DCAT-3 JSON-LD.")
def export_dcat(
    request: Request,
    actor: AnyActor,
    base_url: Annotated[
        str | None,
        Query(
            max_length=500,
            json_schema_extra={"pattern": BASE_URL_PATTERN},
            description="Where the node is published, for the document's ids (default: "
            "the node's public_url setting, else the URL this request reached).",
        ),
    ] = None,
) -> dict[str, Any]:
    """Each dataset as a `dcat:Dataset` served by a query data service (never a download),
    with licence and access rights; the ids are routes of this server."""
    published = request.app.state.node.settings.public_url or str(request.base_url)
    return client_of(request, actor).catalog_dcat(published if base_url is None else base_url)
