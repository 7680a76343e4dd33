"""The checked query: what the consumer asked for, in a shape the rewrite can trust.

The checker builds a :class:`Query` only after every rule has passed, so its group
keys are allowed dimensions or truncated time columns, its aggregates are allowed
functions over allowed columns, and its filter holds only comparisons of allowed
columns with literals.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

__all__ = ["TIME_UNITS", "Aggregate", "GroupKey", "Query"]

# Date truncations a time column may be grouped by; finer ones (hour, minute) would
# make nearly every group a single person's visit.
TIME_UNITS = ("year", "quarter", "month", "week", "day")


@dataclass(frozen=True)
class GroupKey:
    """One output key column: a dimension, or a time column truncated to ``unit``."""

    name: str
    column: str
    unit: str | None = None


@dataclass(frozen=True)
class Aggregate:
    """One output aggregate: ``count`` (of rows, or of a column's non-null values when
    ``column`` is set), ``count_distinct`` (of privacy units), ``sum``, ``avg`` or
    ``quantile`` (of ``column`` at ``level``, 0.5 for a median)."""

    name: str
    function: str
    column: str | None = None
    level: float | None = None


@dataclass(frozen=True)
class Query:
    """A query the checker accepted; ``normalized`` is its canonical SQL text."""

    dataset: str
    keys: tuple[GroupKey, ...]
    aggregates: tuple[Aggregate, ...]
    where: exp.Expr | None
    output: tuple[str, ...]
    normalized: str
