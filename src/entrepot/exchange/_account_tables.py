"""Organizations, accounts and API tokens as SQLAlchemy Core tables, and the listing of
accounts read on them.

Declared apart from their mapped classes (:class:`entrepot.organizations.Organization`,
:class:`entrepot.exchange.accounts.Account` and ``ApiToken``, built on these tables) so
that listing the accounts runs on Core, without loading the ORM, the token hasher or
the transparency log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    Select,
    String,
    Table,
    func,
    select,
)

from entrepot.clock import utcnow
from entrepot.db import METADATA, Database, count_rows
from entrepot.errors import NotFound
from entrepot.exchange.actors import Actor
from entrepot.roles import Role

__all__ = [
    "AccountInfo",
    "Scope",
    "account_ref",
    "accounts",
    "api_tokens",
    "count_accounts",
    "list_accounts",
    "organization_actor",
    "organizations",
    "token_ref",
]

_ROLES = "', '".join(Role)


class Scope(StrEnum):
    """What an API token may be used for.

    ``full``: everything its account may do. ``sharing``: the Delta Sharing routes only
    (a share profile's token), to hand to a BI tool or a notebook that reads releases.
    """

    FULL = "full"
    SHARING = "sharing"


_SCOPES = "', '".join(Scope)

organizations = Table(
    "organizations",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("slug", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("provider_id", Integer, ForeignKey("providers.id"), unique=True),
    Column("created_at", DateTime, nullable=False),
    CheckConstraint(f"kind IN ('{_ROLES}')", name="kind"),
)

accounts = Table(
    "accounts",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("org_id", Integer, ForeignKey("organizations.id"), nullable=False, index=True),
    Column("role", String(16), nullable=False),
    Column("created_at", DateTime, nullable=False),
    CheckConstraint(f"role IN ('{_ROLES}')", name="role"),
)

api_tokens = Table(
    "api_tokens",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("token_id", String(12), nullable=False, unique=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("secret_hash", String(200), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("revoked_at", DateTime),
    # A portal session's token: the API token it was opened with (NULL: an API token).
    Column("parent_id", Integer, ForeignKey("api_tokens.id"), index=True),
    # What the token may be used for, a Scope.
    Column("scope", String(16), nullable=False, server_default=Scope.FULL.value),
    CheckConstraint(f"scope IN ('{_SCOPES}')", name="scope"),
)


def account_ref(row_id: int) -> str:
    """How the public log names the account of row ``row_id``: never by its name."""
    return f"ACCOUNT-{row_id}"


def token_ref(row_id: int) -> str:
    """How the public log names the API token of row ``row_id``: never by its id."""
    return f"TOKEN-{row_id}"


@dataclass(frozen=True)
class AccountInfo:
    name: str
    ref: str  # how the public log names it (account_ref)
    role: str
    org: str
    org_name: str
    created_at: datetime
    active_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ref": self.ref,
            "role": self.role,
            "org": self.org,
            "org_name": self.org_name,
            "created_at": self.created_at.isoformat() + "Z",
            "active_tokens": self.active_tokens,
        }

    def to_body(self) -> dict[str, Any]:
        """The account as the API's ``AccountOut`` answers it, which :meth:`to_dict` is
        already. The local client answers with it without building the model; tests pin
        it equal to the model's dump."""
        return self.to_dict()


def _accounts_of(query: Select[Any], actor: Actor) -> Select[Any]:
    """``query`` on the accounts the actor may see: all for administrators, else its
    organization's."""
    return query if actor.administers else query.where(accounts.c.org_id == actor.org_id)


def list_accounts(
    db: Database,
    actor: Actor,
    *,
    now: datetime | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[AccountInfo]:
    """Accounts the actor may see, by name, each with its API tokens active at ``now``
    (default: the clock's now): the ``limit`` of them from ``offset`` (all when ``limit``
    is None)."""
    now = utcnow() if now is None else now
    account, org, token = accounts.c, organizations.c, api_tokens.c
    query = (
        select(account.id, account.name, account.role, org.slug, org.name, account.created_at)
        .join_from(accounts, organizations, org.id == account.org_id)
        .order_by(account.name)
    )
    with db.connect() as connection:
        rows = connection.execute(_accounts_of(query, actor).limit(limit).offset(offset)).all()
        counted = connection.execute(
            select(token.account_id, func.count())
            .where(
                token.account_id.in_([row[0] for row in rows]),
                token.parent_id.is_(None),
                token.revoked_at.is_(None),
                token.expires_at > now,
            )
            .group_by(token.account_id)
        )
        active: dict[int, int] = {account_id: n for account_id, n in counted}
    return [
        AccountInfo(
            name,
            account_ref(account_id),
            role,
            org_slug,
            org_name,
            created_at,
            active.get(account_id, 0),
        )
        for account_id, name, role, org_slug, org_name, created_at in rows
    ]


def count_accounts(db: Database, actor: Actor) -> int:
    """How many accounts :func:`list_accounts` lists in all."""
    with db.connect() as connection:
        return count_rows(connection, _accounts_of(select(accounts.c.id), actor))


def organization_actor(db: Database, slug: str) -> Actor:
    """Act as organization ``slug`` (the local CLI's ``--as``), read on Core."""
    org = organizations.c
    with db.connect() as connection:
        found = connection.execute(
            select(org.id, org.kind, org.provider_id).where(org.slug == slug)
        ).first()
    if found is None:
        raise NotFound(
            f"no organization {slug!r} on this node",
            hint=f"create it with `entrepot account create {slug} --role consumer`, "
            f"or `entrepot provider add {slug}` for a data provider",
        )
    return Actor(
        role=Role(found.kind).value, org_id=found.id, org_slug=slug, provider_id=found.provider_id
    )
