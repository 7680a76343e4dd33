"""Private joins in SQL: two datasets joined on link keys, split into what each runs.

A join query reads two datasets, each held by its own provider::

    SELECT v.age_band, COUNT(DISTINCT v.patient_id) AS people
    FROM riverside_hospitals.outpatient_visits v
    JOIN jade_pay.payments p ON v.patient_id = p.person_id
    WHERE p.merchant_sector = 'Q' AND v.diagnosis_group = 'X'
    GROUP BY v.age_band

:func:`join_sources` finds the two datasets from the text alone (so the coordinator
can look up both policies); :func:`check_join` splits the query into three parts that
the single-dataset checker accepts or refuses as it would any query:

- per side, the WHERE conditions on that side (checked against its own standard and
  policy), which its holder applies before it blinds anything;
- one query over the *joined view*: per matched pair of rows, the attribute columns
  the query reads from either side, named ``<alias>__<column>``, and the pair's
  person, a per-join number standing for one value of the link key. It is checked
  with a standard and a policy made of both sides' (:func:`joined_policy`), and
  bounded, noised and answered by the same plan as a query on one dataset.

Refused, each under its rule: more than one join, outer, cross, natural, semi and
comma joins and USING (``join``); a condition other than one equality of a column of
each side (``join_condition``); columns that are not link keys of one concept
(``link_key``); a dataset joined with itself (``self_join``); a WHERE condition that
mixes the sides (``join_where``); a column without its side's alias
(``join_column``); and a dataset whose policy does not name the other in its
``join_with`` (``join_policy``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from sqlglot import exp

from entrepot.errors import PolicyViolation
from entrepot.privacy.coverage import Coverage
from entrepot.privacy.policy import AGGREGATES, Policy
from entrepot.privacy.sql.query import Query
from entrepot.privacy.sql.rules import SOURCE_RULES, Context, check, table
from entrepot.standards.linkkeys import check_joinable
from entrepot.standards.schema import Field, Role, Standard

__all__ = [
    "JOINED_VIEW",
    "JoinSide",
    "JoinedQuery",
    "Side",
    "as_written",
    "check_join",
    "is_join",
    "join_sources",
    "joined_policy",
]

# The name the joined query reads; it only ever names the view of the joined pairs.
JOINED_VIEW = "psi.joined"

T = TypeVar("T")


def _refuse(rule: str, message: str, hint: str) -> PolicyViolation:
    return PolicyViolation(message, rule=rule, hint=hint)


@dataclass(frozen=True)
class Side:
    """One dataset of a join as the checker needs it: public metadata only."""

    dataset: str  # its SQL name, provider.dataset
    ref: str  # its catalog name, provider/dataset
    standard: Standard
    policy: Policy


@dataclass(frozen=True)
class JoinSide:
    """What one holder runs for a join: its filter, its link key, the columns it sends."""

    dataset: str
    alias: str
    link: str  # the link-key column
    where: str  # the checked filter in DuckDB SQL over its own columns; TRUE for none
    columns: tuple[str, ...]  # attribute columns the joined query reads, never identifiers

    def renamed(self, column: str) -> str:
        """The name ``column`` of this side has in the joined view."""
        return f"{self.alias}__{column}"


@dataclass(frozen=True)
class JoinedQuery:
    """A join query split: the two holders' parts and the query over the joined view."""

    sides: tuple[JoinSide, JoinSide]
    concept: str  # the link keys' concept
    sql: str  # the query over :data:`JOINED_VIEW`, WHERE included (for its groups)
    standard: Standard  # of the joined view: every column of both sides, renamed
    policy: Policy  # both providers' policies together (:func:`joined_policy`)
    query: Query  # ``sql`` as the checker accepted it

    @property
    def unit(self) -> str:
        """The joined view's privacy unit: one number per matched link-key value."""
        return self.standard.privacy_unit or ""


def _joins(select: exp.Select) -> list[exp.Join]:
    return list(select.args.get("joins") or [])


