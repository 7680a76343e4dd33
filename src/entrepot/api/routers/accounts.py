"""Accounts and API tokens: who am I; operators create accounts and manage tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status

from entrepot.api.auth import AnyActor, Operator
from entrepot.api.pagination import Page, PageParams, page_of, page_params
from entrepot.api.routers._client import client_of
from entrepot.schemas.accounts import (
    AccountCreate,
    AccountCreated,
    AccountOut,
    Me,
    NewToken,
    TokenOut,
)
from entrepot.schemas.catalog import SLUG as _SLUG

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["accounts"])

AccountName = Annotated[str, Path(pattern=_SLUG, max_length=64, description="Account name.")]
Paging = Annotated[PageParams, Depends(page_params)]


@router.get("/me", summary="The account behind the token.")
def me(request: Request, actor: AnyActor) -> Me:
    return Me.model_validate(client_of(request, actor).me())


@router.get("/accounts", summary="Accounts: all for operators, your organization's otherwise.")
def list_accounts(request: Request, actor: AnyActor, paging: Paging) -> Page[AccountOut]:
    return page_of(client_of(request, actor).accounts(), paging, AccountOut.model_validate)


@router.post(
    "/accounts",
    status_code=status.HTTP_201_CREATED,
    summary="Create an account (and its organization) with a first token (operator).",
)
def create_account(request: Request, actor: Operator, body: AccountCreate) -> AccountCreated:
    created = client_of(request, actor).create_account(
        body.name, body.role, org=body.org, org_name=body.org_name
    )
    return AccountCreated.model_validate(created)


@router.get("/accounts/{name}/tokens", summary="An account's tokens (never their secrets).")
def list_tokens(
    request: Request, actor: AnyActor, name: AccountName, paging: Paging
) -> Page[TokenOut]:
    return page_of(client_of(request, actor).tokens(name), paging, TokenOut.model_validate)


@router.post(
    "/accounts/{name}/tokens",
    status_code=status.HTTP_201_CREATED,
    summary="Issue a new token for an account (operator, or the account's organization).",
)
def issue_token(request: Request, actor: AnyActor, name: AccountName) -> NewToken:
    return NewToken.model_validate(client_of(request, actor).issue_token(name))


@router.get("/tokens", summary="Tokens you may see: all for operators, your organization's.")
def list_all_tokens(request: Request, actor: AnyActor, paging: Paging) -> Page[TokenOut]:
    return page_of(client_of(request, actor).tokens(), paging, TokenOut.model_validate)


@router.post("/tokens/{token_id}/revoke", summary="Revoke a token by its public id.")
def revoke_token(
    request: Request,
    actor: AnyActor,
    token_id: Annotated[str, Path(pattern=r"^[0-9a-f]{12}$")],
) -> TokenOut:
    return TokenOut.model_validate(client_of(request, actor).revoke_token(token_id))
