"""Accounts and API tokens: who am I; operators create accounts and manage tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status

from entrepot.api.auth import AnyActor, Operator
from entrepot.api.openapi import operation_id
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

router = APIRouter(prefix="/v1", tags=["accounts"], generate_unique_id_function=operation_id)

# The patterns document the names; the accounts' service reads them and words a refusal.
AccountName = Annotated[
    str, Path(max_length=64, description="Account name.", json_schema_extra={"pattern": _SLUG})
]
TokenId = Annotated[
    str,
    Path(
        max_length=100,
        description="A token's public id.",
        json_schema_extra={"pattern": r"^[0-9a-f]{12}$"},
    ),
]
Paging = Annotated[PageParams, Depends(page_params)]


@router.get("/me", summary="The account behind the token.")
def show_me(request: Request, actor: AnyActor) -> Me:
    """The account name, role and organization the bearer token acts as."""
    return Me.model_validate(client_of(request, actor).me())


@router.get("/accounts", summary="Accounts: all for operators, your organization's otherwise.")
def list_accounts(request: Request, actor: AnyActor, paging: Paging) -> Page[AccountOut]:
    """Accounts by name, each with its role, organization and number of active tokens."""
    body = client_of(request, actor).accounts_page(paging.limit, paging.offset)
    return page_of(body, AccountOut.model_validate)


@router.post(
    "/accounts",
    status_code=status.HTTP_201_CREATED,
    summary="Create an account (and its organization) with a first token (operator).",
)
def create_account(request: Request, actor: Operator, body: AccountCreate) -> AccountCreated:
    """The answer holds the first token's secret: it is shown this once and never again."""
    created = client_of(request, actor).create_account(
        body.name, body.role, org=body.org, org_name=body.org_name
    )
    return AccountCreated.model_validate(created)


@router.get("/accounts/{name}/tokens", summary="An account's tokens (never their secrets).")
def list_account_tokens(
    request: Request, actor: AnyActor, name: AccountName, paging: Paging
) -> Page[TokenOut]:
    """An account's tokens, oldest first, by public id: never a secret or its hash."""
    body = client_of(request, actor).tokens_page(name, paging.limit, paging.offset)
    return page_of(body, TokenOut.model_validate)


@router.post(
    "/accounts/{name}/tokens",
    status_code=status.HTTP_201_CREATED,
    summary="Issue a new token for an account (operator, or the account's organization).",
)
def issue_token(request: Request, actor: AnyActor, name: AccountName) -> NewToken:
    """The answer holds the new token's secret: it is shown this once and never again."""
    return NewToken.model_validate(client_of(request, actor).issue_token(name))


@router.get("/tokens", summary="Tokens you may see: all for operators, your organization's.")
def list_tokens(request: Request, actor: AnyActor, paging: Paging) -> Page[TokenOut]:
    """Every token the caller may see, oldest first, by public id; never a secret."""
    body = client_of(request, actor).tokens_page(None, paging.limit, paging.offset)
    return page_of(body, TokenOut.model_validate)


@router.post("/tokens/{token_id}/revoke", summary="Revoke a token by its public id.")
def revoke_token(
    request: Request,
    actor: AnyActor,
    token_id: TokenId,
) -> TokenOut:
    """Every server process refuses the token from the next request on."""
    return TokenOut.model_validate(client_of(request, actor).revoke_token(token_id))
