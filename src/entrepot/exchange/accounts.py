"""Organizations, their accounts in roles, and API tokens.

Every party is an organization (``city-health-bureau``) with accounts in one role:
``operator`` (runs the node), ``provider`` (its organization is a vault provider:
it is made with its vault ``providers`` row, see :mod:`entrepot.organizations`),
``consumer`` or ``auditor``. Functions take the acting party as an explicit
:class:`Actor`: the API builds it from a token, the local CLI from ``--as ORG``, and
:data:`LOCAL` is whoever holds the node's home (they hold every file already).

API tokens look like ``ent_<id>_<secret>``. The 12-hex ``id`` is not secret and finds
the row; the whole token is checked against an Argon2id hash (argon2-cffi, constant
time). The token is shown once and stored nowhere in clear. Each token has a
:class:`Scope`: ``full`` for everything its account may do, ``sharing`` for a share
profile's token, which the API accepts on its Delta Sharing routes only
(:mod:`entrepot.api.auth` holds that rule). A portal session's token has the scope of
the API token it was opened with.

Argon2id costs tens of milliseconds by design, too much for every API request, so
each :class:`Accounts` remembers, for ``token_cache_ttl_s`` seconds, that a token
(keyed by its SHA-256, never the token) matched the hash of its row, and whom it
stands for. Only that verification is cached: every request still reads the token's
row by its primary key, so a revocation or an expiry made by any process (another
worker of a server) is refused at once by all of them, and the token's scope is the
one that row holds.

A token that is not cached is authenticated in two steps, so that a server can
decide between them whether it may spend an Argon2id check (64 MiB of memory) on
it: :meth:`Accounts.recall` reads the row (cheap: a SHA-256 and one indexed read),
:meth:`Accounts.verify` runs the check and counts it in ``verifications``. The
token id is kept out of the public log, which names a token by its ``TOKEN-<n>``
reference instead: an id lets anyone make the server run those checks. The log names
an account by its ``ACCOUNT-<n>`` reference too, never by its name, which may be a
person's; node.db ties each reference to its row (:func:`account_ref`, :func:`token_ref`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, aliased

from entrepot._text import NAME_MAX, check_text, with_article
from entrepot.clock import utcnow
from entrepot.db import Base, Database, count_rows
from entrepot.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized, param
from entrepot.exchange import _account_tables
from entrepot.exchange._account_tables import (
    AccountInfo,
    Scope,
    account_ref,
    organization_actor,
    token_ref,
)
from entrepot.exchange.actors import LOCAL, Actor
from entrepot.exchange.outbox import Outbox
from entrepot.organizations import Organization, Role
from entrepot.settings import Settings
from entrepot.transparency import TransparencyLog
from entrepot.transparency.entries import Kind, make_entry
from entrepot.vault.refs import check_slug

__all__ = [
    "LOCAL",
    "Account",
    "AccountInfo",
    "Accounts",
    "Actor",
    "ApiToken",
    "Authenticated",
    "IssuedToken",
    "Organization",
    "Role",
    "Scope",
    "TokenInfo",
    "Unverified",
    "account_ref",
    "raced",
    "token_id_of",
    "token_ref",
]

_TOKEN = re.compile(r"ent_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")
# Verified tokens kept per process; beyond this the oldest entries are dropped.
_CACHE_MAX = 4096


class Account(Base):
    """Mapped on the Core table of :mod:`entrepot.exchange._account_tables`."""

    __table__ = _account_tables.accounts

    id: Mapped[int]
    name: Mapped[str]
    org_id: Mapped[int]
    role: Mapped[str]
    created_at: Mapped[datetime]


class ApiToken(Base):
    """Mapped on the Core table of :mod:`entrepot.exchange._account_tables`; a portal
    session's token has the API token it was opened with for its ``parent_id``."""

    __table__ = _account_tables.api_tokens

    id: Mapped[int]
    token_id: Mapped[str]
    account_id: Mapped[int]
    secret_hash: Mapped[str]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    parent_id: Mapped[int | None]
    scope: Mapped[str]


# The API token a session token hangs from, in a query that reads both rows.
_Parent = aliased(ApiToken)


@dataclass(frozen=True)
class TokenInfo:
    token_id: str
    account: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    scope: Scope
    # How the public log names the token: its row number, which authenticates nothing.
    ref: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "token_id": self.token_id,
            "ref": self.ref,
            "account": self.account,
            "scope": self.scope.value,
            "created_at": self.created_at.isoformat() + "Z",
            "expires_at": self.expires_at.isoformat() + "Z",
            "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat() + "Z",
        }


