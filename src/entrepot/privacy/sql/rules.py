"""The SQL checker: a tuple of small pure rules over the sqlglot AST.

:func:`check` runs :data:`RULES` in order; the first rule that objects raises
:class:`~entrepot.errors.PolicyViolation` with its name as ``rule`` and a hint on how
to rephrase. Messages quote only the consumer's own SQL and the public standard,
never the data. What passes is a single SELECT of COUNT / COUNT(DISTINCT unit) /
SUM / AVG over the one dataset, filtered by comparisons of allowed columns with
literals and grouped by allowed dimensions and truncated time columns; anything
else (statements, files, table functions, joins, subqueries, windows, ordering,
limits, other functions) is refused. The last rule is an allow-list of AST node
types, so syntax no earlier rule thought of is refused too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token

from entrepot.errors import PolicyViolation
from entrepot.privacy.policy import Policy
from entrepot.privacy.sql._resolve import Resolver
from entrepot.privacy.sql.query import Query
from entrepot.standards.schema import Role, Standard

__all__ = ["RULES", "RULE_NAMES", "Context", "Rule", "check"]

# Every name a refusal's ``rule`` can take (the planner adds ``epsilon_cap`` and
# ``max_groups``); docs/privacy.md explains each one.
RULE_NAMES = frozenset(
    {
        "syntax", "comment", "single_statement", "set_operation", "statement", "subquery",
        "table", "table_function", "file_path", "system_table", "unknown_table",
        "table_modifier", "join", "window", "select_star", "order_limit", "having",
        "distinct", "function", "aggregate_function", "identifier", "sensitive",
        "unknown_column", "count_distinct", "aggregate_argument", "aggregate_column",
        "row_level", "projection", "output_name", "where_column", "where_expression",
        "group_by_column", "group_by_expression", "expression", "epsilon_cap", "max_groups",
    }
)  # fmt: skip

_DIALECT = sqlglot.Dialect.get_or_raise("duckdb")
_SYSTEM_SCHEMAS = {"information_schema", "pg_catalog", "main", "temp", "system", "memory"}
_SYSTEM_PREFIXES = ("duckdb_", "sqlite_", "pg_", "pragma_")
_FILE_HINTS = ("/", "\\", ".csv", ".parquet", ".json", ".tsv", ".txt", "://", "~")
_AGGREGATES: dict[type[exp.Expr], str] = {exp.Count: "count", exp.Sum: "sum", exp.Avg: "avg"}
_LITERALS = (exp.Literal, exp.Boolean, exp.Null)
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
_DATE_TYPES = {exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPNTZ}
_TRUNCATIONS = (exp.TimestampTrunc, exp.DateTrunc)
# Every node type an accepted query may contain (the last rule's allow-list).
_ALLOWED_NODES: tuple[type[exp.Expr], ...] = (
    exp.Select, exp.From, exp.Table, exp.TableAlias, exp.Identifier, exp.Column, exp.Alias,
    exp.Count, exp.Sum, exp.Avg, exp.Star, exp.Distinct, exp.Where, exp.Group, exp.And,
    exp.Or, exp.Not, exp.Paren, *_COMPARISONS, exp.In, exp.Between, exp.Is, exp.Neg,
    exp.Cast, exp.DataType, *_TRUNCATIONS, exp.Var, *_LITERALS,
)  # fmt: skip


def _refuse(rule: str, message: str, hint: str) -> PolicyViolation:
    return PolicyViolation(message, rule=rule, hint=hint)


def _syntax_error(error: Exception) -> PolicyViolation:
    first = str(error).splitlines()[0] if str(error) else "unparseable"
    return _refuse("syntax", f"the query is not valid SQL: {first}", "check the SQL syntax")


@dataclass
class Context:
    """What the rules look at: the SQL text, its parse, the standard and the policy."""

    sql: str
    standard: Standard
    policy: Policy
    dataset: str | None

    @cached_property
    def tokens(self) -> list[Token]:
        try:
            return _DIALECT.tokenize(self.sql)
        except TokenError as error:
            raise _syntax_error(error) from None

    @cached_property
    def statements(self) -> list[exp.Expr]:
        try:
            parsed = _DIALECT.parser().parse(self.tokens, self.sql)
        except ParseError as error:
            raise _syntax_error(error) from None
        return [statement for statement in parsed if statement is not None]

    @cached_property
    def select(self) -> exp.Select:
        statement = self.statements[0]
        assert isinstance(statement, exp.Select), "rule order: statement runs first"
        return statement

    @cached_property
    def resolver(self) -> Resolver:
        return Resolver(self.select, self.standard)

    def body(self) -> list[exp.Expr]:
        """Every part of the SELECT except its FROM clause."""
        parts: list[exp.Expr] = list(self.select.expressions)
        for key in ("where", "group"):
            if self.select.args.get(key) is not None:
                parts.append(self.select.args[key])
        return parts


Rule = Callable[[Context], None]


def syntax(ctx: Context) -> None:
    if not ctx.statements:
        raise _refuse("syntax", "the query is empty", "write one SELECT ... FROM <dataset>")


def comment(ctx: Context) -> None:
    if any(token.comments for token in ctx.tokens):
        raise _refuse(
            "comment",
            "comments are not accepted in queries",
            "remove the -- and /* */ comments; send one plain SELECT",
        )


def single_statement(ctx: Context) -> None:
    if len(ctx.statements) > 1:
        raise _refuse(
            "single_statement",
            f"the query holds {len(ctx.statements)} statements",
            "send one SELECT per query, without ';' between statements",
        )


def set_operation(ctx: Context) -> None:
    if any(isinstance(node, exp.SetOperation) for node in ctx.statements[0].walk()):
        raise _refuse(
            "set_operation",
            "UNION, INTERSECT and EXCEPT are not accepted",
            "ask each part as its own query (each spends its own ε)",
        )


def statement(ctx: Context) -> None:
    node = ctx.statements[0]
    if not isinstance(node, exp.Select):
        kind = node.key.upper() if not isinstance(node, exp.Command) else str(node.this).upper()
        raise _refuse(
            "statement",
            f"only SELECT queries are accepted, not {kind}",
            "ask for aggregates: SELECT <dimension>, COUNT(*) FROM <dataset> GROUP BY <dimension>",
        )


def subquery(ctx: Context) -> None:
    root = ctx.select
    nested = [n for n in root.walk() if isinstance(n, exp.Select | exp.Subquery) and n is not root]
    if root.args.get("with") is not None or root.args.get("with_") is not None or nested:
        raise _refuse(
            "subquery",
            "subqueries and WITH clauses are not accepted",
            "write one flat SELECT over the dataset; filter with WHERE",
        )


def table(ctx: Context) -> None:
    source = ctx.select.args.get("from_") or ctx.select.args.get("from")
    if source is None:
        raise _refuse("table", "the query reads no dataset", f"add FROM {ctx.dataset}")
    node = source.this
    if not isinstance(node, exp.Table):
        raise _refuse("table_function", "only a dataset may follow FROM", f"use FROM {ctx.dataset}")
    if not isinstance(node.this, exp.Identifier):
        raise _refuse(
            "table_function",
            "table functions (read_csv, read_parquet, ...) are not accepted",
            f"query the dataset by name: FROM {ctx.dataset}",
        )
    name = node.name
    schema = node.text("db")
    if ctx.dataset is None:
        ctx.dataset = f"{schema}.{name}".lower()
    if (node.this.quoted and any(mark in name.lower() for mark in _FILE_HINTS)) or "/" in schema:
        raise _refuse(
            "file_path", "file paths cannot be queried", f"query the dataset: FROM {ctx.dataset}"
        )
    if schema.lower() in _SYSTEM_SCHEMAS or name.lower().startswith(_SYSTEM_PREFIXES):
        raise _refuse(
            "system_table", "system tables cannot be queried", f"query FROM {ctx.dataset}"
        )
    if node.text("catalog") or f"{schema}.{name}".lower() != ctx.dataset.lower():
        raise _refuse(
            "unknown_table",
            f"{node.sql(dialect='duckdb')!r} is not the dataset this query is for",
            f"use FROM {ctx.dataset}",
        )
    for key in ("sample", "laterals", "pivots", "version", "joins", "hints"):
        if node.args.get(key):
            rule = "join" if key in ("joins", "laterals") else "table_modifier"
            raise _refuse(rule, f"{key} on the dataset is not accepted", "use a plain FROM")


def join(ctx: Context) -> None:
    if ctx.select.args.get("joins") or ctx.select.args.get("laterals"):
        raise _refuse(
            "join",
            "joins are not accepted in a private query",
            "query one dataset; cross-holder joins go through the private-join command",
        )


def window(ctx: Context) -> None:
    if any(isinstance(node, exp.Window) for node in ctx.select.walk()):
        raise _refuse("window", "window functions are not accepted", "use GROUP BY instead")


def select_star(ctx: Context) -> None:
    for part in ctx.select.expressions:
        if isinstance(part, exp.Star) or (isinstance(part, exp.Column) and part.is_star):
            raise _refuse(
                "select_star",
                "SELECT * would return rows, not aggregates",
                "select aggregates: SELECT COUNT(*) FROM ...",
            )


def clauses(ctx: Context) -> None:
    refused = {
        "order": ("order_limit", "ORDER BY"),
        "limit": ("order_limit", "LIMIT"),
        "offset": ("order_limit", "OFFSET"),
        "fetch": ("order_limit", "FETCH"),
        "having": ("having", "HAVING"),
        "qualify": ("having", "QUALIFY"),
        "distinct": ("distinct", "SELECT DISTINCT"),
        "sample": ("table_modifier", "USING SAMPLE"),
        "into": ("statement", "INTO"),
        "settings": ("statement", "SETTINGS"),
        "locks": ("statement", "FOR UPDATE"),
        "connect": ("statement", "CONNECT BY"),
    }
    for key, (rule, clause) in refused.items():
        if ctx.select.args.get(key):
            raise _refuse(
                rule,
                f"{clause} is not accepted",
                "drop it: every group of the public code list is returned, and the answer "
                "is noisy, so ordering, limiting or filtering on it leaks or misleads",
            )


def function(ctx: Context) -> None:
    for part in ctx.body():
        for node in part.walk():
            if not isinstance(node, exp.Func) or isinstance(node, _ALLOWED_NODES):
                continue
            if isinstance(node, exp.AggFunc):
                allowed = ", ".join(a.upper() for a in ctx.policy.aggregates)
                raise _refuse(
                    "aggregate_function",
                    f"the aggregate {node.sql_name()} is not accepted",
                    f"use one of: {allowed}",
                )
            name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
            raise _refuse(
                "function",
                f"the function {name.lower()}() is not accepted",
                "use only COUNT, SUM, AVG, date_trunc and literal comparisons",
            )


def columns(ctx: Context) -> None:
    unit = ctx.standard.privacy_unit
    for part in ctx.body():
        for column in part.find_all(exp.Column):
            field = ctx.resolver.field(column)
            if field is None:
                continue
            if field.role is Role.IDENTIFIER:
                parent = column.parent
                counted = (
                    field.name == unit
                    and isinstance(parent, exp.Distinct)
                    and isinstance(parent.parent, exp.Count)
                )
                if not counted:
                    raise _refuse(
                        "identifier",
                        f"the identifier column {field.name!r} cannot be used here",
                        f"identifiers may only be counted: COUNT(DISTINCT {unit})"
                        if unit
                        else "drop the identifier column",
                    )
            if field.role is Role.SENSITIVE:
                raise _refuse(
                    "sensitive",
                    f"the sensitive column {field.name!r} cannot be queried",
                    "drop it from the query",
                )


def aggregates(ctx: Context) -> None:
    for part in ctx.body():
        if any(isinstance(node, exp.Filter) for node in part.walk()):
            raise _refuse(
                "aggregate_argument", "FILTER on an aggregate is not accepted", "move it to WHERE"
            )
        for node in part.find_all(*_AGGREGATES):
            ctx.resolver.aggregate(node, ctx.policy)


def projection(ctx: Context) -> None:
    ctx.resolver.projections(ctx.policy)


def where(ctx: Context) -> None:
    clause = ctx.select.args.get("where")
    if clause is not None:
        ctx.resolver.predicate(clause.this, ctx.policy)


def group_by(ctx: Context) -> None:
    ctx.resolver.group_keys(ctx.policy)


def allowed_nodes(ctx: Context) -> None:
    for node in ctx.select.walk():
        if not isinstance(node, _ALLOWED_NODES):
            raise _refuse(
                "expression",
                f"{node.key.upper()} is not accepted in a private query",
                "use only aggregates, group keys, and comparisons with literals",
            )
        if isinstance(node, exp.Cast) and (
            not isinstance(node.this, exp.Literal) or node.to.this not in _DATE_TYPES
        ):
            raise _refuse(
                "expression",
                "casts are only accepted on date literals",
                "write DATE '2025-01-01'",
            )


RULES: tuple[Rule, ...] = (
    syntax,
    comment,
    single_statement,
    set_operation,
    statement,
    subquery,
    table,
    join,
    window,
    select_star,
    clauses,
    function,
    columns,
    aggregates,
    projection,
    where,
    group_by,
    allowed_nodes,
)


def check(
    sql: str,
    *,
    standard: Standard,
    policy: Policy,
    dataset: str | None,
    rules: tuple[Rule, ...] = RULES,
) -> Query:
    """Run ``rules`` over ``sql`` and return the accepted :class:`Query`.

    ``dataset`` is the name consumers must use (``provider_slug.dataset_slug``);
    ``None`` accepts the name the query gives. Raises :class:`PolicyViolation`
    naming the first rule that refused.
    """
    ctx = Context(sql=sql, standard=standard, policy=policy, dataset=dataset)
    for rule in rules:
        rule(ctx)
    return ctx.resolver.query(ctx.dataset or "", ctx.policy)
