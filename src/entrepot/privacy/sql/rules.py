"""The SQL checker: a tuple of small pure rules over the sqlglot AST.

:func:`check` runs :data:`RULES` in order; the first rule that objects raises
:class:`~entrepot.errors.PolicyViolation` with its name as ``rule`` and a hint on how
to rephrase. Messages quote only the consumer's own SQL and the public standard,
never the data. What passes is a single SELECT of COUNT / COUNT(DISTINCT unit) /
SUM / AVG / MEDIAN / QUANTILE_CONT over the one dataset, filtered by comparisons of
allowed columns with literals and grouped by allowed dimensions and truncated time
columns; anything
else (statements, files, table functions, joins, subqueries, windows, ordering,
limits, other functions) is refused. The last rule is an allow-list of AST node
types, so syntax no earlier rule thought of is refused too.

:data:`SOURCE_RULES`, the first rules, need no standard or policy: :func:`source` runs
them to find the dataset a query reads, so a query naming a system table, a file or a
function is refused by its own rule before anyone looks the name up.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from entrepot.errors import PolicyViolation
from entrepot.privacy.policy import Policy
from entrepot.privacy.sql._resolve import QUANTILES, Resolver, aggregate_nodes
from entrepot.privacy.sql._words import Source
from entrepot.privacy.sql.query import Query
from entrepot.standards.schema import Role, Standard

__all__ = [
    "MAX_DEPTH",
    "MAX_NESTING",
    "RULES",
    "RULE_NAMES",
    "SOURCE_RULES",
    "Context",
    "Rule",
    "check",
    "source",
]

# Every name a refusal's ``rule`` can take (the planner adds ``epsilon_cap``,
# ``max_groups`` and ``coverage``); docs/privacy.md explains each one.
RULE_NAMES = frozenset(
    {
        "nesting", "syntax", "comment", "single_statement", "set_operation", "statement",
        "subquery", "table", "table_function", "file_path", "system_table", "unknown_table",
        "table_modifier", "join", "window", "select_star", "order_limit", "having",
        "distinct", "function", "aggregate_function", "identifier", "sensitive",
        "unknown_column", "count_distinct", "aggregate_argument", "aggregate_column",
        "row_level", "projection", "output_name", "where_column", "where_expression",
        "group_by_column", "group_by_expression", "expression", "epsilon_cap", "max_groups",
        "coverage", "quantile", "join_condition", "link_key", "self_join", "join_where",
        "join_column", "join_policy",
    }
)  # fmt: skip

_DIALECT = sqlglot.Dialect.get_or_raise("duckdb")
# Brackets, CASE ... END and prefix operators (NOT, -, +) nested deeper than this are
# refused before sqlglot parses them: its recursive descent spends about 23 Python
# frames per bracket, and 43 brackets, 40 nested calls or 97 NOTs in a row exhausted
# the 1,000-frame stack (sqlglot 30.31); 20 leaves more than half of it to the server.
MAX_NESTING = 20
# Expression trees deeper than this are refused once parsed: AND / OR chains parse
# without recursion, but the rules and the SQL generator walk them recursively (987
# ANDs in a row exhausted the stack); a filter needs a few dozen at most.
MAX_DEPTH = 100
_OPENERS = {TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE, TokenType.CASE}
_CLOSERS = {TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE, TokenType.END}
_PREFIXES = {TokenType.NOT, TokenType.DASH, TokenType.PLUS, TokenType.TILDE}
# Tokens that end every prefix operator before them (NOT binds tighter than AND).
_BOUNDARIES = {
    TokenType.AND, TokenType.OR, TokenType.COMMA, TokenType.SEMICOLON, TokenType.SELECT,
    TokenType.FROM, TokenType.WHERE, TokenType.GROUP_BY, TokenType.WHEN, TokenType.THEN,
    TokenType.ELSE,
}  # fmt: skip
_SYSTEM_SCHEMAS = {"information_schema", "pg_catalog", "main", "temp", "system", "memory"}
_SYSTEM_PREFIXES = ("duckdb_", "sqlite_", "pg_", "pragma_")
# How a dataset is named in SQL, as entrepot.vault.refs.DatasetRef.sql_name writes it.
_DATASET_PART = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")
_SLUG_PART = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*", re.IGNORECASE)
# A dataset written as the catalog names it (``riverside-hospitals/outpatient-visits``)
# or with hyphens, which SQL reads as minus signs; found in the text when it does not
# parse, so the refusal can give the SQL name instead of the parser's complaint.
_CATALOG_FORM = re.compile(
    r"""\bFROM\s+(?P<q1>["`]?)(?P<provider>[a-z0-9]+(?:[-_][a-z0-9]+)*)(?P=q1)\s*"""
    r"""(?P<sep>[./])\s*(?P<q2>["`]?)(?P<dataset>[a-z0-9]+(?:[-_][a-z0-9]+)*)(?P=q2)""",
    re.IGNORECASE,
)
# The parts of a table reference a query may use; any other (samples, time travel,
# pivots, hints, column renames) changes what is read.
_TABLE_PARTS = {"this", "db", "catalog", "alias"}
# How each modifier is written, for the refusal.
_MODIFIERS = {
    "sample": "sampling (TABLESAMPLE, USING SAMPLE)",
    "version": "time travel (AT, FOR SYSTEM_TIME AS OF)",
    "when": "time travel (AT, FOR SYSTEM_TIME AS OF)",
    "changes": "CHANGES",
    "pivots": "PIVOT and UNPIVOT",
    "hints": "table hints (WITH (...))",
}
_FILE_HINTS = ("/", "\\", ".csv", ".parquet", ".json", ".tsv", ".txt", "://", "~")
# Quantile spellings answered otherwise or not at all: a private quantile is a point of
# a grid over the measure's bounds, never a stored value (DISC), and each gets its own
# share of ε (one level per call).
_OTHER_QUANTILES: tuple[type[exp.Expr], ...] = (
    exp.PercentileDisc, exp.Quantile, exp.ApproxQuantile, exp.ApproxQuantiles,
)  # fmt: skip
_LITERALS = (exp.Literal, exp.Boolean, exp.Null)
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
_DATE_TYPES = {exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPNTZ}
_TRUNCATIONS = (exp.TimestampTrunc, exp.DateTrunc)
# Every node type an accepted query may contain (the last rule's allow-list).
_ALLOWED_NODES: tuple[type[exp.Expr], ...] = (
    exp.Select, exp.From, exp.Table, exp.TableAlias, exp.Identifier, exp.Column, exp.Alias,
    exp.Count, exp.Sum, exp.Avg, *QUANTILES, exp.Order, exp.Ordered, exp.Star, exp.Distinct,
    exp.Where, exp.Group, exp.And,
    exp.Or, exp.Not, exp.Paren, *_COMPARISONS, exp.In, exp.Between, exp.Is, exp.Neg,
    exp.Cast, exp.DataType, *_TRUNCATIONS, exp.Var, *_LITERALS,
)  # fmt: skip


def _refuse(rule: str, message: str, hint: str) -> PolicyViolation:
    return PolicyViolation(message, rule=rule, hint=hint)


def _syntax_error(error: Exception, sql: str) -> PolicyViolation:
    written = _CATALOG_FORM.search(sql)
    if written is not None and (written["sep"] == "/" or "-" in written.group(0)):
        return _catalog_form(written.group(0)[4:].strip(), written["provider"], written["dataset"])
    first = str(error).splitlines()[0] if str(error) else "unparseable"
    return _refuse("syntax", f"the query is not valid SQL: {first}", "check the SQL syntax")


def _catalog_form(written: str, provider: str, dataset: str) -> PolicyViolation:
    """The refusal of a dataset written as the catalog names it, giving its SQL name."""
    name = f"{provider}.{dataset}".lower().replace("-", "_")
    return _refuse(
        "unknown_table",
        f"{written!r} is not how SQL names a dataset: in SQL it is {name}",
        f"write FROM {name} (the catalog's <provider>/<dataset> with underscores for "
        "hyphens and a dot for the slash)",
    )


def _too_deep(limit: int) -> PolicyViolation:
    return _refuse(
        "nesting",
        f"the query is nested more than {limit} levels deep",
        "write a flatter query: fewer brackets, NOTs, CASEs or chained conditions "
        "(IN (...) lists any number of values)",
    )


def _nesting(tokens: Sequence[Token]) -> int:
    """How deep brackets, CASEs and prefix operators nest, counted without parsing;
    stops counting past :data:`MAX_NESTING`."""
    prefixes = [0]
    brackets = deepest = 0
    for token in tokens:
        kind = token.token_type
        if kind in _OPENERS:
            brackets += 1
            prefixes.append(0)
        elif kind in _CLOSERS and len(prefixes) > 1:
            brackets -= 1
            prefixes.pop()
        elif kind in _PREFIXES:
            prefixes[-1] += 1
        elif kind in _BOUNDARIES:
            prefixes[-1] = 0
        deepest = max(deepest, brackets + sum(prefixes))
        if deepest > MAX_NESTING:
            break
    return deepest


def _tree_depth(root: exp.Expr) -> int:
    """The depth of a parsed tree, walked without recursion; stops past :data:`MAX_DEPTH`."""
    stack = [(root, 1)]
    deepest = 0
    while stack and deepest <= MAX_DEPTH:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.iter_expressions())
    return deepest


