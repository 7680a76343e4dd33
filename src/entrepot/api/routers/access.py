"""Access contracts: consumers request, providers grant or refuse, grants are revoked.

Every call goes through :class:`~entrepot.exchange.contracts.Contracts` with the
token's actor, which scopes what each party sees: a consumer its own requests and
grants, a provider those for its own datasets. Anything else is a 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.responses import JSONResponse

from entrepot.api.auth import AnyActor, Consumer, Provider
from entrepot.api.openapi import operation_id
from entrepot.api.pagination import Page, PageParams, page_of, page_params
from entrepot.api.routers._client import client_of
from entrepot.client.local import BASE_URL_PATTERN
from entrepot.schemas.access import (
    GrantCreate,
    GrantOut,
    PurposeOut,
    Reason,
    RemoteContractOut,
    RequestCreate,
    RequestOut,
)
from entrepot.schemas.paging import page_body

__all__ = ["router"]

router = APIRouter(prefix="/v1/access", tags=["access"], generate_unique_id_function=operation_id)

Paging = Annotated[PageParams, Depends(page_params)]


def _contract_id(prefix: str, example: int) -> Any:
    """A contract id in a path: the pattern documents it; the contracts' service reads
    it and words a refusal."""
    return Path(
        max_length=100,
        description=f"`{prefix}-{example}` or `{example}`.",
        examples=[f"{prefix}-{example}"],
        json_schema_extra={"pattern": rf"^({prefix}-)?[0-9]{{1,12}}$"},
    )


RequestId = Annotated[str, _contract_id("REQ", 7)]
GrantId = Annotated[str, _contract_id("GRANT", 3)]


@router.get("/purposes", summary="The purpose vocabulary requests choose from.")
def list_purposes(request: Request, actor: AnyActor, paging: Paging) -> Page[PurposeOut]:
    """Each purpose with its label, its broader purpose and its DPV term; a grant for a
    purpose covers its narrower ones."""
    body = client_of(request, actor).purposes_page(paging.limit, paging.offset)
    return page_of(body, PurposeOut.model_validate)


@router.post(
    "/requests",
    status_code=status.HTTP_201_CREATED,
    summary="Request access to a dataset for a purpose (consumer).",
)
def request_access(request: Request, actor: Consumer, body: RequestCreate) -> RequestOut:
    """The request names the dataset, the purpose, the ε asked for and the period; the
    dataset's provider then grants or refuses it."""
    created = client_of(request, actor).request_access(
        body.dataset,
        purpose=body.purpose,
        epsilon=body.epsilon,
        until=body.until,
        since=body.since,
        actions=body.actions,
        note=body.note,
    )
    return RequestOut.model_validate(created)


@router.get("/requests", summary="Your requests, or those for your datasets (a provider's inbox).")
def list_requests(
    request: Request,
    actor: AnyActor,
    paging: Paging,
    pending: Annotated[bool, Query(description="Only requests waiting for a decision.")] = False,
) -> Page[RequestOut]:
    """Requests oldest first, each with its state; a consumer sees its own, a provider
    those for its datasets, an operator all."""
    client = client_of(request, actor)
    return page_of(
        client.access_requests_page(pending, paging.limit, paging.offset),
        RequestOut.model_validate,
    )


@router.get("/requests/{request_id}", summary="One request with its history.")
def show_request(request: Request, actor: AnyActor, request_id: RequestId) -> RequestOut:
    """The request and every change of its state, with who made it and when."""
    return RequestOut.model_validate(client_of(request, actor).access_show(_request(request_id)))


@router.post(
    "/requests/{request_id}/grant",
    status_code=status.HTTP_201_CREATED,
    summary="Grant a pending request: the contract (the dataset's provider).",
)
def grant_request(
    request: Request, actor: Provider, request_id: RequestId, body: GrantCreate
) -> GrantOut:
    """The grant opens a budget of ε for the consumer, with its actions, duties, prices
    and end date; an ODRL agreement describes it."""
    granted = client_of(request, actor).grant_access(
        request_id,
        epsilon=body.epsilon,
        max_queries=body.max_queries,
        price_per_query=body.price_per_query,
        price_per_epsilon=body.price_per_epsilon,
        actions=body.actions,
        until=body.until,
        duties=body.duties,
    )
    return GrantOut.model_validate(granted)


