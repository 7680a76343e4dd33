"""Migrations that change stored data upgrade an existing node's rows, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import JSON, DateTime, column, insert, select, table
from sqlalchemy.exc import IntegrityError

from entrepot.db import Database
from schema_steps import migrate


def test_vault_timestamps_become_naive_utc_at_the_same_instant(empty_db: Database) -> None:
    migrate(empty_db, "0006")
    # As the vault wrote them before: aware, into a column declared with a time zone.
    before = table(
        "providers", column("slug"), column("name"), column("created_at", DateTime(True))
    )
    with empty_db.engine.begin() as connection:
        connection.execute(
            insert(before).values(
                slug="p", name="P", created_at=datetime(2026, 11, 15, 9, tzinfo=UTC)
            )
        )
    migrate(empty_db, "0007")
    after = table("providers", column("created_at", DateTime()))
    with empty_db.engine.begin() as connection:
        [stored] = connection.execute(select(after.c.created_at)).scalars()
    assert stored == datetime(2026, 11, 15, 9, 0)


def test_every_provider_gets_its_organization(empty_db: Database) -> None:
    migrate(empty_db, "0007")
    created = datetime(2026, 11, 15, 9, 0)
    providers = table(
        "providers", column("id"), column("slug"), column("name"), column("created_at", DateTime())
    )
    organizations = table(
        "organizations",
        column("slug"),
        column("name"),
        column("kind"),
        column("provider_id"),
        column("created_at", DateTime()),
    )
    with empty_db.engine.begin() as connection:
        connection.execute(
            insert(providers),
            [
                {"id": 1, "slug": "never-used", "name": "Never Used", "created_at": created},
                {"id": 2, "slug": "used", "name": "Used", "created_at": created},
                {"id": 3, "slug": "clash", "name": "Clash", "created_at": created},
            ],
        )
        connection.execute(
            insert(organizations).values(created_at=created),
            [
                # As first use made it before, for provider 2.
                {"slug": "used", "name": "Used", "kind": "provider", "provider_id": 2},
                {
                    "slug": "clash",
                    "name": "Clash Consumer",
                    "kind": "consumer",
                    "provider_id": None,
                },
            ],
        )
    migrate(empty_db, "0008")
    with empty_db.engine.begin() as connection:
        rows = connection.execute(
            select(
                organizations.c.slug,
                organizations.c.name,
                organizations.c.kind,
                organizations.c.provider_id,
                organizations.c.created_at,
            ).order_by(organizations.c.slug)
        ).all()
    assert [tuple(row) for row in rows] == [
        ("clash", "Clash Consumer", "consumer", None, created),
        ("never-used", "Never Used", "provider", 1, created),
        ("used", "Used", "provider", 2, created),
    ]


def test_every_earlier_bound_estimates_the_95th_percentile(empty_db: Database) -> None:
    migrate(empty_db, "0020")
    at = datetime(2026, 11, 15, 9, 0)
    providers = table(
        "providers", column("id"), column("slug"), column("name"), column("created_at")
    )
    datasets = table(
        "datasets",
        *(column(name) for name in ("id", "provider_id", "slug", "title", "standard", "schema")),
        column("description"),
        column("created_at"),
        column("updated_at"),
    )
    text = ("number", "title", "path", "sha256", "standard_version")
    versions = table(
        "versions",
        *(column(name) for name in ("dataset_id", *text, "size_bytes", "rows", "rows_rejected")),
        column("report", JSON()),
        column("quality", JSON()),
        column("created_at"),
        column("commitment_key"),
        column("unit_bound"),
        column("unit_level"),
    )
    with empty_db.engine.begin() as connection:
        connection.execute(insert(providers).values(id=1, slug="p", name="P", created_at=at))
        connection.execute(
            insert(datasets).values(
                id=1,
                provider_id=1,
                slug="d",
                title="D",
                standard="health.visit",
                schema="{}",
                description="",
                created_at=at,
                updated_at=at,
            )
        )
        common = {"dataset_id": 1, "title": "D", "sha256": "0" * 64, "standard_version": "1.0"}
        common |= {"commitment_key": bytes(32)}
        common |= {"size_bytes": 1, "rows": 1, "rows_rejected": 0, "report": {}, "quality": {}}
        connection.execute(
            insert(versions).values(created_at=at, **common),
            [
                {"number": 1, "path": "1.parquet", "unit_bound": 11},
                {"number": 2, "path": "2.parquet", "unit_bound": None},
            ],
        )
    migrate(empty_db, "0021")
    with empty_db.engine.begin() as connection:
        rows = connection.execute(
            select(versions.c.number, versions.c.unit_level).order_by(versions.c.number)
        ).all()
    # bounds estimated before levels were chosen were all the 95th; no bound, no level
    assert [tuple(row) for row in rows] == [(1, 0.95), (2, None)]


def test_every_earlier_release_is_bound_to_the_grant_it_was_made_under(
    empty_db: Database,
) -> None:
    migrate(empty_db, "0022")
    day = datetime(2026, 11, 15)
    providers = table(
        "providers", column("id"), column("slug"), column("name"), column("created_at")
    )
    organizations = table(
        "organizations",
        *(column(name) for name in ("id", "slug", "name", "kind")),
        column("created_at"),
    )
    datasets = table(
        "datasets",
        *(column(name) for name in ("id", "provider_id", "slug", "title", "standard", "schema")),
        column("description"),
        column("created_at"),
        column("updated_at"),
    )
    terms = ("consumer_id", "dataset_id", "purpose", "epsilon_nano", "state", "created_by")
    requests = table(
        "access_requests",
        *(column(name) for name in ("id", *terms, "note", "valid_from", "valid_until")),
        column("actions", JSON()),
        column("created_at", DateTime()),
    )
    grants = table(
        "grants",
        *(column(name) for name in ("id", "request_id", *terms, "currency")),
        *(column(name) for name in ("price_per_query_cents", "price_per_epsilon_cents")),
        column("actions", JSON()),
        column("duties", JSON()),
        column("valid_from"),
        column("valid_until"),
        column("created_at", DateTime()),
    )
    made = ("id", "name", "dataset_id", "version", "consumer_id", "kind", "state", "rows")
    releases = table(
        "releases",
        *(column(name) for name in (*made, "size_bytes", "sha256", "epsilon", "created_by")),
        column("spec", JSON()),
        column("report", JSON()),
        column("created_at", DateTime()),
    )
    with empty_db.engine.begin() as connection:
        connection.execute(insert(providers).values(id=1, slug="p", name="P", created_at=day))
        connection.execute(
            insert(organizations).values(kind="consumer", created_at=day),
            [{"id": 1, "slug": "bureau", "name": "B"}, {"id": 2, "slug": "other", "name": "O"}],
        )
        connection.execute(
            insert(datasets).values(
                id=1,
                provider_id=1,
                slug="d",
                title="D",
                standard="health.visit",
                schema="{}",
                description="",
                created_at=day,
                updated_at=day,
            )
        )
        common = {"dataset_id": 1, "purpose": "research", "epsilon_nano": 10**9}
        common |= {"actions": ["release-download"], "created_by": "org:p"}
        common |= {"valid_from": day, "valid_until": datetime(2027, 1, 1)}
        # GRANT-1 (revoked at 11:00), then GRANT-2 (in force), both of the bureau.
        connection.execute(
            insert(requests).values(consumer_id=1, state="granted", note="", **common),
            [{"id": 1, "created_at": day.replace(hour=8)}, {"id": 2, "created_at": day}],
        )
        connection.execute(
            insert(grants).values(
                consumer_id=1,
                currency="EUR",
                duties=[],
                price_per_query_cents=0,
                price_per_epsilon_cents=0,
                **common,
            ),
            [
                {"id": 1, "request_id": 1, "state": "revoked", "created_at": day.replace(hour=9)},
                {"id": 2, "request_id": 2, "state": "granted", "created_at": day.replace(hour=12)},
            ],
        )
        release = {"dataset_id": 1, "version": 1, "kind": "anonymized", "state": "active"}
        release |= {"spec": {}, "report": {}, "rows": 1, "size_bytes": 1, "sha256": "0" * 64}
        release |= {"epsilon": 0.0, "created_by": "org:p"}
        connection.execute(
            insert(releases).values(**release),
            [
                {"id": 1, "name": "a", "consumer_id": 1, "created_at": day.replace(hour=10)},
                {"id": 2, "name": "b", "consumer_id": 1, "created_at": day.replace(hour=13)},
                # Made for a consumer no grant was made for before it: bound to none.
                {"id": 3, "name": "c", "consumer_id": 2, "created_at": day.replace(hour=10)},
            ],
        )
    migrate(empty_db, "0023")
    bound = table("releases", column("id"), column("grant_id"), column("revoked_reason"))
    with empty_db.engine.begin() as connection:
        rows = connection.execute(
            select(bound.c.id, bound.c.grant_id, bound.c.revoked_reason).order_by(bound.c.id)
        ).all()
    # The release made under the revoked grant stays bound to it, not to the next one.
    assert [tuple(row) for row in rows] == [(1, 1, None), (2, 2, None), (3, None, None)]


def test_every_earlier_token_keeps_its_full_scope(empty_db: Database) -> None:
    migrate(empty_db, "0023")
    day = datetime(2026, 11, 15)
    organizations = table(
        "organizations", *(column(name) for name in ("id", "slug", "name", "kind", "created_at"))
    )
    accounts = table(
        "accounts", *(column(name) for name in ("id", "name", "org_id", "role", "created_at"))
    )
    made = ("id", "token_id", "account_id", "secret_hash", "created_at", "expires_at")
    tokens = table("api_tokens", *(column(name) for name in (*made, "parent_id")))
    with empty_db.engine.begin() as connection:
        connection.execute(
            insert(organizations).values(
                id=1, slug="bureau", name="B", kind="consumer", created_at=day
            )
        )
        connection.execute(
            insert(accounts).values(id=1, name="bureau", org_id=1, role="consumer", created_at=day)
        )
        connection.execute(
            insert(tokens).values(
                account_id=1, secret_hash="$argon2id$", created_at=day, expires_at=day
            ),
            [
                # An API token (a share profile's, as they were made), and a portal session.
                {"id": 1, "token_id": "0" * 12, "parent_id": None},
                {"id": 2, "token_id": "1" * 12, "parent_id": 1},
            ],
        )
    migrate(empty_db, "0024")
    scoped = table("api_tokens", *(column(name) for name in (*made, "scope")))
    with empty_db.engine.begin() as connection:
        rows = connection.execute(select(scoped.c.id, scoped.c.scope).order_by(scoped.c.id)).all()
    assert [tuple(row) for row in rows] == [(1, "full"), (2, "full")]
    # Each new row names its scope, one of the two.
    for scope in (None, "admin"):
        with pytest.raises(IntegrityError), empty_db.engine.begin() as connection:
            connection.execute(
                insert(scoped).values(
                    id=3,
                    token_id="2" * 12,
                    account_id=1,
                    secret_hash="$argon2id$",
                    created_at=day,
                    expires_at=day,
                    scope=scope,
                )
            )
