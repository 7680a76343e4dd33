"""Access contracts: consumers request, providers grant or refuse, grants are revoked.

Every call goes through :class:`~entrepot.exchange.contracts.Contracts` with the
token's actor, which scopes what each party sees: a consumer its own requests and
grants, a provider those for its own datasets. Anything else is a 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.responses import JSONResponse

from entrepot.api._exchange import exchange_of
from entrepot.api.auth import AnyActor, Consumer, Provider
from entrepot.api.pagination import Page, PageParams, page_of, page_params
from entrepot.exchange.contracts import Contracts, GrantInfo, RequestInfo, purposes
from entrepot.exchange.odrl import agreement
from entrepot.schemas.access import (
    GrantCreate,
    GrantOut,
    PurposeOut,
    Reason,
    RequestCreate,
    RequestOut,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1/access", tags=["access"])

Paging = Annotated[PageParams, Depends(page_params)]
RequestId = Annotated[
    str, Path(pattern=r"^(REQ-)?[0-9]{1,12}$", description="`REQ-7` or `7`.", examples=["REQ-7"])
]
GrantId = Annotated[
    str,
    Path(pattern=r"^(GRANT-)?[0-9]{1,12}$", description="`GRANT-3` or `3`.", examples=["GRANT-3"]),
]


def contracts(request: Request) -> Contracts:
    return exchange_of(request).contracts


ContractsDep = Annotated[Contracts, Depends(contracts)]


@router.get("/purposes", summary="The purpose vocabulary requests choose from.")
def list_purposes(_actor: AnyActor) -> list[PurposeOut]:
    return [
        PurposeOut(id=p.id, label=p.label, description=p.description, broader=p.broader, dpv=p.dpv)
        for p in purposes().values()
    ]


@router.post(
    "/requests",
    status_code=status.HTTP_201_CREATED,
    summary="Request access to a dataset for a purpose (consumer).",
)
def create_request(actor: Consumer, body: RequestCreate, domain: ContractsDep) -> RequestOut:
    info = domain.request(
        actor,
        body.dataset,
        purpose=body.purpose,
        epsilon=body.epsilon,
        until=body.until,
        since=body.since,
        actions=tuple(body.actions),
        note=body.note,
    )
    return RequestOut.of(info)


@router.get("/requests", summary="Your requests, or those for your datasets (a provider's inbox).")
def list_requests(
    actor: AnyActor,
    domain: ContractsDep,
    paging: Paging,
    pending: Annotated[bool, Query(description="Only requests waiting for a decision.")] = False,
) -> Page[RequestOut]:
    return page_of(domain.requests(actor, pending=pending), paging, RequestOut.of)


@router.get("/requests/{request_id}", summary="One request with its history.")
def show_request(actor: AnyActor, request_id: RequestId, domain: ContractsDep) -> RequestOut:
    info = domain.show(actor, _as("REQ", request_id))
    assert isinstance(info, RequestInfo)
    return RequestOut.of(info)


@router.post(
    "/requests/{request_id}/grant",
    status_code=status.HTTP_201_CREATED,
    summary="Grant a pending request: the contract (the dataset's provider).",
)
def grant_request(
    actor: Provider, request_id: RequestId, body: GrantCreate, domain: ContractsDep
) -> GrantOut:
    options: dict[str, Any] = {
        "epsilon": body.epsilon,
        "max_queries": body.max_queries,
        "price_per_query": body.price_per_query,
        "price_per_epsilon": body.price_per_epsilon,
        "until": body.until,
        "duties": tuple(body.duties),
    }
    if body.actions is not None:
        options["actions"] = tuple(body.actions)
    return GrantOut.of(domain.grant(actor, _as("REQ", request_id), **options))


@router.post("/requests/{request_id}/refuse", summary="Refuse a pending request (its provider).")
def refuse_request(
    actor: Provider, request_id: RequestId, body: Reason, domain: ContractsDep
) -> RequestOut:
    return RequestOut.of(domain.refuse(actor, _as("REQ", request_id), body.reason))


@router.get("/grants", summary="Your grants, or those for your datasets.")
def list_grants(
    actor: AnyActor,
    domain: ContractsDep,
    paging: Paging,
    active: Annotated[bool, Query(description="Only grants in force.")] = False,
) -> Page[GrantOut]:
    return page_of(domain.grants(actor, active=active), paging, GrantOut.of)


@router.get("/grants/{grant_id}", summary="One grant with its history.")
def show_grant(actor: AnyActor, grant_id: GrantId, domain: ContractsDep) -> GrantOut:
    info = domain.show(actor, _as("GRANT", grant_id))
    assert isinstance(info, GrantInfo)
    return GrantOut.of(info)


@router.get(
    "/grants/{grant_id}/odrl",
    summary="A grant as an ODRL 2.2 Agreement (JSON-LD).",
    responses={200: {"content": {"application/ld+json": {"schema": {"type": "object"}}}}},
)
def export_odrl(actor: AnyActor, grant_id: GrantId, domain: ContractsDep) -> JSONResponse:
    info = domain.show(actor, _as("GRANT", grant_id))
    assert isinstance(info, GrantInfo)
    return JSONResponse(agreement(info), media_type="application/ld+json")


@router.post("/grants/{grant_id}/revoke", summary="Revoke a grant now (its provider, an operator).")
def revoke_grant(
    actor: AnyActor, grant_id: GrantId, body: Reason, domain: ContractsDep
) -> GrantOut:
    return GrantOut.of(domain.revoke(actor, _as("GRANT", grant_id), body.reason))


def _as(prefix: str, ident: str) -> str:
    return ident if ident.upper().startswith(prefix) else f"{prefix}-{ident}"