@dataclass
class Context:
    """What the rules look at: the SQL text, its parse, the standard and the policy."""

    sql: str
    standard: Standard
    policy: Policy
    dataset: str | None
    # The SQL names of the datasets in the public catalog, read only to guide a
    # query that names a dataset without its provider.
    catalog: Callable[[], Iterable[str]] | None = None

    @cached_property
    def tokens(self) -> list[Token]:
        try:
            return _DIALECT.tokenize(self.sql)
        except TokenError as error:
            raise _syntax_error(error, self.sql) from None

    @cached_property
    def statements(self) -> list[exp.Expr]:
        if _nesting(self.tokens) > MAX_NESTING:
            raise _too_deep(MAX_NESTING)
        try:
            parsed = _DIALECT.parser().parse(self.tokens, self.sql)
        except ParseError as error:
            raise _syntax_error(error, self.sql) from None
        except RecursionError:
            # The pre-scan bounds what recursion the parser can meet; this is the
            # last resort should a shape it does not count still go too deep.
            raise _too_deep(MAX_NESTING) from None
        return [statement for statement in parsed if statement is not None]

    @cached_property
    def words(self) -> Source:
        """The query's own text, to quote parts of the parse as the consumer wrote them."""
        return Source(self.sql, self.tokens)

    @cached_property
    def select(self) -> exp.Select:
        statement = self.statements[0]
        assert isinstance(statement, exp.Select), "rule order: statement runs first"
        return statement

    @cached_property
    def resolver(self) -> Resolver:
        return Resolver(self.select, self.standard, self.words)

    def body(self) -> list[exp.Expr]:
        """Every part of the SELECT except its FROM clause."""
        parts: list[exp.Expr] = list(self.select.expressions)
        for key in ("where", "group"):
            if self.select.args.get(key) is not None:
                parts.append(self.select.args[key])
        return parts


