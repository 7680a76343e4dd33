"""Name resolution for the checker: columns, aggregates, group keys, the filter.

The rules in :mod:`entrepot.privacy.sql.rules` call these methods; each either
returns the resolved piece or raises :class:`PolicyViolation` with the rule name.
"""

from __future__ import annotations

import datetime as dt
import math

from sqlglot import exp

from entrepot.errors import PolicyViolation
from entrepot.privacy.policy import Policy
from entrepot.privacy.sql._words import Source
from entrepot.privacy.sql.query import TIME_UNITS, Aggregate, GroupKey, Query
from entrepot.standards.schema import Field, Role, Standard

# The spellings of a continuous quantile DuckDB parses: MEDIAN(x), QUANTILE_CONT(x, q)
# (also written PERCENTILE_CONT(x, q)) and PERCENTILE_CONT(q) WITHIN GROUP (ORDER BY x).
QUANTILES: tuple[type[exp.Expr], ...] = (exp.Median, exp.PercentileCont, exp.WithinGroup)
_AGGREGATES: dict[type[exp.Expr], str] = {
    exp.Count: "count",
    exp.Sum: "sum",
    exp.Avg: "avg",
    **dict.fromkeys(QUANTILES, "quantile"),
}
AGGREGATE_TYPES = tuple(_AGGREGATES)
_QUANTILE_HINT = (
    "write MEDIAN(cost), QUANTILE_CONT(cost, 0.9) or "
    "PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY cost), one level between 0 and 1 each"
)
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
_TRUNCATIONS = (exp.TimestampTrunc, exp.DateTrunc)


def _refuse(rule: str, message: str, hint: str) -> PolicyViolation:
    return PolicyViolation(message, rule=rule, hint=hint)


def aggregate_nodes(root: exp.Expr) -> list[exp.Expr]:
    """The aggregates under ``root``; a WITHIN GROUP counts once, not with its inner call."""
    return [
        node
        for node in root.find_all(*AGGREGATE_TYPES)
        if not (isinstance(node, exp.PercentileCont) and isinstance(node.parent, exp.WithinGroup))
    ]


def _is_literal(node: exp.Expr) -> bool:
    if isinstance(node, exp.Literal | exp.Boolean | exp.Null):
        return True
    if isinstance(node, exp.Neg):
        return isinstance(node.this, exp.Literal) and not node.this.is_string
    if isinstance(node, exp.Cast):
        return isinstance(node.this, exp.Literal) and node.this.is_string
    if isinstance(node, exp.Paren):
        return _is_literal(node.this)
    return False


_LITERAL_HINTS = {
    "string": "quote the value: 'D1'",
    "integer": "write a whole number without quotes",
    "number": "write a number without quotes",
    "boolean": "write TRUE or FALSE",
    "date": "write DATE '2025-01-31'",
    "datetime": "write TIMESTAMP '2025-01-31 08:00:00'",
}


# The range of the BIGINT the vault stores integers as: a literal outside it would make
# the engine widen the column instead of the literal.
_INT64 = (-(2**63), 2**63 - 1)
_TIME_CASTS = (exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPNTZ)


def typed_literal(literal: exp.Expr, column_type: str) -> exp.Expr | None:
    """The literal as a constant of the column's stored type, or ``None`` if it has none.

    The filter the engine runs is rebuilt from these, so a column is only ever compared
    with a constant of its own type: the engine never casts a column, and no stored
    value can make the filter fail (a cast that fails only on some rows would tell
    which rows exist). Each constant is written with an explicit CAST to the stored
    type (:data:`entrepot.standards.SQL_TYPES`), folded once before any row is read.
    """
    if isinstance(literal, exp.Paren):
        return typed_literal(literal.this, column_type)
    if isinstance(literal, exp.Null):
        return exp.Null()
    if column_type == "boolean":
        return exp.Boolean(this=literal.this) if isinstance(literal, exp.Boolean) else None
    if column_type in ("date", "datetime"):
        return _time_literal(literal, column_type)
    if column_type == "string":
        if isinstance(literal, exp.Literal) and literal.is_string:
            return exp.Literal.string(literal.name)
        return None
    negative = isinstance(literal, exp.Neg)
    number = literal.this if negative else literal
    if not isinstance(number, exp.Literal) or number.is_string:
        return None
    text = ("-" if negative else "") + number.name
    if column_type == "integer":
        if _whole(number.name) is None or not _INT64[0] <= int(text) <= _INT64[1]:
            return None
        return exp.cast(exp.Literal.number(int(text)), exp.DataType.Type.BIGINT)
    try:
        value = float(text)
    except ValueError:
        return None
    if column_type != "number" or not math.isfinite(value):
        return None
    return exp.cast(exp.Literal.number(repr(value)), exp.DataType.Type.DOUBLE)


