"""Name resolution for the checker: columns, aggregates, group keys, the filter.

The rules in :mod:`entrepot.privacy.sql.rules` call these methods; each either
returns the resolved piece or raises :class:`PolicyViolation` with the rule name.
"""

from __future__ import annotations

import datetime as dt

from sqlglot import exp

from entrepot.errors import PolicyViolation
from entrepot.privacy.policy import Policy
from entrepot.privacy.sql._words import Source
from entrepot.privacy.sql.query import TIME_UNITS, Aggregate, GroupKey, Query
from entrepot.standards.schema import Field, Role, Standard

_AGGREGATES: dict[type[exp.Expr], str] = {exp.Count: "count", exp.Sum: "sum", exp.Avg: "avg"}
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
_TRUNCATIONS = (exp.TimestampTrunc, exp.DateTrunc)


def _refuse(rule: str, message: str, hint: str) -> PolicyViolation:
    return PolicyViolation(message, rule=rule, hint=hint)


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


def _fits(literal: exp.Expr, column_type: str) -> bool:
    """Whether a checked literal has a value of the column's Table Schema type."""
    if isinstance(literal, exp.Paren):
        return _fits(literal.this, column_type)
    if column_type == "boolean":
        return isinstance(literal, exp.Boolean)
    if isinstance(literal, exp.Cast):
        literal = literal.this
    if column_type in ("date", "datetime"):
        if not (isinstance(literal, exp.Literal) and literal.is_string):
            return False
        try:
            dt.datetime.fromisoformat(literal.name)
        except ValueError:
            return False
        return True
    if column_type == "string":
        return isinstance(literal, exp.Literal) and literal.is_string
    number = literal.this if isinstance(literal, exp.Neg) else literal
    if not isinstance(number, exp.Literal) or number.is_string:
        return False
    return column_type == "number" or number.name.isdigit()


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
        """The aggregate a COUNT / SUM / AVG node computes, checked against the policy."""
        function = _AGGREGATES[type(node)]
        arg = node.this
        unit = self.standard.privacy_unit
        if isinstance(node.parent, exp.Where | exp.Group) or any(
            isinstance(a, tuple(_AGGREGATES)) for a in node.find_all(*_AGGREGATES) if a is not node
        ):
            raise _refuse(
                "aggregate_argument", "aggregates cannot be nested", "use one aggregate per column"
            )
        column: str | None = None
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
                f"write {function.upper()}(<measure>) or COUNT(*)",
            )
        if function not in policy.aggregates:
            allowed = ", ".join(a.upper() for a in policy.aggregates)
            raise _refuse(
                "aggregate_function",
                f"{function.upper()} is not allowed by the dataset's policy",
                f"use one of: {allowed}",
            )
        return Aggregate(
            name=self._default_name(function, column), function=function, column=column
        )

    @staticmethod
    def _default_name(function: str, column: str | None) -> str:
        if function == "count_distinct":
            return "units"
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
        resolved = []
        for item in group.expressions:
            node = self._dereference(item)
            resolved.append((node, self._group_key(node, policy)))
        return resolved

    def _dereference(self, item: exp.Expr) -> exp.Expr:
        projections = [p.unalias() for p in self.select.expressions]
        if isinstance(item, exp.Literal) and not item.is_string:
            index = int(item.name) if item.name.isdigit() else 0
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
            if isinstance(node, exp.Count | exp.Sum | exp.Avg):
                resolved = self.aggregate(node, policy)
            else:
                matches = [key for expr, key in keys if expr == node]
                if not matches:
                    raise _refuse(
                        "row_level" if isinstance(node, exp.Column) else "projection",
                        f"{self.words.quote(node)!r} is neither an aggregate nor a group key",
                        "select aggregates (COUNT, SUM, AVG) and the columns you GROUP BY",
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
            if names.count(name) > 1 or name.endswith(("_lo", "_hi")):
                raise _refuse(
                    "output_name",
                    f"the output column name {name!r} is repeated or reserved",
                    "give each output a distinct alias not ending in _lo or _hi",
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
            if not isinstance(literal, exp.Null) and not _fits(literal, field.type):
                # A literal the engine would have to cast the column for could make it
                # fail on a stored value, and such errors quote the value.
                raise _refuse(
                    "where_expression",
                    f"{self.words.quote(literal)} is not a {field.type} literal "
                    f"for {field.name!r}",
                    _LITERAL_HINTS.get(field.type, "compare with a literal of the column's type"),
                )

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
            Aggregate(name, a.function, a.column) for name, a in items if isinstance(a, Aggregate)
        )
        clause = self.select.args.get("where")
        condition = None
        if clause is not None:
            condition = clause.this.copy()
            for column in condition.find_all(exp.Column):
                field = self.field(column)
                assert field is not None, "predicate() accepted only dataset columns"
                column.replace(exp.column(field.name, quoted=True))
        return Query(
            dataset=dataset,
            keys=keys,
            aggregates=aggregates,
            where=condition,
            output=tuple(name for name, _ in items),
            normalized=self.select.sql(dialect="duckdb", normalize=True),
        )