@router.post("/requests/{request_id}/refuse", summary="Refuse a pending request (its provider).")
def refuse_request(
    request: Request, actor: Provider, request_id: RequestId, body: Reason
) -> RequestOut:
    """The reason is shown to the consumer."""
    refused = client_of(request, actor).refuse_access(request_id, body.reason)
    return RequestOut.model_validate(refused)


@router.get("/grants", summary="Your grants, or those for your datasets.")
def list_grants(
    request: Request,
    actor: AnyActor,
    paging: Paging,
    active: Annotated[bool, Query(description="Only grants in force.")] = False,
) -> Page[GrantOut]:
    """Grants oldest first, each with its state, ε and end date; a consumer sees its own,
    a provider those on its datasets, an operator all."""
    client = client_of(request, actor)
    return page_of(
        client.access_grants_page(active, paging.limit, paging.offset),
        GrantOut.model_validate,
    )


@router.get("/remote", summary="Your requests and grants on other nodes, each marked by its node.")
def list_remote(request: Request, actor: AnyActor, paging: Paging) -> Page[RemoteContractOut]:
    """Read-only copies, refreshed from each node you asked (`fresh`), or as last read
    from a node that cannot be reached; each grant is enforced on its own node only."""
    found = client_of(request, actor).access_remote()
    body = page_body(found[paging.offset :], len(found), paging.limit, paging.offset)
    return page_of(body, RemoteContractOut.model_validate)


@router.get("/grants/{grant_id}", summary="One grant with its history.")
def show_grant(request: Request, actor: AnyActor, grant_id: GrantId) -> GrantOut:
    """The grant and every change of its state, with who made it and when."""
    return GrantOut.model_validate(client_of(request, actor).access_show(_grant(grant_id)))


@router.get(
    "/grants/{grant_id}/odrl",
    summary="A grant as an ODRL 2.2 Agreement (JSON-LD).",
    responses={200: {"content": {"application/ld+json": {"schema": {"type": "object"}}}}},
)
def export_grant_odrl(
    request: Request,
    actor: AnyActor,
    grant_id: GrantId,
    base_url: Annotated[
        str | None,
        Query(
            max_length=500,
            json_schema_extra={"pattern": BASE_URL_PATTERN},
            description="Where the node is published, for the document's ids, as in "
            "`/v1/catalog/dcat` (default: the node's public_url setting, else the URL this "
            "request reached).",
        ),
    ] = None,
) -> JSONResponse:
    """Its target is the dataset's DCAT id, its assigner the provider, its assignee the
    consumer; constraints carry the purpose, the period and the ε."""
    published = request.app.state.node.settings.public_url or str(request.base_url)
    document = client_of(request, actor).grant_odrl(
        grant_id, published if base_url is None else base_url
    )
    return JSONResponse(document, media_type="application/ld+json")


@router.post("/grants/{grant_id}/revoke", summary="Revoke a grant now (its provider, an operator).")
def revoke_grant(request: Request, actor: AnyActor, grant_id: GrantId, body: Reason) -> GrantOut:
    """Its budget closes at once: no query spends from it after this answer."""
    revoked = client_of(request, actor).revoke_grant(grant_id, body.reason)
    return GrantOut.model_validate(revoked)


def _request(ident: str) -> str:
    """A request's id as given, for the service to read: one it would read as a grant's
    is made a request's, which the service refuses."""
    return f"REQ-{ident}" if ident.strip().upper().startswith("GRANT") else ident


def _grant(ident: str) -> str:
    """A grant's id as given, ``GRANT-`` put before it where it would read as a request's."""
    return ident if ident.strip().upper().startswith("GRANT") else f"GRANT-{ident}"