def _whole(text: str) -> int | None:
    """``text`` as a whole number if it is one of at most 19 ASCII digits (a BIGINT's
    width), else ``None``: Python refuses to read integers of more than 4,300 digits."""
    if not (text.isascii() and text.isdigit()) or len(text.lstrip("0")) > 19:
        return None
    return int(text)


def _time_literal(literal: exp.Expr, column_type: str) -> exp.Expr | None:
    """A date or timestamp constant for a time column: a string, DATE '...' or
    TIMESTAMP '...' that the column's type holds exactly (a timestamp on a date column
    only at midnight, so comparing it as a date means the same)."""
    if isinstance(literal, exp.Cast):
        if literal.to.this not in _TIME_CASTS:
            return None
        literal = literal.this
    if not (isinstance(literal, exp.Literal) and literal.is_string):
        return None
    try:
        moment = dt.datetime.fromisoformat(literal.name)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        # The vault stores TIMESTAMP without a zone; comparing one with a zoned
        # constant would make the engine convert every stored value.
        return None
    if column_type == "date":
        if moment.time() != dt.time():
            return None
        return exp.cast(exp.Literal.string(moment.date().isoformat()), exp.DataType.Type.DATE)
    text = moment.isoformat(sep=" ")
    return exp.cast(exp.Literal.string(text), exp.DataType.Type.TIMESTAMP)


# Columns an answer adds beside each aggregate ``x`` (``x_lo``, ``x_hi``, ``x_asked``,
# ``x_asked_lo``, ``x_asked_hi``) and to every row (``near_zero``): an output named
# like one would be overwritten by it (entrepot.privacy.answer.Answer.to_arrow).
_RESERVED_SUFFIXES = ("_lo", "_hi", "_asked")
_RESERVED_NAMES = {"", "near_zero"}


def _reserved(name: str) -> bool:
    return name.strip() in _RESERVED_NAMES or name.endswith(_RESERVED_SUFFIXES)