def join_sources(
    sql: str, *, catalog: Callable[[], Iterable[str]] | None = None
) -> tuple[str, ...]:
    """The SQL names of the datasets ``sql`` reads: one, or two for a join.

    Runs the checker's source rules on the text (a system table, a file or a function
    is refused under its own rule), then refuses any join but an inner join of two
    datasets on an equality, before any policy is read.
    """
    ctx = Context(sql=sql, standard=_NO_STANDARD, policy=_NO_POLICY, dataset=None, catalog=catalog)
    for rule in SOURCE_RULES:
        rule(ctx)
    assert ctx.dataset is not None, "the table rule names the dataset or refuses"
    joins = _joins(ctx.select)
    if not joins and not ctx.select.args.get("laterals"):
        return (ctx.dataset,)
    _shape(ctx.select)
    other = Context(
        sql=f"SELECT 1 FROM {joins[0].this.sql('duckdb')}",
        standard=_NO_STANDARD,
        policy=_NO_POLICY,
        dataset=None,
        catalog=catalog,
    )
    table(other)
    assert other.dataset is not None
    if other.dataset == ctx.dataset:
        raise _refuse(
            "self_join",
            f"{ctx.dataset} is joined with itself",
            "a private join links two holders' datasets; ask about one dataset with a plain query",
        )
    return (ctx.dataset, other.dataset)


_NO_STANDARD = Standard("", "", "", "", ())
_NO_POLICY = Policy(aggregate_columns=(), where_columns=(), group_by_columns=())


def is_join(sql: str) -> bool:
    """Whether ``sql`` parses as a SELECT with a join; False for anything the checker
    refuses earlier (it then refuses it as any query)."""
    ctx = Context(sql=sql, standard=_NO_STANDARD, policy=_NO_POLICY, dataset=None)
    try:
        statements = ctx.statements
    except PolicyViolation:
        return False
    select = statements[0] if len(statements) == 1 else None
    return isinstance(select, exp.Select) and bool(
        select.args.get("joins") or select.args.get("laterals")
    )


def _shape(select: exp.Select) -> None:
    """Refuse every join but one inner join with an ON condition."""
    joins = _joins(select)
    if select.args.get("laterals"):
        raise _refuse("join", "lateral joins are not accepted", "join two datasets on link keys")
    if len(joins) > 1:
        raise _refuse(
            "join",
            f"the query joins {len(joins) + 1} datasets; a private join links two",
            "join two datasets per query: FROM a.b x JOIN c.d y ON x.<link key> = y.<link key>",
        )
    [join] = joins
    kind = (join.args.get("kind") or "").upper()
    side = (join.args.get("side") or "").upper()
    method = (join.args.get("method") or "").upper()
    written = " ".join(w for w in (method, side, kind) if w)
    if side or method or kind not in ("", "INNER"):
        raise _refuse(
            "join",
            f"{written} JOIN is not accepted; a private join is an inner join",
            "write JOIN ... ON x.<link key> = y.<link key>: only people in both datasets "
            "are counted",
        )
    if join.args.get("using"):
        raise _refuse(
            "join_condition",
            "JOIN ... USING is not accepted",
            "name both link keys: ON x.<link key> = y.<link key>",
        )
    if join.args.get("on") is None:
        raise _refuse(
            "join",
            "a join without ON (a comma or cross join) is not accepted",
            "join on link keys: FROM a.b x JOIN c.d y ON x.<link key> = y.<link key>",
        )
    if not isinstance(join.this, exp.Table):
        raise _refuse("subquery", "only a dataset may be joined", "JOIN <provider>.<dataset>")


def _alias(node: exp.Table) -> str:
    return (node.alias or node.name).lower()


@dataclass
class _Split:
    """The parse of a join query, its sides found by their aliases."""

    select: exp.Select
    aliases: tuple[str, str]
    sides: tuple[Side, Side]

    def side(self, column: exp.Column) -> int:
        qualifier = column.text("table").lower()
        if qualifier in self.aliases and not column.text("db"):
            return self.aliases.index(qualifier)
        named = " or ".join(f"{a}.{column.name}" for a in self.aliases)
        raise _refuse(
            "join_column",
            f"{column.sql('duckdb')!r} does not say which dataset it is from",
            f"qualify every column with its dataset's alias: {named}",
        )


