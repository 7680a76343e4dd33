"""Migrate a test database to one revision, as an older node's database stood."""

from __future__ import annotations

from alembic import command

from entrepot.db import Database, alembic_config

__all__ = ["migrate"]


def migrate(db: Database, revision: str) -> None:
    """Upgrade ``db`` to ``revision`` (not further) in one transaction."""
    with db.engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