class Resolver:
    """Resolves the parts of one SELECT against a standard and a policy."""

    def __init__(self, select: exp.Select, standard: Standard, words: Source) -> None:
        self.select = select
        self.standard = standard
        self.words = words
        self._by_name = {f.name.lower(): f for f in standard.fields}
        source = select.args.get("from_") or select.args.get("from")
        table = source.this if source is not None else None
        self._qualifiers = {""}
        if isinstance(table, exp.Table):
            self._qualifiers.add(table.name.lower())
            if table.alias:
                self._qualifiers.add(table.alias.lower())

    def field(self, column: exp.Column) -> Field | None:
        """The standard's field a column names; ``None`` for a projection's alias."""
        if column.text("table").lower() not in self._qualifiers or column.text("db"):
            raise _refuse(
                "unknown_column",
                f"{self.words.quote(column)!r} does not name a column of the dataset",
                "qualify columns only with the dataset's alias, or not at all",
            )
        found = self._by_name.get(column.name.lower())
        if found is None and not self._is_alias(column):
            raise _refuse(
                "unknown_column",
                f"{column.name!r} is not a column of {self.standard.name}",
                f"its columns are: {', '.join(self.standard.field_names)}",
            )
        return found

    def _is_alias(self, column: exp.Column) -> bool:
        in_group = isinstance(column.parent, exp.Group)
        aliases = {p.alias.lower() for p in self.select.expressions if isinstance(p, exp.Alias)}
        return in_group and not column.text("table") and column.name.lower() in aliases

    def aggregate(self, node: exp.Expr, policy: Policy) -> Aggregate:
        """The aggregate a COUNT / SUM / AVG / quantile node computes, checked against
        the policy."""
        function = _AGGREGATES[type(node)]
        arg = node.this
        level: float | None = None
        if function == "quantile":
            arg, level = self._quantile(node)
        unit = self.standard.privacy_unit
        if isinstance(node.parent, exp.Where | exp.Group) or any(
            a is not node for a in aggregate_nodes(node)
        ):
            raise _refuse(
                "aggregate_argument", "aggregates cannot be nested", "use one aggregate per column"
            )
        column: str | None = None
        if arg is None or node.args.get("expressions"):
            raise _refuse(
                "aggregate_argument",
                f"{function.upper()} takes exactly one argument here",
                f"write {function.upper()}(<measure>) or COUNT(*)",
            )
        if function == "count" and isinstance(arg, exp.Star):
            pass
        elif function == "count" and isinstance(arg, exp.Distinct):
            targets = arg.expressions
            target = targets[0] if len(targets) == 1 else None
            field = self.field(target) if isinstance(target, exp.Column) else None
            if field is None or unit is None or field.name != unit:
                raise _refuse(
                    "count_distinct",
                    "COUNT(DISTINCT ...) is only accepted on the privacy unit",
                    f"write COUNT(DISTINCT {unit})" if unit else "use COUNT(*)",
                )
            function = "count_distinct"
            column = unit
        elif isinstance(arg, exp.Column):
            field = self.field(arg)
            if field is None or field.name not in policy.aggregate_columns:
                name = field.name if field else arg.name
                allowed = ", ".join(policy.aggregate_columns) or "none"
                raise _refuse(
                    "aggregate_column",
                    f"{function.upper()}({name}) is not allowed by the dataset's policy",
                    f"aggregate one of: {allowed}",
                )
            column = field.name
        else:
            raise _refuse(
                "aggregate_argument",
                f"{function.upper()} takes a plain column here, not {self.words.quote(arg)!r}",
                _QUANTILE_HINT
                if level is not None
                else f"write {function.upper()}(<measure>) or COUNT(*)",
            )
        if function not in policy.aggregates:
            allowed = ", ".join(a.upper() for a in policy.aggregates)
            raise _refuse(
                "aggregate_function",
                f"{function.upper()} is not allowed by the dataset's policy",
                f"use one of: {allowed}",
            )
        return Aggregate(
            name=self._default_name(function, column, level),
            function=function,
            column=column,
            level=level,
        )

    def _quantile(self, node: exp.Expr) -> tuple[exp.Expr, float]:
        """The column a quantile spelling reads and its level, or a ``quantile`` refusal."""
        if isinstance(node, exp.Median):
            return node.this, 0.5
        if isinstance(node, exp.PercentileCont):
            return node.this, self._level(node.expression)
        inner, order = node.this, node.expression
        ordered = order.expressions if isinstance(order, exp.Order) else []
        if (
            not isinstance(inner, exp.PercentileCont)
            or len(ordered) != 1
            or not isinstance(ordered[0], exp.Ordered)
            or ordered[0].args.get("desc")
        ):
            raise _refuse(
                "quantile",
                f"{self.words.quote(node)!r} is not a quantile this exchange answers",
                _QUANTILE_HINT + " (ascending order only)",
            )
        return ordered[0].this, self._level(inner.this)

    def _level(self, node: exp.Expr | None) -> float:
        level: float | None = None
        if isinstance(node, exp.Literal) and not node.is_string:
            try:
                level = float(node.name)
            except ValueError:
                level = None
        if level is None or not 0.0 < level < 1.0:
            written = self.words.quote(node) if node is not None else "nothing"
            raise _refuse(
                "quantile",
                f"the quantile level {written!r} is not a number strictly between 0 and 1",
                _QUANTILE_HINT,
            )
        return level

    @staticmethod
    def _default_name(function: str, column: str | None, level: float | None = None) -> str:
        if function == "count_distinct":
            return "units"
        if function == "quantile" and level is not None:
            # p90_cost, p99_5_cost; a median is median_cost.
            percent = f"{level * 100:.10g}".replace(".", "_")
            return f"median_{column}" if level == 0.5 else f"p{percent}_{column}"
        return function if column is None else f"{function}_{column}"

    def group_keys(self, policy: Policy) -> list[tuple[exp.Expr, GroupKey]]:
        """The GROUP BY keys, each with the expression it matches in SELECT."""
        group = self.select.args.get("group")
        if group is None:
            return []
        for key in ("all", "rollup", "cube", "grouping_sets", "totals"):
            if group.args.get(key):
                raise _refuse(
                    "group_by_expression",
                    f"GROUP BY {key.upper().replace('_', ' ')} is not accepted",
                    "name each group key: GROUP BY district, date_trunc('month', visit_date)",
                )
        resolved: list[tuple[exp.Expr, GroupKey]] = []
        for item in group.expressions:
            node = self._dereference(item)
            grouped = self._group_key(node, policy)
            if any((k.column, k.unit) == (grouped.column, grouped.unit) for _, k in resolved):
                raise _refuse(
                    "group_by_expression",
                    f"the group key {grouped.name!r} is repeated in GROUP BY",
                    "group by each key once",
                )
            resolved.append((node, grouped))
        return resolved

    def _dereference(self, item: exp.Expr) -> exp.Expr:
        projections = [p.unalias() for p in self.select.expressions]
        if isinstance(item, exp.Literal) and not item.is_string:
            index = _whole(item.name) or 0
            if not 1 <= index <= len(projections):
                raise _refuse(
                    "group_by_expression",
                    f"GROUP BY {item.name} does not name a selected column",
                    f"use a position between 1 and {len(projections)}",
                )
            return projections[index - 1]
        if isinstance(item, exp.Column) and self._is_alias(item):
            for projection in self.select.expressions:
                if (
                    isinstance(projection, exp.Alias)
                    and projection.alias.lower() == item.name.lower()
                ):
                    return projection.unalias()
        return item

    def _group_key(self, node: exp.Expr, policy: Policy) -> GroupKey:
        unit: str | None = None
        column = node
        if isinstance(node, _TRUNCATIONS):
            unit = node.text("unit").lower()
            column = node.this
            if unit not in TIME_UNITS or not isinstance(column, exp.Column):
                raise _refuse(
                    "group_by_expression",
                    f"date_trunc to {unit!r} is not accepted",
                    f"truncate a time column to one of: {', '.join(TIME_UNITS)}",
                )
        if not isinstance(column, exp.Column):
            raise _refuse(
                "group_by_expression",
                f"GROUP BY {self.words.quote(node)} is not accepted",
                "group by dimension columns or date_trunc('<unit>', <time column>)",
            )
        field = self.field(column)
        if field is None or field.name not in policy.group_by_columns:
            allowed = ", ".join(policy.group_by_columns) or "none"
            raise _refuse(
                "group_by_column",
                f"grouping by {column.name!r} is not allowed by the dataset's policy",
                f"group by one of: {allowed}",
            )
        if (field.role is Role.TIME) != (unit is not None):
            raise _refuse(
                "group_by_expression",
                f"{field.name!r} must be grouped "
                + ("through date_trunc" if unit is None else "as it is, without date_trunc"),
                f"write date_trunc('month', {field.name})" if unit is None else field.name,
            )
        name = field.name if unit is None else f"{field.name}_{unit}"
        return GroupKey(name=name, column=field.name, unit=unit)

    def projections(self, policy: Policy) -> list[tuple[str, GroupKey | Aggregate]]:
        """Each SELECT item as an output name and the key or aggregate it is."""
        keys = self.group_keys(policy)
        out: list[tuple[str, GroupKey | Aggregate]] = []
        for item in self.select.expressions:
            node = item.unalias()
            resolved: GroupKey | Aggregate
            if isinstance(node, AGGREGATE_TYPES):
                resolved = self.aggregate(node, policy)
            else:
                matches = [key for expr, key in keys if expr == node]
                if not matches:
                    raise _refuse(
                        "row_level" if isinstance(node, exp.Column) else "projection",
                        f"{self.words.quote(node)!r} is neither an aggregate nor a group key",
                        "select aggregates (COUNT, SUM, AVG, MEDIAN) and the columns you GROUP BY",
                    )
                resolved = matches[0]
            name = item.alias if isinstance(item, exp.Alias) else resolved.name
            out.append((name, resolved))
        if not any(isinstance(r, Aggregate) for _, r in out):
            raise _refuse(
                "row_level",
                "the query computes no aggregate, so it would return rows",
                "add an aggregate such as COUNT(*)",
            )
        names = [name.lower() for name, _ in out]
        for name in names:
            if names.count(name) > 1 or _reserved(name):
                raise _refuse(
                    "output_name",
                    f"the output column name {name!r} is repeated or reserved",
                    "give each output a distinct, non-empty alias other than near_zero, "
                    "not ending in _lo, _hi or _asked (the answer's own columns)",
                )
        selected = {id(r) for _, r in out}
        for _, key in keys:
            if not any(r == key for _, r in out) and id(key) not in selected:
                raise _refuse(
                    "group_by_expression",
                    f"the group key {key.name!r} is not selected",
                    "select every column you GROUP BY",
                )
        return out

    def predicate(self, node: exp.Expr, policy: Policy) -> None:
        """Check a WHERE condition: AND / OR / NOT over comparisons with literals."""
        if isinstance(node, exp.And | exp.Or):
            self.predicate(node.this, policy)
            self.predicate(node.expression, policy)
        elif isinstance(node, exp.Not | exp.Paren):
            self.predicate(node.this, policy)
        elif isinstance(node, _COMPARISONS):
            sides = (node.this, node.expression)
            columns = [s for s in sides if isinstance(s, exp.Column)]
            if len(columns) != 1 or not all(
                isinstance(s, exp.Column) or _is_literal(s) for s in sides
            ):
                self._bad_where(node)
            self._where_column(columns[0], policy, [s for s in sides if s is not columns[0]])
        elif isinstance(node, exp.In):
            values = node.expressions
            if not isinstance(node.this, exp.Column) or not values or node.args.get("query"):
                self._bad_where(node)
            if not all(_is_literal(v) for v in values):
                self._bad_where(node)
            self._where_column(node.this, policy, values)
        elif isinstance(node, exp.Between):
            bounds = (node.args.get("low"), node.args.get("high"))
            if node.args.get("symmetric"):
                raise _refuse(
                    "where_expression",
                    f"BETWEEN SYMMETRIC is not accepted: {self.words.quote(node)!r}",
                    "write BETWEEN <low> AND <high>, the lower bound first",
                )
            if not isinstance(node.this, exp.Column) or not all(
                b is not None and _is_literal(b) for b in bounds
            ):
                self._bad_where(node)
            self._where_column(node.this, policy, [b for b in bounds if b is not None])
        elif isinstance(node, exp.Is):
            if not isinstance(node.this, exp.Column) or not isinstance(node.expression, exp.Null):
                self._bad_where(node)
            self._where_column(node.this, policy, [])
        elif not isinstance(node, exp.Boolean):
            self._bad_where(node)

    def _where_column(self, column: exp.Column, policy: Policy, literals: list[exp.Expr]) -> None:
        field = self.field(column)
        if field is None or field.name not in policy.where_columns:
            allowed = ", ".join(policy.where_columns) or "none"
            raise _refuse(
                "where_column",
                f"filtering on {column.name!r} is not allowed by the dataset's policy",
                f"filter on one of: {allowed}",
            )
        for literal in literals:
            if typed_literal(literal, field.type) is None:
                raise _refuse(
                    "where_expression",
                    f"{self.words.quote(literal)} is not a literal of type {field.type} "
                    f"for {field.name!r}",
                    _LITERAL_HINTS.get(field.type, "compare with a literal of the column's type"),
                )

    def _typed(self, condition: exp.Expr) -> exp.Expr:
        """The accepted filter with each column named as the standard does and each
        literal as a constant of that column's type (:func:`typed_literal`)."""
        for node in list(condition.walk()):
            if not isinstance(node, (*_COMPARISONS, exp.In, exp.Between, exp.Is)):
                continue
            column = next(c for c in node.iter_expressions() if isinstance(c, exp.Column))
            field = self.field(column)
            assert field is not None, "predicate() accepted only dataset columns"
            # Each argument is set once, a list (IN's values) as a whole: replacing its
            # values one by one re-parents the whole list each time, quadratic in its length.
            for key, value in list(node.args.items()):
                if isinstance(value, list):
                    node.set(key, [self._constant(v, column, field) for v in value])
                elif isinstance(value, exp.Expr):
                    node.set(key, self._constant(value, column, field))
        return condition

    @staticmethod
    def _constant(child: exp.Expr, column: exp.Column, field: Field) -> exp.Expr:
        """``column`` named as the standard does, any other child as a typed constant."""
        if child is column:
            return exp.column(field.name, quoted=True)
        typed = typed_literal(child, field.type)
        assert typed is not None, "predicate() accepted only literals of the type"
        return typed

    def _bad_where(self, node: exp.Expr) -> None:
        raise _refuse(
            "where_expression",
            f"the condition {self.words.quote(node)!r} is not accepted",
            "compare one column with literals: =, <>, <, <=, >, >=, IN (...), BETWEEN, IS NULL",
        )

    def query(self, dataset: str, policy: Policy) -> Query:
        """The accepted query, with table qualifiers stripped from its filter."""
        items = self.projections(policy)
        keys = tuple(k for _, k in self.group_keys(policy))
        named_keys = {key: name for name, key in items if isinstance(key, GroupKey)}
        keys = tuple(GroupKey(named_keys.get(k, k.name), k.column, k.unit) for k in keys)
        aggregates = tuple(
            Aggregate(name, a.function, a.column, a.level)
            for name, a in items
            if isinstance(a, Aggregate)
        )
        clause = self.select.args.get("where")
        condition = None if clause is None else self._typed(clause.this.copy())
        return Query(
            dataset=dataset,
            keys=keys,
            aggregates=aggregates,
            where=condition,
            output=tuple(name for name, _ in items),
            normalized=self.select.sql(dialect="duckdb", normalize=True),
        )
