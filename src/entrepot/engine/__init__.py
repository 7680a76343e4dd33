"""Analytical engines: one protocol, backends registered by name.

The vault registers a view per dataset version; the privacy layer runs checked,
rewritten SQL against those views. SQL is written in sqlglot's DuckDB dialect and
transpiled to the backend's own (``Engine.dialect``).
"""

from entrepot.engine._registry import Engine, get, names, register
from entrepot.engine.duckdb import DuckDBEngine

__all__ = ["DuckDBEngine", "Engine", "get", "names", "register"]