def check_join(sql: str, left: Side, right: Side) -> JoinedQuery:
    """Check a join of ``left`` (the FROM dataset) and ``right`` (the joined one).

    Raises :class:`PolicyViolation` naming the rule that refuses.
    """
    ctx = Context(sql=sql, standard=_NO_STANDARD, policy=_NO_POLICY, dataset=None)
    for rule in SOURCE_RULES:
        rule(ctx)
    select = ctx.select.copy()
    _shape(select)
    [join] = _joins(select)
    first = select.args.get("from_") or select.args.get("from")
    assert first is not None, "the table rule ran"
    assert isinstance(first.this, exp.Table), "the table rule ran"
    aliases = (_alias(first.this), _alias(join.this))
    if aliases[0] == aliases[1]:
        raise _refuse(
            "join_column",
            f"both datasets are called {aliases[0]!r} in the query",
            "give each dataset its own alias: FROM a.b x JOIN c.d y",
        )
    split = _Split(select, aliases, (left, right))
    links = _condition(split, join.args["on"])
    concept = check_joinable(left.standard, links[0], right.standard, links[1]).name
    _allowed(left, right)
    _allowed(right, left)
    wheres = _wheres(split)
    unit = concept.replace("-", "_")
    body = _joined_select(split, links, unit)
    joined_sql = body.sql("duckdb")
    standard = _joined_standard(split, unit)
    policy = joined_policy(split.aliases, left.policy, right.policy)
    query = as_written(
        aliases, lambda: check(joined_sql, standard=standard, policy=policy, dataset=JOINED_VIEW)
    )
    read = {f.name for f in _read_fields(query, standard)}
    sides = tuple(
        JoinSide(
            dataset=s.dataset,
            alias=a,
            link=link,
            where=where,
            columns=tuple(f.name for f in s.standard.fields if f"{a}__{f.name}" in read),
        )
        for s, a, link, where in zip(split.sides, aliases, links, wheres, strict=True)
    )
    return JoinedQuery(
        sides=(sides[0], sides[1]),
        concept=concept,
        sql=joined_sql,
        standard=standard,
        policy=policy,
        query=query,
    )


def _condition(split: _Split, on: exp.Expr) -> tuple[str, str]:
    """The link-key column of each side the ON condition equates."""
    while isinstance(on, exp.Paren):
        on = on.this
    hint = "join on one equality of link keys: ON x.<link key> = y.<link key>"
    if not isinstance(on, exp.EQ) or not all(
        isinstance(c, exp.Column) for c in (on.this, on.expression)
    ):
        raise _refuse(
            "join_condition", f"the join condition {on.sql('duckdb')!r} is not accepted", hint
        )
    found: dict[int, str] = {}
    for column in (on.this, on.expression):
        found[split.side(column)] = column.name
    if len(found) != 2:
        raise _refuse("join_condition", "the join condition compares columns of one dataset", hint)
    for index, name in found.items():
        side = split.sides[index]
        if name not in side.standard.field_names:
            keys = [f.name for f in side.standard.fields if f.link_key is not None]
            raise _refuse(
                "link_key",
                f"{name!r} is not a column of {side.dataset}",
                f"join on a link key of {side.standard.name}: {', '.join(keys) or 'it has none'}",
            )
    return found[0], found[1]


def _allowed(side: Side, other: Side) -> None:
    """Refuse unless ``side``'s policy names ``other`` (its catalog name or standard)."""
    names = {other.ref, other.dataset, other.standard.name}
    if names & set(side.policy.join_with):
        return
    raise _refuse(
        "join_policy",
        f"the policy of {side.ref} does not allow joining it with {other.ref}",
        f"its provider may add {other.ref} (or its standard {other.standard.name}) to "
        "join_with in the dataset's policy",
    )


