"""Analytical engines: one protocol, backends registered by name.

The vault registers a view per dataset version; the privacy layer runs checked,
rewritten SQL against those views. SQL is written in sqlglot's DuckDB dialect and
transpiled to the backend's own (``Engine.dialect``).
"""

from entrepot.engine._registry import Engine, get, names, register
from entrepot.engine.duckdb import DuckDBEngine
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
    "Engine",
    "get",
    "is_hidden",
    "names",
    "register",
    "write_unit_columns",
]