Rule = Callable[[Context], None]


def nesting(ctx: Context) -> None:
    if _nesting(ctx.tokens) > MAX_NESTING:
        raise _too_deep(MAX_NESTING)
    if any(_tree_depth(statement) > MAX_DEPTH for statement in ctx.statements):
        raise _too_deep(MAX_DEPTH)


def syntax(ctx: Context) -> None:
    if not ctx.statements:
        raise _refuse("syntax", "the query is empty", "write one SELECT ... FROM <dataset>")


def comment(ctx: Context) -> None:
    # A text of comments alone tokenizes to nothing.
    if any(token.comments for token in ctx.tokens) or (not ctx.tokens and ctx.sql.strip()):
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


def _query_root(node: exp.Expr) -> exp.Expr:
    """The query inside the brackets a whole statement may be wrapped in."""
    while isinstance(node, exp.Subquery) and isinstance(node.this, exp.Expr):
        node = node.this
    return node


def set_operation(ctx: Context) -> None:
    root = _query_root(ctx.statements[0])
    if isinstance(root, exp.Select | exp.SetOperation) and any(
        isinstance(node, exp.SetOperation) for node in root.walk()
    ):
        raise _refuse(
            "set_operation",
            "UNION, INTERSECT and EXCEPT are not accepted",
            "ask each part as its own query (each spends its own ε)",
        )


def statement(ctx: Context) -> None:
    node = _query_root(ctx.statements[0])
    if not isinstance(node, exp.Select):
        first = next(t for t in ctx.tokens if t.token_type is not TokenType.L_PAREN)
        raise _refuse(
            "statement",
            f"only SELECT queries are accepted, not {first.text.upper()}",
            "ask for aggregates: SELECT <dimension>, COUNT(*) FROM <dataset> GROUP BY <dimension>",
        )


