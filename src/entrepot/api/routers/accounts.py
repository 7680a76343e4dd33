"""Accounts and API tokens: who am I; operators create accounts and manage tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status

from entrepot.api.auth import AnyActor, Operator, accounts_of
from entrepot.api.pagination import Page, PageParams, page_of, page_params
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
def me(actor: AnyActor) -> Me:
    return Me(account=actor.account, role=actor.role, org=actor.org_slug)


@router.get("/accounts", summary="Accounts: all for operators, your organization's otherwise.")
def list_accounts(request: Request, actor: AnyActor, paging: Paging) -> Page[AccountOut]:
    return page_of(accounts_of(request).list_accounts(actor), paging, AccountOut.of)


@router.post(
    "/accounts",
    status_code=status.HTTP_201_CREATED,
    summary="Create an account (and its organization) with a first token (operator).",
)
def create_account(request: Request, actor: Operator, body: AccountCreate) -> AccountCreated:
    info, issued = accounts_of(request).create(
        actor, body.name, body.role, org=body.org, org_name=body.org_name
    )
    return AccountCreated(
        account=AccountOut.of(info),
        token=NewToken(token=issued.secret, info=TokenOut.of(issued.info)),
    )


@router.get("/accounts/{name}/tokens", summary="An account's tokens (never their secrets).")
def list_tokens(
    request: Request, actor: AnyActor, name: AccountName, paging: Paging
) -> Page[TokenOut]:
    return page_of(accounts_of(request).tokens(actor, name), paging, TokenOut.of)


@router.post(
    "/accounts/{name}/tokens",
    status_code=status.HTTP_201_CREATED,
    summary="Issue a new token for an account (operator, or the account's organization).",
)
def issue_token(request: Request, actor: AnyActor, name: AccountName) -> NewToken:
    issued = accounts_of(request).issue_token(actor, name)
    return NewToken(token=issued.secret, info=TokenOut.of(issued.info))


@router.get("/tokens", summary="Tokens you may see: all for operators, your organization's.")
def list_all_tokens(request: Request, actor: AnyActor, paging: Paging) -> Page[TokenOut]:
    return page_of(accounts_of(request).tokens(actor), paging, TokenOut.of)


@router.post("/tokens/{token_id}/revoke", summary="Revoke a token by its public id.")
def revoke_token(
    request: Request,
    actor: AnyActor,
    token_id: Annotated[str, Path(pattern=r"^[0-9a-f]{12}$")],
) -> TokenOut:
    return TokenOut.of(accounts_of(request).revoke_token(actor, token_id))
