from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from entrepot.engine._registry import Engine, EngineOptions, Session, register
from entrepot.engine._sql import ident, literal
from entrepot.errors import Forbidden, LimitExceeded, NotFound

# Group keys whose range fits in this many bits get a perfect hash table (an array
# indexed by the key) instead of a hashed one. DuckDB's default (12) leaves dense
# unit keys out; at 10M rows and 2M units, 24 bits took the per-unit count from
# 1.6 to 0.76 CPU seconds. 26 bits covers 67M units; 32 is DuckDB's maximum.
_PERFECT_HASH_BITS = 26


@register
class DuckDBEngine(Engine):
    """The embedded default: one in-memory DuckDB database over the vault's Parquet
    files, each session a connection (cursor) of its own.

    DuckDB's sandbox settings (``allowed_directories``, ``enable_external_access``,
    ``lock_configuration``) hold for the whole database, not per connection, so they
    are set once here, before any session exists: no session ever runs unlocked, and
    none can read, write or load outside the allowed directories or change a setting.
    What a connection makes in the shared catalog (a table, an attached in-memory
    database) would be seen by every other one, so a session runs only queries
    (:meth:`DuckDBSession.execute`) and registers its views as temporary views, which
    belong to its connection alone and die with it. Opening a database costs about
    17 ms, a connection a few microseconds (DuckDB 2.0).
    """

    name = "duckdb"
    dialect = "duckdb"

    def __init__(self, options: EngineOptions) -> None:
        super().__init__(options)
        config: dict[str, str | bool | int | float | list[str]] = {
            "threads": options.threads,
            "memory_limit": options.memory_limit,
            "perfect_ht_threshold": _PERFECT_HASH_BITS,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
        if options.temp_directory is not None:
            config["temp_directory"] = str(options.temp_directory)
        self._allowed = tuple(Path(d).resolve() for d in options.allowed_directories)
        self._db = duckdb.connect(":memory:", config=config)
        dirs = ", ".join(literal(str(d) + "/") for d in self._allowed)
        self._db.execute(f"SET allowed_directories = [{dirs}]")
        self._db.execute("SET enable_external_access = false")
        self._db.execute("SET lock_configuration = true")

    def session(self) -> DuckDBSession:
        return DuckDBSession(self._db.cursor(), self._allowed, self.options.timeout_s)

    def close(self) -> None:
        self._db.close()


class DuckDBSession(Session):
    """One connection of a :class:`DuckDBEngine`'s database."""

    dialect = "duckdb"

    def __init__(
        self, conn: duckdb.DuckDBPyConnection, allowed: tuple[Path, ...], timeout_s: float
    ) -> None:
        self._conn = conn
        self._allowed = allowed
        self.timeout_s = timeout_s

    def register_parquet(self, view: str, paths: Sequence[Path]) -> None:
        files = [Path(p).resolve() for p in paths]
        for file in files:
            if not any(file.is_relative_to(d) for d in self._allowed):
                raise Forbidden(
                    f"cannot register {file} as view {view!r}: it is outside the "
                    "engine's allowed directories",
                    hint="register only files under the directories the engine was opened with",
                )
        listed = ", ".join(literal(str(f)) for f in files)
        self._conn.execute(
            f"CREATE OR REPLACE TEMP VIEW {ident(view)} AS SELECT * FROM read_parquet([{listed}])"
        )

    def register_arrow(self, view: str, table: pa.Table) -> None:
        # A connection's registered objects are its own: no other session sees them.
        self._conn.register(view, table)

    def columns(self, view: str) -> dict[str, str]:
        # DESCRIBE reads the Parquet footers only, not the rows.
        described = self._conn.sql(f"DESCRIBE {ident(view)}").fetchall()
        return {str(row[0]): str(row[1]).upper() for row in described}

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        statements = self._conn.extract_statements(sql)
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            raise Forbidden(
                "a session runs one query (SELECT) at a time and nothing else",
                hint="statements that write, attach, load or set anything are refused",
            )
        timer = threading.Timer(self.timeout_s, self._conn.interrupt)
        timer.start()
        try:
            relation = self._conn.sql(sql, params=params)
            return relation.to_arrow_table() if relation is not None else pa.table({})
        except duckdb.InterruptException:
            raise LimitExceeded(
                f"the query ran longer than {self.timeout_s:g} s and was stopped",
                setting="query_timeout_s",
                hint="simplify the query, or raise ENTREPOT_QUERY_TIMEOUT_S",
            ) from None
        except duckdb.CatalogException as missing:
            raise NotFound(
                f"the session holds no such view or function: {missing}",
                hint="a session sees only the views it registered itself",
            ) from None
        except duckdb.PermissionException as refused:
            raise Forbidden(
                f"the engine's sandbox refused the query: {refused}",
                hint="a session reads only the files of the views it registered",
            ) from None
        finally:
            timer.cancel()

    def close(self) -> None:
        # Temporary views belong to the connection: closing it drops them.
        self._conn.close()
