"""The public output groups of a query: every combination of its keys' public values.

A dimension's values come from its public code list (or its enum), a truncated time
column's from the standard's public range, both narrowed by the policy's public
coverage and by what the query text itself says (``WHERE visit_date >= DATE
'2025-01-01'``, ``district IN (...)``). A query whose filter or groups lie wholly
outside the coverage is refused under rule ``coverage``. Nothing here looks at the
data, so empty groups appear too and the set of keys in an answer reveals nothing
about who is in the dataset.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlglot import exp

from entrepot.errors import InvalidInput, PolicyViolation
from entrepot.privacy.coverage import Coverage
from entrepot.privacy.sql.query import GroupKey, Query
from entrepot.standards.schema import Standard

__all__ = ["Codes", "enumerate_groups", "normalize"]

Codes = Callable[[str], Sequence[Any]] | Mapping[str, Sequence[Any]] | None


def normalize(value: Any) -> str:
    """The text a key value is matched by, the same for engine and code-list values."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def enumerate_groups(
    query: Query,
    standard: Standard,
    codes: Codes,
    *,
    limit: int,
    coverage: Coverage | None = None,
) -> list[tuple[Any, ...]]:
    """Every output group of ``query`` within ``coverage``, in a stable order.

    Refuses more than ``limit`` groups (rule ``max_groups``), and a filter or a group
    key that leaves nothing of the coverage (rule ``coverage``).
    """
    coverage = coverage or Coverage()
    conjuncts = _conjuncts(query.where)
    _check_filter(conjuncts, coverage)
    axes = [_values(key, standard, codes, conjuncts, coverage) for key in query.keys]
    total = 1
    for axis in axes:
        total *= len(axis)
    if total > limit:
        raise PolicyViolation(
            f"the query has {total} output groups, more than the {limit} the policy allows",
            rule="max_groups",
            hint="group by fewer or coarser keys (e.g. date_trunc('year', ...)), "
            "or narrow the time range in WHERE",
        )
    return list(itertools.product(*axes))


def _conjuncts(where: exp.Expr | None) -> list[exp.Expr]:
    if where is None:
        return []
    if isinstance(where, exp.Paren):
        return _conjuncts(where.this)
    if isinstance(where, exp.And):
        return _conjuncts(where.this) + _conjuncts(where.expression)
    return [where]


def _outside(coverage: Coverage, column: str, asked: str) -> PolicyViolation:
    return PolicyViolation(
        f"the query asks about {asked}, wholly outside the dataset's public coverage "
        f"({coverage.describe(column)})",
        rule="coverage",
        hint=f"ask within the coverage; `entrepot policy show` gives it ({column} "
        "outside it has no public groups)",
    )


def _check_filter(conjuncts: list[exp.Expr], coverage: Coverage) -> None:
    """Refuse a WHERE whose top-level conditions on a covered column exclude all of it."""
    for column, first, last in coverage.periods:
        low, high = _narrow(column, dt.date.min, dt.date.max, conjuncts)
        if high < dt.date.fromisoformat(first) or low > dt.date.fromisoformat(last):
            start = "…" if low == dt.date.min else low.isoformat()
            end = "…" if high == dt.date.max else high.isoformat()
            raise _outside(coverage, column, f"{column} from {start} to {end}")
    for column, covered in coverage.codes:
        allowed = _allowed(column, conjuncts)
        if allowed is not None and not allowed & set(covered):
            raise _outside(coverage, column, f"{column} {', '.join(sorted(allowed))}")


