"""Migrations that change stored data upgrade an existing node's rows, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime, column, insert, select, table

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