def subquery(ctx: Context) -> None:
    root = ctx.statements[0]
    nested = [n for n in root.walk() if isinstance(n, exp.Select | exp.Subquery) and n is not root]
    if root.args.get("with") is not None or root.args.get("with_") is not None or nested:
        raise _refuse(
            "subquery",
            "subqueries and WITH clauses are not accepted",
            "write one flat SELECT over the dataset; filter with WHERE",
        )


def table(ctx: Context) -> None:
    source = ctx.select.args.get("from_") or ctx.select.args.get("from")
    wanted = ctx.dataset or "<provider>.<dataset>"
    if source is None:
        raise _refuse("table", "the query reads no dataset", f"add FROM {wanted}")
    node = source.this
    if not isinstance(node, exp.Table):
        raise _refuse(
            "table_function",
            f"only a dataset may follow FROM, not {ctx.words.quote(node)!r}",
            f"use FROM {wanted}",
        )
    if isinstance(node.this, exp.Func):
        name = ctx.words.name(node.this)
        if name.lower().startswith(_SYSTEM_PREFIXES):
            raise _refuse(
                "system_table", f"{name}() describes the system and cannot be queried", _ask(ctx)
            )
        raise _refuse(
            "table_function",
            f"the table function {name}() is not accepted",
            f"query the dataset by name: FROM {wanted}",
        )
    if not isinstance(node.this, exp.Identifier):
        raise _refuse(
            "unknown_table",
            f"{ctx.words.quote(node)!r} does not name a dataset",
            f"use FROM {wanted}",
        )
    name = node.name
    schema = node.text("db")
    catalog = node.text("catalog")
    if node.this.quoted and not schema and not catalog:
        provider, slash, dataset = name.partition("/")
        if slash and _SLUG_PART.fullmatch(provider) and _SLUG_PART.fullmatch(dataset):
            raise _catalog_form(ctx.words.quote(node), provider, dataset)
    if (node.this.quoted and any(mark in name.lower() for mark in _FILE_HINTS)) or any(
        mark in part for part in (schema, catalog) for mark in ("/", "\\")
    ):
        raise _refuse("file_path", "file paths cannot be queried", _ask(ctx))
    system = {schema.lower(), catalog.lower()} & _SYSTEM_SCHEMAS
    if system or (not schema and name.lower().startswith(_SYSTEM_PREFIXES)):
        raise _refuse(
            "system_table",
            f"{ctx.words.quote(node)!r} is a system table and cannot be queried",
            _ask(ctx),
        )
    slugs = all(_SLUG_PART.fullmatch(part) for part in (schema, name))
    if not catalog and slugs and "-" in schema + name:
        raise _catalog_form(ctx.words.quote(node), schema, name)
    if ctx.dataset is None and not schema and _DATASET_PART.fullmatch(name.lower()):
        raise _unqualified(ctx, ctx.words.quote(node), name.lower())
    named = f"{schema}.{name}".lower()
    if (
        ctx.dataset is None
        and not catalog
        and all(_DATASET_PART.fullmatch(part) for part in named.split("."))
    ):
        ctx.dataset = named
    if catalog or named != (ctx.dataset or "").lower():
        raise _refuse(
            "unknown_table",
            f"{ctx.words.quote(node)!r} is not the dataset this query is for"
            if ctx.dataset
            else f"{ctx.words.quote(node)!r} is not a dataset name",
            _ask(ctx),
        )
    for key, value in node.args.items():
        if key in _TABLE_PARTS or not value:
            continue
        if key in ("joins", "laterals"):
            raise _refuse("join", "joins are not accepted in a private query", "use a plain FROM")
        modifier = _MODIFIERS.get(key) or ctx.words.quote(value) or "this table modifier"
        raise _refuse(
            "table_modifier",
            f"{modifier} on the dataset is not accepted",
            "read the whole dataset: a plain FROM, no sampling, no time travel",
        )
    alias = node.args.get("alias")
    if isinstance(alias, exp.TableAlias) and alias.columns:
        raise _refuse(
            "table_modifier",
            "renaming the dataset's columns in FROM is not accepted",
            f"give the dataset an alias without a column list: FROM {ctx.dataset} AS v",
        )


def _unqualified(ctx: Context, written: str, name: str) -> PolicyViolation:
    """The refusal of a dataset named without its provider, naming the one meant when
    the public catalog holds exactly one dataset of that name."""
    matches = sorted(
        {known for known in (ctx.catalog() if ctx.catalog else ()) if known.endswith(f".{name}")}
    )
    if len(matches) == 1:
        hint = f"write FROM {matches[0]}"
    elif matches:
        hint = f"say which provider's: FROM {' or FROM '.join(matches)}"
    else:
        hint = (
            f"write FROM <provider>.{name}; `entrepot catalog search` lists the datasets "
            "and their SQL names"
        )
    return _refuse("unknown_table", f"{written!r} names a dataset without its provider", hint)


