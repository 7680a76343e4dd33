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


def test_the_heads_read_from_the_headers_are_alembics() -> None:
    from alembic.script import ScriptDirectory

    from entrepot.db import _head_revisions, alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    assert _head_revisions() == frozenset(script.get_heads())


def test_the_revision_and_the_head_a_status_shows_are_alembics(tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    from entrepot.db import alembic_config, schema_head

    assert schema_head() == ScriptDirectory.from_config(alembic_config()).get_current_head()
    db = Database(f"sqlite:///{tmp_path / 'node.db'}")
    try:
        assert db.revision() is None
        db.upgrade()
        with db.engine.connect() as connection:
            stored = MigrationContext.configure(connection).get_current_revision()
        assert db.revision() == stored == schema_head()
    finally:
        db.dispose()


def test_a_header_names_its_revision_and_those_it_follows() -> None:
    from entrepot.db import _revision_header

    assert _revision_header('revision = "0002"\ndown_revision = "0001"\n') == ("0002", ("0001",))
    assert _revision_header("revision = 'a'  # first\ndown_revision = None\n") == ("a", ())
    merge = 'revision = "m"\ndown_revision = ("b", "c")\n'
    assert _revision_header(merge) == ("m", ("b", "c"))
    assert _revision_header('"""No revision here."""\n') is None
