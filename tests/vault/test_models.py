from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from entrepot.db import Base, import_models
from entrepot.exchange.node import Node

_VAULT_TABLES = {"providers", "datasets", "versions"}


def test_migrations_create_exactly_the_vault_models(node: Node) -> None:
    import_models()
    with node.db.engine.connect() as connection:
        assert set(inspect(connection).get_table_names()) >= _VAULT_TABLES
        context = MigrationContext.configure(connection)
        differences = [
            diff for diff in compare_metadata(context, Base.metadata) if _touches_vault(diff)
        ]
    assert differences == []


def _touches_vault(diff: object) -> bool:
    text = repr(diff)
    return any(f"'{table}'" in text or f"{table}." in text for table in _VAULT_TABLES)
