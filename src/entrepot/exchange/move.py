"""Moving a node to another metadata database (SQLite to PostgreSQL, typically).

The vaults, the transparency log and the keys stay in the home; only the metadata
moves. :func:`move_node` takes these steps, and stops at the first that fails,
leaving the node on its old database:

1. open the node on its recorded database (which brings its schema up to date);
2. refuse a target that is the same database, or that already holds rows;
3. migrate the target's schema to the same revision;
4. copy every table, parents before children and each by primary key, from one
   snapshot of the source (on SQLite a ``BEGIN IMMEDIATE`` transaction, so no other
   process writes while it is read) into one transaction on the target, then set
   the target's id sequences past the copied ids (the search index tables are
   filled by the target's own triggers);
5. count every table on both sides;
6. record the target in the home: from then on the node opens there.

The old SQLite file is left where it was, untouched, as a copy to go back to.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, func, select, text

from entrepot.db import (
    METADATA,
    Database,
    import_models,
    same_database,
    schema_head,
    shown,
)
from entrepot.errors import Conflict, InvalidInput, NotFound, StorageCorrupt
from entrepot.exchange.node import Node, record_database, recorded_database
from entrepot.settings import Settings

__all__ = ["Moved", "Status", "move_node", "status"]

# Rows read and written per round trip: bounded memory whatever the table's size.
_BATCH = 1000


@dataclass(frozen=True)
class Status:
    """Which database a node uses, and whether its schema is behind this version's."""

    home: str
    database: str
    backend: str
    revision: str | None
    head: str

    @property
    def behind(self) -> bool:
        return self.revision != self.head

    def to_dict(self) -> dict[str, Any]:
        return {
            "home": self.home,
            "database": self.database,
            "backend": self.backend,
            "revision": self.revision,
            "head": self.head,
            "behind": self.behind,
        }


@dataclass(frozen=True)
class Moved:
    """A finished move: where from, where to, and the rows of each table."""

    source: str
    target: str
    rows: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.source, "to": self.target, "rows": self.rows}


def status(settings: Settings) -> Status:
    """The node's database and schema revision, read without migrating anything."""
    database = Database(_url_of(settings))
    try:
        return Status(
            home=str(settings.home),
            database=shown(database.url),
            backend=database.engine.dialect.name,
            revision=database.revision(),
            head=schema_head(),
        )
    finally:
        database.dispose()


def _url_of(settings: Settings) -> str:
    """The database the node at ``settings.home`` opens, refused as opening it would be."""
    if not (settings.home / "keys" / "node.key").exists():
        raise NotFound(
            f"no entrepot node at {settings.home}",
            hint="point --home / ENTREPOT_HOME at an existing node",
        )
    recorded = recorded_database(settings.home)
    if recorded is None:
        return settings.db_url
    if settings.db is not None and not same_database(recorded, settings.db):
        raise InvalidInput(
            f"the node at {settings.home} uses the database {recorded}, not {shown(settings.db)}",
            hint="leave out --db / ENTREPOT_DB, or give its own URL",
            setting="db",
        )
    return settings.db or recorded


def _tables() -> list[Table]:
    import_models()
    return list(METADATA.sorted_tables)


def _count(connection: Connection, table: Table) -> int:
    return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def _rows(connection: Connection, table: Table) -> Iterator[list[dict[str, Any]]]:
    result = connection.execute(select(table).order_by(*table.primary_key.columns))
    for batch in result.mappings().partitions(_BATCH):
        yield [dict(row) for row in batch]


def _check_empty(target: Database, tables: list[Table]) -> None:
    from sqlalchemy import inspect

    present = set(inspect(target.engine).get_table_names())
    with target.engine.connect() as connection:
        for table in tables:
            if table.name in present and _count(connection, table):
                raise Conflict(
                    f"{shown(target.url)} already holds entrepot data (table {table.name})",
                    hint="move a node into an empty database: create a new one "
                    "(createdb) or drop this one's tables first",
                )


def _advance_sequences(connection: Connection, tables: list[Table]) -> None:
    """Set each PostgreSQL id sequence past the ids copied in, so new rows get new ids."""
    for table in tables:
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or not keys[0].autoincrement or keys[0].type.python_type is not int:
            continue
        connection.execute(
            text(
                "SELECT setval(pg_get_serial_sequence(:table, :column), "
                f"coalesce(max({keys[0].name}), 0) + 1, false) FROM {table.name}"
            ),
            {"table": table.name, "column": keys[0].name},
        )


def move_node(settings: Settings, target_url: str) -> Moved:
    """Copy the node's metadata to ``target_url``, check it, and open there from now on."""
    node = Node.open(settings)
    source = node.db
    try:
        if same_database(source.url, target_url):
            raise InvalidInput(
                f"the node at {settings.home} already uses {shown(target_url)}",
                hint="name another database to move to",
            )
        tables = _tables()
        target = Database(target_url)
        try:
            _check_empty(target, tables)
            target.upgrade()
            copied = _copy(source, target, tables)
            _verify(target, tables, copied)
        finally:
            target.dispose()
        record_database(settings.home, target_url)
        return Moved(shown(source.url), shown(target_url), copied)
    finally:
        node.close()


def _copy(source: Database, target: Database, tables: list[Table]) -> dict[str, int]:
    copied: dict[str, int] = {}
    with source.write() as snapshot, target.engine.begin() as writing:
        reading = snapshot.connection()
        for table in tables:
            copied[table.name] = _count(reading, table)
            for batch in _rows(reading, table):
                writing.execute(table.insert(), batch)
        if writing.dialect.name == "postgresql":
            _advance_sequences(writing, tables)
    return copied


def _verify(target: Database, tables: list[Table], copied: dict[str, int]) -> None:
    with target.engine.connect() as connection:
        for table in tables:
            found = _count(connection, table)
            if found != copied[table.name]:
                raise StorageCorrupt(
                    f"table {table.name}: {copied[table.name]} rows copied, "
                    f"{found} in {shown(target.url)}",
                    hint="the node still uses its old database; empty the target and move again",
                )
