"""Quoting for the SQL the engine package writes itself, in DuckDB's dialect."""

from __future__ import annotations

from sqlglot import exp


def ident(name: str) -> str:
    """``name`` as a quoted identifier."""
    return exp.to_identifier(name, quoted=True).sql("duckdb")


def literal(text: str) -> str:
    """``text`` as a string literal."""
    return exp.Literal.string(text).sql("duckdb")
