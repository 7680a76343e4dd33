"""Catalog search: a full-text index over datasets, kept in sync by triggers.

SQLite gets an FTS5 table ``catalog_fts`` (rowid = dataset id, one column per
searchable part so ranking can weigh them); PostgreSQL a ``catalog_search`` table
holding a weighted tsvector per dataset with a GIN index. Triggers on ``datasets``
and ``providers`` keep either in step inside the writing transaction, so whatever
writes a dataset (a publish, a catalog sync) can never leave the index stale.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Column names and their titles and descriptions, from the Table Schema document.
_SQLITE_COLUMNS = (
    "(SELECT group_concat(replace(coalesce(json_extract(f.value, '$.name'), ''), '_', ' ')"
    " || ' ' || coalesce(json_extract(f.value, '$.title'), '')"
    " || ' ' || coalesce(json_extract(f.value, '$.description'), ''), ' ')"
    " FROM json_each(d.schema, '$.fields') AS f)"
)
_SQLITE_FILL = (
    "INSERT INTO catalog_fts (rowid, title, description, provider, standard, columns) "
    "SELECT d.id, d.title, d.description, p.slug || ' ' || p.name, "
    "d.standard || ' ' || coalesce(json_extract(d.schema, '$.title'), '') "
    "|| ' ' || coalesce(json_extract(d.schema, '$.description'), ''), "
    f"coalesce({_SQLITE_COLUMNS}, '') "
    "FROM datasets AS d JOIN providers AS p ON p.id = d.provider_id WHERE {where};"
)

# PostgreSQL's parser reads "ICD-10" as "icd" and "-10"; searches split on punctuation
# (like FTS5's unicode61 tokenizer), so the document must be split the same way.
_PG_WORDS = """
CREATE FUNCTION catalog_search_words(value text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT regexp_replace(coalesce(value, ''), '[[:punct:]]+', ' ', 'g')
$$;
"""
_PG_DOCUMENT = """
CREATE FUNCTION catalog_search_document(target integer) RETURNS tsvector
LANGUAGE sql STABLE AS $$
  SELECT setweight(to_tsvector('english', catalog_search_words(d.title)), 'A')
      || setweight(to_tsvector('english', catalog_search_words(d.description)), 'B')
      || setweight(to_tsvector('english', catalog_search_words(p.slug || ' ' || p.name)), 'C')
      || setweight(to_tsvector('english', catalog_search_words(d.standard || ' '
           || coalesce(d.schema ->> 'title', '') || ' '
           || coalesce(d.schema ->> 'description', ''))), 'C')
      || setweight(to_tsvector('english', catalog_search_words((
           SELECT string_agg(coalesce(f ->> 'name', '') || ' '
                  || coalesce(f ->> 'title', '') || ' '
                  || coalesce(f ->> 'description', ''), ' ')
           FROM json_array_elements(d.schema -> 'fields') AS f))), 'D')
  FROM datasets AS d JOIN providers AS p ON p.id = d.provider_id
  WHERE d.id = target
$$;
"""
_PG_SYNC = """
CREATE FUNCTION catalog_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_TABLE_NAME = 'datasets' THEN
    INSERT INTO catalog_search (dataset_id, document)
    VALUES (NEW.id, catalog_search_document(NEW.id))
    ON CONFLICT (dataset_id) DO UPDATE SET document = EXCLUDED.document;
  ELSE
    UPDATE catalog_search SET document = catalog_search_document(dataset_id)
    WHERE dataset_id IN (SELECT id FROM datasets WHERE provider_id = NEW.id);
  END IF;
  RETURN NEW;
END
$$;
"""


def _upgrade_sqlite() -> None:
    op.execute(
        "CREATE VIRTUAL TABLE catalog_fts USING fts5("
        "title, description, provider, standard, columns, "
        "tokenize = 'porter unicode61 remove_diacritics 2')"
    )
    op.execute(_SQLITE_FILL.format(where="1 = 1"))
    op.execute(
        "CREATE TRIGGER catalog_fts_insert AFTER INSERT ON datasets BEGIN "
        + _SQLITE_FILL.format(where="d.id = new.id")
        + " END"
    )
    op.execute(
        "CREATE TRIGGER catalog_fts_update AFTER UPDATE ON datasets BEGIN "
        "DELETE FROM catalog_fts WHERE rowid = old.id; "
        + _SQLITE_FILL.format(where="d.id = new.id")
        + " END"
    )
    op.execute(
        "CREATE TRIGGER catalog_fts_delete AFTER DELETE ON datasets BEGIN "
        "DELETE FROM catalog_fts WHERE rowid = old.id; END"
    )
    op.execute(
        "CREATE TRIGGER catalog_fts_provider AFTER UPDATE OF slug, name ON providers BEGIN "
        "DELETE FROM catalog_fts WHERE rowid IN "
        "(SELECT id FROM datasets WHERE provider_id = new.id); "
        + _SQLITE_FILL.format(where="d.provider_id = new.id")
        + " END"
    )


def _upgrade_postgresql() -> None:
    op.execute(
        "CREATE TABLE catalog_search ("
        "dataset_id integer PRIMARY KEY REFERENCES datasets (id) ON DELETE CASCADE, "
        "document tsvector NOT NULL)"
    )
    op.execute("CREATE INDEX ix_catalog_search_document ON catalog_search USING gin (document)")
    op.execute(_PG_WORDS)
    op.execute(_PG_DOCUMENT)
    op.execute(_PG_SYNC)
    op.execute(
        "CREATE TRIGGER catalog_search_datasets AFTER INSERT OR UPDATE ON datasets "
        "FOR EACH ROW EXECUTE FUNCTION catalog_search_sync()"
    )
    op.execute(
        "CREATE TRIGGER catalog_search_providers AFTER UPDATE OF slug, name ON providers "
        "FOR EACH ROW EXECUTE FUNCTION catalog_search_sync()"
    )
    op.execute(
        "INSERT INTO catalog_search (dataset_id, document) "
        "SELECT id, catalog_search_document(id) FROM datasets"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
    else:
        _upgrade_sqlite()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER catalog_search_providers ON providers")
        op.execute("DROP TRIGGER catalog_search_datasets ON datasets")
        op.execute("DROP FUNCTION catalog_search_sync()")
        op.execute("DROP FUNCTION catalog_search_document(integer)")
        op.execute("DROP FUNCTION catalog_search_words(text)")
        op.execute("DROP TABLE catalog_search")
        return
    for trigger in ("provider", "delete", "update", "insert"):
        op.execute(f"DROP TRIGGER catalog_fts_{trigger}")
    op.execute("DROP TABLE catalog_fts")
