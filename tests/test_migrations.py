"""The Alembic migrations build exactly the schema the models declare."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from entrepot.db import Base, Database, import_models


def _declared(name: str | None, type_: str, _parents: object) -> bool:
    # The full-text index is an FTS5 virtual table (and its shadow tables), which
    # SQLAlchemy models cannot declare; its migration owns it alone.
    return not (type_ == "table" and name is not None and name.startswith("catalog_fts"))


def test_migrations_match_the_models(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'node.db'}")
    db.upgrade()
    import_models()
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_name": _declared})
        diff = compare_metadata(context, Base.metadata)
    db.dispose()
    assert diff == []


def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'node.db'}")
    db.upgrade()
    db.upgrade()
    db.dispose()