@dataclass(frozen=True)
class IssuedToken:
    """A new token: ``secret`` is the only copy, show it once."""

    info: TokenInfo
    secret: str

    def __repr__(self) -> str:
        return f"IssuedToken(info={self.info!r}, secret=<hidden>)"


@dataclass(frozen=True)
class Authenticated:
    """Whom a live, verified token stands for, and what it may be used for."""

    actor: Actor
    scope: Scope


@dataclass(frozen=True)
class Unverified:
    """A live token whose secret is not checked yet: what :meth:`Accounts.verify` needs."""

    token_id: str
    actor: Actor
    scope: Scope
    row_id: int
    secret_hash: str
    key: bytes

    def __repr__(self) -> str:
        return f"Unverified(token_id={self.token_id!r}, actor={self.actor!r})"


@dataclass(frozen=True)
class _Verified:
    """A token that matched its row's Argon2id hash: who it stands for, and its row."""

    actor: Actor
    row_id: int
    trusted_until: float


class _VerifiedTokens:
    """Verified tokens by the SHA-256 of the token (never the token itself).

    A hit spares the Argon2id check only: the caller still reads the token's row
    for revocation, expiry and scope.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[bytes, _Verified] = {}

    def get(self, key: bytes) -> _Verified | None:
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit.trusted_until <= time.monotonic():
                del self._entries[key]
                return None
            return hit

    def put(self, key: bytes, entry: _Verified) -> None:
        with self._lock:
            self._entries.pop(key, None)
            while len(self._entries) >= _CACHE_MAX:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = entry

    def forget(self, key: bytes) -> None:
        with self._lock:
            self._entries.pop(key, None)


@contextmanager
def raced(message: str) -> Iterator[None]:
    """A unique key lost to a concurrent writer (PostgreSQL) becomes a clean Conflict."""
    try:
        yield
    except IntegrityError:
        raise Conflict(message, hint="look again, then retry if still needed") from None


def _actor_of(org: Organization, account: Account | None = None) -> Actor:
    return Actor(
        role=Role(account.role if account is not None else org.kind).value,
        org_id=org.id,
        org_slug=org.slug,
        provider_id=org.provider_id,
        account=None if account is None else account.name,
    )


class Accounts:
    """Organizations, accounts and tokens of one node."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        log: TransparencyLog,
        clock: Any = utcnow,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.outbox = Outbox(db, log, fault_point=settings.fault_point)
        # RFC 9106's second recommended (low-memory) profile, with the memory cost a
        # setting; verifying uses the parameters stored in each hash.
        self._hasher = PasswordHasher(
            time_cost=3, memory_cost=self.settings.token_hash_memory_kib, parallelism=4
        )
        self._verified = _VerifiedTokens()
        self._verifications = 0
        self._verifications_lock = threading.Lock()

    @property
    def verifications(self) -> int:
        """Argon2id checks of API tokens this object has run (cached tokens need none)."""
        return self._verifications

    # -- organizations ------------------------------------------------------------

    def actor(self, org_slug: str) -> Actor:
        """Act as organization ``org_slug`` (the local CLI's ``--as``)."""
        return organization_actor(self.db, org_slug)

    # -- accounts -----------------------------------------------------------------

    def create(
        self,
        actor: Actor,
        name: str,
        role: str,
        *,
        org: str | None = None,
        org_name: str | None = None,
    ) -> tuple[AccountInfo, IssuedToken]:
        """Create an account (and its organization if new) with a first token."""
        _require_admin(actor, "create accounts")
        check_slug(name, "account")
        role = _role(role)
        org_slug = check_slug(org or name, "organization")
        if org_name is not None:
            check_text(org_name, "organization name", most=NAME_MAX)
        minted = self._mint()
        with (
            raced(f"account {name} or organization {org_slug} was created meanwhile"),
            self.db.write() as session,
        ):
            if session.scalar(select(Account.id).where(Account.name == name)) is not None:
                raise Conflict(
                    f"account {name} already exists",
                    hint="list accounts with `entrepot account list`, or choose another name",
                )
            organization = session.scalar(select(Organization).where(Organization.slug == org_slug))
            if organization is None:
                organization = self._new_org(session, org_slug, role, org_name)
            if organization.kind != role:
                raise Conflict(
                    f"organization {org_slug} is {with_article(organization.kind)}; "
                    f"it cannot hold {with_article(role)} account",
                    hint=f"give each role its own organization with {param('org')}",
                )
            account = Account(name=name, org_id=organization.id, role=role, created_at=self.clock())
            session.add(account)
            session.flush()
            token = self._issue(session, account, minted)
            info = AccountInfo(
                name,
                account_ref(account.id),
                role.value,
                organization.slug,
                organization.name,
                account.created_at,
                1,
            )
            self._record(
                session,
                actor,
                "created",
                account,
                role=info.role,
                org=info.org,
                token=token.info.ref,
                scope=token.info.scope.value,
            )
        self._logged()
        return info, token

    def _new_org(self, session: Session, slug: str, role: str, name: str | None) -> Organization:
        if role == Role.PROVIDER:
            # A provider's organization is made with its vault row, never here.
            raise NotFound(
                f"no provider {slug!r} on this node for a provider account",
                hint=f'add it first with `entrepot provider add {slug} --name "..."`',
            )
        org = Organization(slug=slug, name=name or slug, kind=role, created_at=self.clock())
        session.add(org)
        session.flush()
        return org

    def list_accounts(
        self, actor: Actor, *, limit: int | None = None, offset: int = 0
    ) -> list[AccountInfo]:
        """Accounts the actor may see (all for administrators, else its organization's),
        by name: the ``limit`` of them from ``offset`` (all when ``limit`` is None)."""
        return _account_tables.list_accounts(
            self.db, actor, now=self.clock(), limit=limit, offset=offset
        )

    def count_accounts(self, actor: Actor) -> int:
        """How many accounts :meth:`list_accounts` lists in all."""
        return _account_tables.count_accounts(self.db, actor)

    # -- tokens -------------------------------------------------------------------

    def issue_token(self, actor: Actor, account: str, *, scope: Scope = Scope.FULL) -> IssuedToken:
        """A new token for ``account`` (administrators, or the account's organization),
        of ``scope``."""
        minted = self._mint()
        with self.db.write() as session:
            row = self._visible_account(session, actor, account)
            issued = self._issue(session, row, minted, scope=scope)
            self._record(
                session,
                actor,
                "token_issued",
                row,
                token=issued.info.ref,
                scope=issued.info.scope.value,
            )
        self._logged()
        return issued

    def _mint(self) -> tuple[str, str, str]:
        """A new token id, secret and hash, made before any transaction opens."""
        # Argon2id takes tens of milliseconds: not while holding the DB's write lock.
        token_id = secrets.token_hex(6)
        # 32 random bytes: 256 bits, beyond any guessing.
        secret = f"ent_{token_id}_{secrets.token_urlsafe(32)}"
        return token_id, secret, self._hasher.hash(secret)

    def _issue(
        self,
        session: Session,
        account: Account,
        minted: tuple[str, str, str],
        *,
        parent: ApiToken | None = None,
        lifetime: timedelta | None = None,
        scope: Scope = Scope.FULL,
    ) -> IssuedToken:
        """A new token row; a session's (``parent`` given) has its parent's scope."""
        token_id, secret, secret_hash = minted
        now = self.clock()
        expires = now + (lifetime or timedelta(days=self.settings.token_ttl_days))
        row = ApiToken(
            token_id=token_id,
            account_id=account.id,
            secret_hash=secret_hash,
            created_at=now,
            expires_at=expires if parent is None else min(expires, parent.expires_at),
            parent_id=None if parent is None else parent.id,
            scope=scope.value if parent is None else parent.scope,
        )
        session.add(row)
        session.flush()
        return IssuedToken(_token_info(row, account.name), secret)

    def tokens(
        self,
        actor: Actor,
        account: str | None = None,
        *,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[TokenInfo]:
        """Tokens the actor may see (of ``account`` if given), oldest first: the ``limit``
        of them from ``offset`` (all when ``limit`` is None)."""
        with self.db.read() as session:
            query = self._tokens_of(
                session,
                select(ApiToken, Account)
                .join(Account, Account.id == ApiToken.account_id)
                .order_by(ApiToken.id),
                actor,
                account,
            )
            found = session.execute(query.limit(limit).offset(offset))
            return [_token_info(t, a.name) for t, a in found]

    def count_tokens(self, actor: Actor, account: str | None = None) -> int:
        """How many tokens :meth:`tokens` lists in all."""
        with self.db.read() as session:
            query = select(ApiToken.id).join(Account, Account.id == ApiToken.account_id)
            return count_rows(session, self._tokens_of(session, query, actor, account))

    def _tokens_of(self, session: Session, query: Any, actor: Actor, account: str | None) -> Any:
        query = query.where(ApiToken.parent_id.is_(None))
        if account is not None:
            return query.where(Account.id == self._visible_account(session, actor, account).id)
        return query if actor.administers else query.where(Account.org_id == actor.org_id)

    def revoke_token(self, actor: Actor, token_id: str) -> TokenInfo:
        """Revoke a token by its public id; every process refuses it from the next request."""
        with self.db.write() as session:
            found = session.execute(
                select(ApiToken, Account)
                .join(Account, Account.id == ApiToken.account_id)
                .where(ApiToken.token_id == token_id)
            ).first()
            if found is None or not (actor.administers or found[1].org_id == actor.org_id):
                raise NotFound(
                    f"no token {token_id!r} that you may revoke",
                    hint="list tokens with `entrepot account list --tokens`",
                )
            token, account = found
            if token.revoked_at is None:
                token.revoked_at = self.clock()
            info = _token_info(token, account.name)
            self._record(session, actor, "token_revoked", account, token=info.ref)
        self._logged()
        return info

    # -- portal sessions ----------------------------------------------------------

    def open_session(self, token: str, *, lifetime: timedelta) -> IssuedToken:
        """A session token of ``token``'s account, live for ``lifetime`` at most and never
        past ``token``'s own expiry; ``token`` must be a live API token.

        The account's sessions that ended (signed out, expired) are deleted here, so
        their rows do not pile up.
        """
        actor = self.authenticate(token)
        minted = self._mint()
        with self.db.write() as session:
            parent = session.scalar(select(ApiToken).where(ApiToken.token_id == token_id_of(token)))
            if parent is None or parent.parent_id is not None:
                raise Unauthorized(
                    "a session is opened with an API token, not with another session",
                    hint="sign in with the token `entrepot account token` printed",
                )
            now = self.clock()
            session.execute(
                delete(ApiToken).where(
                    ApiToken.account_id == parent.account_id,
                    ApiToken.parent_id.is_not(None),
                    or_(ApiToken.revoked_at.is_not(None), ApiToken.expires_at <= now),
                )
            )
            account = session.get_one(Account, parent.account_id)
            issued = self._issue(session, account, minted, parent=parent, lifetime=lifetime)
            row_id = session.scalar(
                select(ApiToken.id).where(ApiToken.token_id == issued.info.token_id)
            )
        ttl = self.settings.token_cache_ttl_s
        if ttl > 0 and row_id is not None:
            # The secret was made here: its first request needs no Argon2id check.
            key = hashlib.sha256(issued.secret.encode()).digest()
            self._verified.put(key, _Verified(actor, row_id, time.monotonic() + ttl))
        return issued

    def close_session(self, token: str) -> None:
        """End the session ``token`` stands for, on every process from the next request.

        Anything else is left alone: an API token is never revoked by a sign-out, and
        an unknown, ended or forged token has nothing to end.
        """
        try:
            self.authenticate(token)
        except Unauthorized:
            return
        with self.db.write() as session:
            row = session.scalar(select(ApiToken).where(ApiToken.token_id == token_id_of(token)))
            if row is not None and row.parent_id is not None and row.revoked_at is None:
                row.revoked_at = self.clock()
        self._verified.forget(hashlib.sha256(token.encode()).digest())

    def _record(
        self, session: Session, actor: Actor, change: str, account: Account, **fields: str
    ) -> None:
        """Stage an account change for the transparency log, in the transaction that makes it.

        The account appears by reference (``ACCOUNT-<n>``), never by name: the log is
        public and permanent, and a name may be a person's. Tokens appear by reference
        (``TOKEN-<n>``), never by id: an id is half of a token, and lets anyone make the
        server run Argon2id checks. A token made appears with its scope, so the log tells
        a sharing token from a full one.
        """
        self.outbox.stage(
            session,
            make_entry(
                Kind.ACCOUNT,
                actor.name,
                time=self.clock().replace(tzinfo=UTC),
                change=change,
                account=account_ref(account.id),
                **fields,
            ),
        )

    def _logged(self) -> None:
        """After a commit: append the staged entries to the log."""
        self.outbox.flush()

    def _visible_account(self, session: Session, actor: Actor, name: str) -> Account:
        account = session.scalar(select(Account).where(Account.name == name))
        if account is None or not (actor.administers or account.org_id == actor.org_id):
            raise NotFound(
                f"no account {name!r} that you may manage",
                hint="list accounts with `entrepot account list`",
            )
        return account

    def authenticate(self, token: str) -> Actor:
        """The actor a bearer token stands for, whatever its scope, or :class:`Unauthorized`."""
        found = self.recall(token)
        return (found if isinstance(found, Authenticated) else self.verify(found, token)).actor

    def is_cached(self, token: str) -> bool:
        """Whether ``token`` was verified lately, so that :meth:`recall` will not need
        :meth:`verify`; in memory only (the revocation read is :meth:`recall`'s)."""
        if self.settings.token_cache_ttl_s <= 0:
            return False
        return self._verified.get(hashlib.sha256(token.encode()).digest()) is not None

    def recall(self, token: str) -> Authenticated | Unverified:
        """A cached token's actor and scope, or what :meth:`verify` needs; no Argon2id
        check here.

        Raises :class:`Unauthorized` for a malformed, unknown, expired or revoked token.
        """
        token_id = token_id_of(token)
        if token_id is None:
            raise _refused()
        now = self.clock()
        key = hashlib.sha256(token.encode()).digest()
        hit = self._verified.get(key) if self.settings.token_cache_ttl_s > 0 else None
        if hit is not None:
            # Revocation, expiry and scope are read on every call (a primary-key read),
            # so a token revoked by any process is refused at once by all of them. The
            # row must still be this token's: SQLite gives a deleted row's id (an ended
            # session's) to the next row written, another session of the account.
            with self.db.read() as session:
                live = session.execute(
                    select(
                        ApiToken.revoked_at, ApiToken.expires_at, _Parent.revoked_at, ApiToken.scope
                    )
                    .outerjoin(_Parent, _Parent.id == ApiToken.parent_id)
                    .where(ApiToken.id == hit.row_id, ApiToken.token_id == token_id)
                ).first()
            if live is None or not _live(live[0], live[1], live[2], now):
                self._verified.forget(key)
                raise _refused()
            return Authenticated(hit.actor, Scope(live[3]))
        with self.db.read() as session:
            found = session.execute(
                select(ApiToken, Account, Organization, _Parent.revoked_at)
                .join(Account, Account.id == ApiToken.account_id)
                .join(Organization, Organization.id == Account.org_id)
                .outerjoin(_Parent, _Parent.id == ApiToken.parent_id)
                .where(ApiToken.token_id == token_id)
            ).first()
            if found is None:
                raise _refused()
            row, account, org, parent_revoked = found
            if not _live(row.revoked_at, row.expires_at, parent_revoked, now):
                raise _refused()
            return Unverified(
                token_id, _actor_of(org, account), Scope(row.scope), row.id, row.secret_hash, key
            )

    def live(self, token_id: str) -> bool:
        """Whether the token of public id ``token_id`` is live now: neither it nor the
        token it was opened with revoked, and not expired."""
        with self.db.read() as session:
            row = session.execute(
                select(ApiToken.revoked_at, ApiToken.expires_at, _Parent.revoked_at)
                .outerjoin(_Parent, _Parent.id == ApiToken.parent_id)
                .where(ApiToken.token_id == token_id)
            ).first()
        return row is not None and _live(row[0], row[1], row[2], self.clock())

    def verify(self, unverified: Unverified, token: str) -> Authenticated:
        """Check ``token`` against its row's Argon2id hash; cache it when it matches."""
        with self._verifications_lock:
            self._verifications += 1
        try:
            self._hasher.verify(unverified.secret_hash, token)
        except (VerificationError, InvalidHashError):
            raise _refused() from None
        ttl = self.settings.token_cache_ttl_s
        if ttl > 0:
            self._verified.put(
                unverified.key,
                _Verified(unverified.actor, unverified.row_id, time.monotonic() + ttl),
            )
        return Authenticated(unverified.actor, unverified.scope)


def _live(
    revoked_at: datetime | None,
    expires_at: datetime,
    parent_revoked_at: datetime | None,
    now: datetime,
) -> bool:
    """Whether a token's row is live: neither it nor its parent revoked, and not expired
    (a session token never outlives its parent, see :meth:`Accounts.open_session`)."""
    return revoked_at is None and parent_revoked_at is None and expires_at > now


def _refused() -> Unauthorized:
    return Unauthorized(
        "the API token is not valid: unknown, mistyped, expired or revoked",
        hint="ask an operator for a new token (`entrepot account token ACCOUNT`)",
    )


def _token_info(row: ApiToken, account: str) -> TokenInfo:
    return TokenInfo(
        row.token_id,
        account,
        row.created_at,
        row.expires_at,
        row.revoked_at,
        Scope(row.scope),
        token_ref(row.id),
    )


def token_id_of(token: str) -> str | None:
    """The public id of a well-formed token, or None: the key to limit attempts by."""
    match = _TOKEN.fullmatch(token)
    return None if match is None else match.group(1)


def _role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidInput(
            f"unknown role {role!r}",
            hint=f"choose one of: {', '.join(Role)}",
        ) from None


def _require_admin(actor: Actor, what: str) -> None:
    if not actor.administers:
        raise Forbidden(
            f"{actor.name} may not {what}",
            hint="only an operator account (or the node's local CLI) may",
        )