def _ask(ctx: Context) -> str:
    if ctx.dataset:
        return f"query the dataset by name: FROM {ctx.dataset}"
    return "name it <provider>.<dataset>, e.g. FROM riverside_hospitals.outpatient_visits"


def join(ctx: Context) -> None:
    if ctx.select.args.get("joins") or ctx.select.args.get("laterals"):
        raise _refuse(
            "join",
            "joins are not accepted in a private query",
            "a private join is planned from both datasets' policies (entrepot query runs "
            "one); this checker reads one dataset",
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
            if isinstance(node, _OTHER_QUANTILES) or isinstance(node.parent, QUANTILES):
                raise _refuse(
                    "quantile",
                    f"the quantile {_function_name(ctx, node)} is not accepted",
                    "write MEDIAN(cost), QUANTILE_CONT(cost, 0.9) or PERCENTILE_CONT(0.9) "
                    "WITHIN GROUP (ORDER BY cost): the answer is a point of a grid over the "
                    "measure's bounds, one level per aggregate",
                )
            if isinstance(node, exp.AggFunc):
                allowed = ", ".join(a.upper() for a in ctx.policy.aggregates)
                raise _refuse(
                    "aggregate_function",
                    f"the aggregate {_function_name(ctx, node)} is not accepted",
                    f"use one of: {allowed}",
                )
            raise _refuse(
                "function",
                f"the function {_function_name(ctx, node)} is not accepted",
                "use only COUNT, SUM, AVG, MEDIAN, QUANTILE_CONT, date_trunc and literal "
                "comparisons",
            )


def _function_name(ctx: Context, node: exp.Func) -> str:
    """``getenv()`` as written, ``CASE``, or the quoted call."""
    if isinstance(node, exp.Case):
        return "CASE"
    name = ctx.words.name(node)
    return f"{name}()" if name else repr(ctx.words.quote(node))


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
        for node in aggregate_nodes(part):
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
        # An ordering is only the argument of PERCENTILE_CONT(q) WITHIN GROUP (...).
        loose = isinstance(node, exp.Order | exp.Ordered) and not node.find_ancestor(
            exp.WithinGroup
        )
        if loose or not isinstance(node, _ALLOWED_NODES):
            quoted = ctx.words.quote(node)
            raise _refuse(
                "expression",
                f"{quoted!r} is not accepted in a private query"
                if quoted
                else "part of the query is not accepted in a private query",
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


SOURCE_RULES: tuple[Rule, ...] = (
    nesting,
    comment,
    syntax,
    single_statement,
    set_operation,
    statement,
    subquery,
    table,
)
RULES: tuple[Rule, ...] = (
    *SOURCE_RULES,
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
    try:
        for rule in rules:
            rule(ctx)
        return ctx.resolver.query(ctx.dataset or "", ctx.policy)
    except RecursionError:
        # The nesting rule bounds the depth every later rule meets; this is the
        # last resort should a shape it does not count still go too deep.
        raise _too_deep(MAX_DEPTH) from None


_NO_STANDARD = Standard("", "", "", "", ())
_NO_POLICY = Policy(aggregate_columns=(), where_columns=(), group_by_columns=())


def source(sql: str, *, catalog: Callable[[], Iterable[str]] | None = None) -> str:
    """The ``provider.dataset`` name ``sql`` reads, found by :data:`SOURCE_RULES`.

    Needs no standard or policy, so a caller can look up the dataset's with it.
    Raises :class:`PolicyViolation` naming the rule when the query reads no
    dataset, or something else (a system table, a file, a function, a subquery).
    ``catalog`` lists the SQL names of the public catalog's datasets; it is called
    only to name the dataset meant by a name without its provider.
    """
    ctx = Context(sql=sql, standard=_NO_STANDARD, policy=_NO_POLICY, dataset=None, catalog=catalog)
    try:
        for rule in SOURCE_RULES:
            rule(ctx)
    except RecursionError:
        raise _too_deep(MAX_NESTING) from None
    assert ctx.dataset is not None, "the table rule names the dataset or refuses"
    return ctx.dataset
