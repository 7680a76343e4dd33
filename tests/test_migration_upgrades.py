"""Migrations that change stored data upgrade an existing node's rows, on both databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from alembic import command
from sqlalchemy import DateTime, column, insert, select, table

from entrepot.db import Database, alembic_config
from pg import Cluster


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database with no schema at all: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'node.db'}")
        yield db
        db.dispose()
        return
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    name = "m_" + uuid.uuid4().hex[:16]
    with psycopg.connect(cluster.url(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    db = Database(cluster.url(name))
    yield db
    db.dispose()
    with psycopg.connect(cluster.url(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _migrate(db: Database, revision: str) -> None:
    with db.engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_vault_timestamps_become_naive_utc_at_the_same_instant(empty_db: Database) -> None:
    _migrate(empty_db, "0006")
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
    _migrate(empty_db, "0007")
    after = table("providers", column("created_at", DateTime()))
    with empty_db.engine.begin() as connection:
        [stored] = connection.execute(select(after.c.created_at)).scalars()
    assert stored == datetime(2026, 11, 15, 9, 0)


def test_every_provider_gets_its_organization(empty_db: Database) -> None:
    _migrate(empty_db, "0007")
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
    _migrate(empty_db, "0008")
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