def _conjuncts(node: exp.Expr | None) -> list[exp.Expr]:
    if node is None:
        return []
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    if isinstance(node, exp.Paren) and isinstance(node.this, exp.And):
        return _conjuncts(node.this)
    return [node]


def _wheres(split: _Split) -> tuple[str, str]:
    """Each side's filter: its conditions, checked as a query on its dataset alone."""
    clause = split.select.args.get("where")
    parts: list[list[exp.Expr]] = [[], []]
    for condition in _conjuncts(clause.this if clause is not None else None):
        sides = {split.side(c) for c in condition.find_all(exp.Column)}
        if len(sides) > 1:
            raise _refuse(
                "join_where",
                f"the condition {condition.sql('duckdb')!r} mixes both datasets",
                "write conditions that each read one dataset, joined by AND: each holder "
                "applies its own before anything is blinded",
            )
        parts[sides.pop() if sides else 0].append(condition)
    out: list[str] = []
    for side, alias, conditions in zip(split.sides, split.aliases, parts, strict=True):
        if not conditions:
            out.append("TRUE")
            continue
        where = exp.and_(*[c.copy() for c in conditions])
        text = f"SELECT COUNT(*) FROM {side.dataset} AS {alias} WHERE {where.sql('duckdb')}"
        # Aggregates are the joined query's to check; the side checks its filter only.
        policy = dataclasses.replace(side.policy, aggregates=AGGREGATES)
        checked = check(text, standard=side.standard, policy=policy, dataset=side.dataset)
        assert checked.where is not None
        out.append(checked.where.sql("duckdb"))
    return out[0], out[1]


def _default_name(node: exp.Expr) -> str:
    """The output name a single-dataset query gives an unnamed projection."""
    if isinstance(node, exp.Column):
        return node.name
    if isinstance(node, exp.TimestampTrunc | exp.DateTrunc) and isinstance(node.this, exp.Column):
        return f"{node.this.name}_{node.text('unit').lower()}"
    if isinstance(node, exp.Count) and isinstance(node.this, exp.Distinct):
        return "units"
    if isinstance(node, exp.Count) and isinstance(node.this, exp.Star):
        return "count"
    functions: dict[type[exp.Expr], str] = {exp.Count: "count", exp.Sum: "sum", exp.Avg: "avg"}
    function = functions.get(type(node))
    if function is not None and isinstance(node.this, exp.Column):
        return f"{function}_{node.this.name}"
    return node.sql("duckdb")


def _joined_select(split: _Split, links: tuple[str, str], unit: str) -> exp.Select:
    """The query over the joined view: columns renamed, people counted by the unit."""
    select = split.select.copy()
    select.set("joins", None)
    select.set("from_", exp.From(this=exp.to_table(JOINED_VIEW)))
    select.set("from", None)
    named: list[exp.Expr] = []
    for item in select.expressions:
        if isinstance(item, exp.Alias):
            named.append(item)
        else:
            named.append(exp.alias_(item, _default_name(item), quoted=True))
    select.set("expressions", named)
    aliases = {a.alias.lower() for a in named if isinstance(a, exp.Alias)}
    for count in list(select.find_all(exp.Count)):
        distinct = count.this
        if not isinstance(distinct, exp.Distinct):
            continue
        targets = distinct.expressions
        if len(targets) == 1 and isinstance(targets[0], exp.Column):
            index = split.side(targets[0])
            side = split.sides[index]
            if targets[0].name in (links[index], side.standard.privacy_unit):
                targets[0].replace(exp.column(unit, quoted=True))
                continue
        raise _refuse(
            "count_distinct",
            f"{count.sql('duckdb')!r} counts neither people nor a link key",
            f"count the people both datasets share: COUNT(DISTINCT {split.aliases[0]}.{links[0]})",
        )
    for column in list(select.find_all(exp.Column)):
        if column.name == unit and not column.text("table"):
            continue
        alias_in_group = isinstance(column.parent, exp.Group) and column.name.lower() in aliases
        if alias_in_group and not column.text("table"):
            continue
        index = split.side(column)
        column.replace(exp.column(f"{split.aliases[index]}__{column.name}", quoted=True))
    return select


