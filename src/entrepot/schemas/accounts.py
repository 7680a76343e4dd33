"""Accounts and API tokens on the wire."""

from __future__ import annotations

from pydantic import BaseModel, Field

from entrepot._text import NAME_MAX
from entrepot.exchange.accounts import AccountInfo, Role, Scope, TokenInfo
from entrepot.schemas._types import UtcDateTime
from entrepot.schemas.catalog import SLUG as _SLUG

__all__ = ["AccountCreate", "AccountCreated", "AccountOut", "Me", "NewToken", "TokenOut"]


class Me(BaseModel):
    account: str | None
    role: str
    org: str


class AccountOut(BaseModel):
    name: str
    ref: str = Field(description="How the public log names the account: ACCOUNT-<n>.")
    role: str
    org: str
    org_name: str
    created_at: UtcDateTime
    active_tokens: int

    @classmethod
    def of(cls, info: AccountInfo) -> AccountOut:
        return cls(
            name=info.name,
            ref=info.ref,
            role=info.role,
            org=info.org,
            org_name=info.org_name,
            created_at=info.created_at,
            active_tokens=info.active_tokens,
        )


class TokenOut(BaseModel):
    token_id: str = Field(
        description="The token's id: not secret, yet shown only to its organization and "
        "operators, as anyone holding it can make the server check guessed secrets."
    )
    ref: str = Field(
        description="How the public transparency log names the token.", examples=["TOKEN-7"]
    )
    account: str
    scope: Scope = Field(
        description="What the token may be used for: `full`, everything its account may "
        "do; `sharing`, a share profile's token, the Delta Sharing routes only."
    )
    created_at: UtcDateTime
    expires_at: UtcDateTime
    revoked_at: UtcDateTime | None

    @classmethod
    def of(cls, info: TokenInfo) -> TokenOut:
        return cls(
            token_id=info.token_id,
            ref=info.ref,
            account=info.account,
            scope=info.scope,
            created_at=info.created_at,
            expires_at=info.expires_at,
            revoked_at=info.revoked_at,
        )


class NewToken(BaseModel):
    token: str = Field(description="The secret token: shown this once, stored nowhere in clear.")
    info: TokenOut


class AccountCreate(BaseModel):
    name: str = Field(pattern=_SLUG, max_length=64, examples=["city-health-bureau"])
    role: Role
    org: str | None = Field(None, pattern=_SLUG, max_length=64)
    org_name: str | None = Field(None, min_length=1, max_length=NAME_MAX)


class AccountCreated(BaseModel):
    account: AccountOut
    token: NewToken
