"""Analytical engines: one protocol, backends registered by name.

A node holds one long-lived engine, sandboxed when it opens, and runs each query in
a session of its own: the vault registers a view per dataset version in the session,
the privacy layer runs checked, rewritten SQL against it, and the session's views are
dropped when it ends. SQL is written in sqlglot's DuckDB dialect and
transpiled to the backend's own (``Engine.dialect``). DuckDB is the embedded default;
Spark (:mod:`entrepot.engine.spark`) runs the same SQL where the data outgrows a node.
"""

from entrepot.engine._registry import Engine, EngineOptions, Session, get, names, register
from entrepot.engine.duckdb import DuckDBEngine, DuckDBSession
from entrepot.engine.spark import SparkEngine
from entrepot.engine.units import (
    HIDDEN_COLUMNS,
    HIDDEN_PREFIX,
    UNIT_KEY,
    UNIT_ROWS,
    is_hidden,
    write_unit_columns,
)

__all__ = [
    "HIDDEN_COLUMNS",
    "HIDDEN_PREFIX",
    "UNIT_KEY",
    "UNIT_ROWS",
    "DuckDBEngine",
    "DuckDBSession",
    "Engine",
    "EngineOptions",
    "Session",
    "SparkEngine",
    "get",
    "is_hidden",
    "names",
    "register",
    "write_unit_columns",
]