def _joined_standard(split: _Split, unit: str) -> Standard:
    fields = [Field(name=unit, type="integer", role=Role.IDENTIFIER, required=True)]
    for side, alias in zip(split.sides, split.aliases, strict=True):
        fields += [
            dataclasses.replace(f, name=f"{alias}__{f.name}", link_key=None)
            for f in side.standard.fields
        ]
    left, right = split.sides
    return Standard(
        name=f"{left.standard.name} JOIN {right.standard.name}",
        title="",
        description="",
        version="",
        fields=tuple(fields),
        privacy_unit=unit,
        one_row_per_unit=False,
    )


def joined_policy(aliases: tuple[str, str], left: Policy, right: Policy) -> Policy:
    """What a query over two datasets' join may touch and spend: each column as its own
    policy says, and every limit the stricter of the two."""

    def renamed(alias: str, names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(f"{alias}__{n}" for n in names)

    pairs = tuple(zip(aliases, (left, right), strict=True))
    coverage = Coverage(
        periods=tuple((f"{a}__{c}", f, t) for a, p in pairs for c, f, t in p.coverage.periods),
        codes=tuple((f"{a}__{c}", codes) for a, p in pairs for c, codes in p.coverage.codes),
    )
    both_gaussian = left.mechanism == right.mechanism == "gaussian"
    return Policy(
        aggregate_columns=sum((renamed(a, p.aggregate_columns) for a, p in pairs), ()),
        where_columns=sum((renamed(a, p.where_columns) for a, p in pairs), ()),
        group_by_columns=sum((renamed(a, p.group_by_columns) for a, p in pairs), ()),
        aggregates=tuple(a for a in left.aggregates if a in right.aggregates),
        # No version estimate exists for the joined rows: the stricter bound a provider
        # set, else the fallback the plan applies.
        rows_per_unit=min(
            (p.rows_per_unit for p in (left, right) if p.rows_per_unit is not None),
            default=None,
        ),
        groups_per_unit=min(left.groups_per_unit, right.groups_per_unit),
        threshold=max(left.threshold, right.threshold),
        small_groups="merge" if left.small_groups == right.small_groups == "merge" else "suppress",
        # Pure ε unless both providers accept (ε, δ).
        mechanism="gaussian" if both_gaussian else "laplace",
        delta=min(left.delta, right.delta),
        max_epsilon_per_query=min(left.max_epsilon_per_query, right.max_epsilon_per_query),
        default_epsilon=min(left.default_epsilon, right.default_epsilon),
        dataset_epsilon_cap=min(left.dataset_epsilon_cap, right.dataset_epsilon_cap),
        latency_floor_ms=max(left.latency_floor_ms, right.latency_floor_ms),
        max_groups=min(left.max_groups, right.max_groups),
        coverage=coverage,
        near_zero="mark" if left.near_zero == right.near_zero == "mark" else "suppress",
        removed_epsilon=max(left.removed_epsilon, right.removed_epsilon),
    )


def as_written(aliases: tuple[str, str], checking: Callable[[], T]) -> T:
    """Run ``checking``; a refusal names columns as the query wrote them (``p.district``)."""
    try:
        return checking()
    except PolicyViolation as refused:
        pattern = re.compile(rf"\b({'|'.join(re.escape(a) for a in aliases)})__")
        raise PolicyViolation(
            pattern.sub(r"\1.", refused.message),
            rule=refused.rule,
            hint=pattern.sub(r"\1.", refused.hint or ""),
        ) from None


def _read_fields(query: Query, standard: Standard) -> list[Field]:
    """The joined view's columns the accepted query reads besides its unit: group keys
    and aggregated columns (its filter ran at the holders)."""
    names = [k.column for k in query.keys] + [a.column for a in query.aggregates if a.column]
    return [standard.field(n) for n in dict.fromkeys(names) if n != standard.privacy_unit]