def _values(
    key: GroupKey,
    standard: Standard,
    codes: Codes,
    conjuncts: list[exp.Expr],
    coverage: Coverage,
) -> list[Any]:
    field = standard.field(key.column)
    if key.unit is not None:
        low, high = _parse_date(field.minimum), _parse_date(field.maximum)
        if low is None or high is None:
            raise PolicyViolation(
                f"{key.column!r} has no public range in {standard.name}, so its buckets "
                "cannot be listed",
                rule="group_by_expression",
                hint="group by a dimension instead, or ask the standard's maintainers "
                "for a minimum and maximum",
            )
        period = coverage.period(key.column)
        if period is not None:
            low, high = max(low, period[0]), min(high, period[1])
        low, high = _narrow(key.column, low, high, conjuncts)
        buckets = _buckets(low, high, key.unit)
        if not buckets and period is not None:
            raise _outside(coverage, key.column, f"{key.column} outside it")
        return buckets
    if field.enum is not None:
        values: list[Any] = list(field.enum)
    elif field.codelist is not None:
        values = list(_lookup(codes, field.codelist))
    else:
        raise InvalidInput(
            f"{key.column!r} has neither a code list nor an enum in {standard.name}",
            hint="give the dimension a public code list",
        )
    covered = coverage.codes_of(key.column)
    if covered is not None:
        values = [v for v in values if normalize(v) in covered]
        if not values:
            raise _outside(coverage, key.column, f"the codes of {key.column} given to it")
    allowed = _allowed(key.column, conjuncts)
    if allowed is not None:
        values = [v for v in values if normalize(v) in allowed]
    return values


def _lookup(codes: Codes, name: str) -> Sequence[Any]:
    if codes is None:
        raise InvalidInput(
            f"the code list {name!r} is needed to list the groups, but no code lists were given",
            hint="pass codes= (a mapping or a function from code-list name to its codes)",
        )
    if isinstance(codes, Mapping):
        if name not in codes:
            raise InvalidInput(f"no code list named {name!r}", hint="add it to codes=")
        return codes[name]
    return codes(name)


def _column_of(node: exp.Expr) -> str | None:
    return node.name if isinstance(node, exp.Column) else None


def _literal_text(node: exp.Expr | None) -> str | None:
    if isinstance(node, exp.Cast):
        node = node.this
    if isinstance(node, exp.Literal):
        return node.name
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
        return "-" + node.this.name
    return None


def _allowed(column: str, conjuncts: list[exp.Expr]) -> set[str] | None:
    """The values a top-level ``=`` / ``IN`` in WHERE restricts ``column`` to."""
    allowed: set[str] | None = None
    for node in conjuncts:
        if isinstance(node, exp.EQ) and _column_of(node.this) == column:
            values = [node.expression]
        elif isinstance(node, exp.In) and _column_of(node.this) == column:
            values = list(node.expressions)
        else:
            continue
        texts = {_literal_text(v) for v in values}
        if None in texts:
            continue
        found = {t for t in texts if t is not None}
        allowed = found if allowed is None else allowed & found
    return allowed


def _parse_date(value: Any) -> dt.date | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def _narrow(
    column: str, low: dt.date, high: dt.date, conjuncts: list[exp.Expr]
) -> tuple[dt.date, dt.date]:
    for node in conjuncts:
        if isinstance(node, exp.Between) and _column_of(node.this) == column:
            start = _parse_date(_literal_text(node.args.get("low")))
            end = _parse_date(_literal_text(node.args.get("high")))
            low = max(low, start) if start else low
            high = min(high, end) if end else high
        elif isinstance(node, exp.GT | exp.GTE) and _column_of(node.this) == column:
            start = _parse_date(_literal_text(node.expression))
            low = max(low, start) if start else low
        elif isinstance(node, exp.LT | exp.LTE) and _column_of(node.this) == column:
            end = _parse_date(_literal_text(node.expression))
            high = min(high, end) if end else high
    return low, high


def _truncate(day: dt.date, unit: str) -> dt.date:
    if unit == "year":
        return day.replace(month=1, day=1)
    if unit == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    if unit == "month":
        return day.replace(day=1)
    if unit == "week":
        return day - dt.timedelta(days=day.weekday())
    return day


def _next(bucket: dt.date, unit: str) -> dt.date:
    if unit in ("year", "quarter", "month"):
        months = {"year": 12, "quarter": 3, "month": 1}[unit]
        index = bucket.year * 12 + bucket.month - 1 + months
        return dt.date(index // 12, index % 12 + 1, 1)
    return bucket + dt.timedelta(days=7 if unit == "week" else 1)


def _buckets(low: dt.date, high: dt.date, unit: str) -> list[dt.date]:
    buckets = []
    bucket = _truncate(low, unit)
    while bucket <= high:
        buckets.append(bucket)
        bucket = _next(bucket, unit)
    return buckets
