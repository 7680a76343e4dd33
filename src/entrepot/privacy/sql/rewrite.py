"""The rewrite: bound each privacy unit's contribution, clamp measures, aggregate exactly.

Contribution bounding, when the standard does not declare one row per unit, weights
each unit's rows instead of dropping some of them::

    units:   per unit, its number of rows n (after the query's WHERE)
    result:  per group, Σ w, Σ w·clamp(x), Σ w·[x not null] over rows, where
             w = min(1, R / n), R the rows-per-unit bound (the policy's, or the
             version's own estimate, :mod:`entrepot.privacy.bounds`)

A unit with more than R rows counts as exactly R rows in total, spread over its
groups like its rows are; its averages are unchanged. R is the same with or without
GROUP BY, so the groups of a grouped answer add up to the ungrouped one before noise.
The weight depends on the unit's own rows only, so removing one unit changes no
other unit's weight: the condition the sensitivity below needs. Counting each unit's
rows is one hash aggregate over the rows, joined back on the unit; no window and no
sort (a ``row_number() <= k`` over rows costs several times more, see
benchmarks/RESULTS.md).

COUNT(DISTINCT unit) bounds groups instead: per (unit, group) one pair, per unit its
number of groups g, and each pair weighs ``min(1, G' / g)``.

Sensitivity (adding or removing one unit, the neighbouring relation the budget is
stated in), with ``G' = min(G, number of output groups)`` and ``M = max(|low|,
|high|)`` for a measure clamped to ``[low, high]``:

- rows and value counts: the unit adds ``Σ w ≤ R`` in total, so ``Δ₁ = Δ₂ = R``
  (all of it may land in one group);
- sums: ``|Σ w·clamp(x)| ≤ R·M``, so ``Δ₁ = Δ₂ = R·M``;
- an AVG's centred sum, ``Σ w·(clamp(x) − (low + high)/2)``: ``Δ₁ = Δ₂ = R·(high −
  low)/2``, half of ``R·M`` when ``low = 0`` (the AVG adds the midpoint times its
  noisy count back);
- distinct units: at most 1 per group and ``G'`` in total, so ``Δ₁ = G'`` and
  ``Δ₂ = √G'``.

Without a GROUP BY ``G' = 1``; with one row per unit nothing is weighted (``R = 1``).

What bounding removed is returned beside each bounded quantity, per group, in a
column ``<name>_removed``: a unit with ``n > R`` rows loses ``(1 - w)`` of its value,
counted up to :data:`REMOVED_CAP` times its bound (each of its rows adds
``min(n - R, C) / n`` of its measure, ``C = REMOVED_CAP·R``), so one unit moves the
total removed by at most ``C`` rows (``C·M`` for a sum, ``REMOVED_CAP·G'`` pairs for
distinct units): :attr:`Quantity.removed` is that sensitivity.

A query whose counts or sums may have their removed part put back also returns
:data:`OVER`, per group: the units with more than
``(REMOVED_CAP + 1)·R`` rows (each row adds ``1 / n`` for a unit of ``n`` rows above
that), the units whose removed rows the capped total leaves out. One unit moves its
total over the groups by at most 1.

Versions published with per-unit columns (:mod:`entrepot.engine.units`) get a
second text, :attr:`Rewrite.counted`, with the same semantics and cheaper steps: a
query without a filter reads each unit's row count from the row itself (the count
is over the whole version, which is what a filter of TRUE counts), so nothing is
aggregated per unit; one with a filter sums each group in one pass, keeping apart
per unit (by its integer key) only the rows of units whose stored count exceeds the
bound (no filter can take a unit above its count), and weights those partial sums
by the unit's count over the filter. Older versions get
:attr:`Rewrite.template`.

That filtered text reads its partial sums twice, through a CTE: once to count each
heavy unit's rows, once to weight them. DuckDB computes the CTE once; Spark inlines
it, so it scanned the file twice (2.3× its raw query at 10M rows), and a window over
the partial sums instead (one scan) still cost 2.4×: grouping the heavy units' rows
by (unit, group) makes about as many partial rows as rows, each shuffled twice and
sorted. Engines other than DuckDB get :attr:`Rewrite.broadcast` instead, the same
values in two reads, neither grouped by (unit, group): the first reads only the
unit and filter columns and counts each heavy unit's rows over the filter (a few
thousand units); that small table is broadcast to the second, which weights each
row by its unit's count as it sums the groups (1.9× the raw query at 10M rows, in
the same run as the window's 2.4×). DuckDB keeps the join over partial sums: it
computes its CTE once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from entrepot.engine.units import UNIT_KEY, UNIT_ROWS
from entrepot.privacy.policy import Policy
from entrepot.privacy.sql.query import Query
from entrepot.standards.schema import Standard

__all__ = ["OVER", "REMOVED_CAP", "Derived", "Quantity", "Rewrite", "midpoint", "rewrite"]

# What bounding removed from one unit is counted up to this many times its bound: a
# unit with up to 4·R rows is fully accounted, one with more as if it had 4·R. The
# removed total's noise grows with the cap: at 3 (R the 95th percentile of rows per
# unit) it covers every patient of the demo (up to 40 rows at R = 11), whose COUNT's
# removed total is then told from zero at ε 1 by a grouped answer's tenth of ε (at 9,
# at no ε up to 1); on the accuracy benchmark's skewed node it counts 14.2% of the
# rows of the 16.4% bounding removes (394 of 125,298 patients above 4·R).
REMOVED_CAP = 3

# The table of heavy units' counts that :attr:`Rewrite.broadcast` joins to the rows.
_HEAVY = "__heavy"


# The templates are written in DuckDB's dialect and transpiled to the engine's last.
def _ident(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql("duckdb")


def _literal(text: str) -> str:
    return exp.Literal.string(text).sql("duckdb")


@dataclass(frozen=True)
class Quantity:
    """One vector of exact per-group values that gets its own noise.

    ``kind`` is ``rows`` (rows, bounded), ``values`` (non-null values of
    ``column``), ``units`` (distinct privacy units), ``sum`` (of ``column``,
    clamped) or ``centred`` (of ``column`` clamped, less its bounds' midpoint: an
    AVG's); ``l1`` and ``l2`` are its sensitivities to one unit; ``removed`` is the
    sensitivity of its ``_removed`` column's total (0, and no column, when none is
    reported); ``auxiliary`` when no aggregate's value reads it, only the policy's
    threshold or the sizing of a quantile's interval.
    """

    name: str
    kind: str
    column: str | None
    l1: float
    l2: float
    removed: float = 0.0
    auxiliary: bool = False


# The units above that cap, whose removed rows the removed total leaves short: one
# unit moves their count by at most 1.
OVER = Quantity(name="__over", kind="over", column=None, l1=1.0, l2=1.0)


@dataclass(frozen=True)
class Derived:
    """A SUM read from two quantities released anyway, with no noise of its own:
    ``SUM(x) = centred + midpoint · count``, the AVG's centred sum of ``column`` and
    the count it is over (post-processing).

    Released directly, the SUM would take a share of the budget; read this way, its
    noise has variance ``v_c + m²·v_n`` at the shares those two already had, never
    more than a SUM of its own at the same share (``Δ_c² + m²·Δ_n² ≤ Δ_sum²``, since
    ``max(|low|, |high|) = |m| + (high - low)/2``), and the other quantities' shares
    grow.
    """

    name: str
    column: str
    centred: str
    count: str
    midpoint: float


@dataclass(frozen=True)
class Rewrite:
    """The engine SQL (for any view name) and the quantities it returns per group.

    ``template`` runs on any version; ``counted`` (empty when nothing is bounded)
    only on versions carrying the per-unit columns, and returns the same values;
    ``broadcast`` (empty without a filter) is ``counted`` for engines other than
    DuckDB, which read a shared CTE once per reference; its table of heavy units'
    counts, ``__heavy``, is to be broadcast to the rows it weights.
    """

    template: str
    counted: str
    where: str
    keys: tuple[str, ...]
    quantities: tuple[Quantity, ...]
    groups_per_unit: int
    bounded: bool
    rows_per_unit: int
    samples: tuple[str, str] = ("", "")
    sampled: tuple[str, ...] = ()
    broadcast: str = ""
    derived: tuple[Derived, ...] = ()
    # Whether the SQL returns :data:`OVER`: a count or sum whose removed part may be
    # put back.
    over: bool = False
    # Whether no unit can be in more groups than a distinct count's removed total
    # counts (a public fact of the groups): its put-back is then whole.
    units_whole: bool = False

    def sql(self, view: str, dialect: str = "duckdb", *, counted: bool = False) -> str:
        """The SQL over ``view``, transpiled to ``dialect``; ``counted`` when ``view``
        has the per-unit columns (see :data:`entrepot.engine.units.HIDDEN_COLUMNS`)."""
        if counted and self.broadcast and dialect != "duckdb":
            return self._fill(self.broadcast, view, dialect, broadcast=_HEAVY)
        template = self.counted if counted and self.counted else self.template
        return self._fill(template, view, dialect)

    def samples_sql(self, view: str, dialect: str = "duckdb", *, counted: bool = False) -> str:
        """The SQL returning, per group, the list of values each quantile's measure
        (``sampled``, column ``__x<i>``) takes, each with its row's weight in the
        bounded data (see :func:`_samples_sql`); empty without quantiles."""
        template, stored = self.samples
        if not template:
            return ""
        return self._fill(stored if counted and stored else template, view, dialect)

    def _fill(self, template: str, view: str, dialect: str, *, broadcast: str = "") -> str:
        # The consumer-written filter goes in last, so no text of its is substituted.
        text = template.replace("{view}", _ident(view)).replace("{where}", self.where)
        if dialect == "duckdb":
            return text
        # A literal such as 9.0 is a DECIMAL in both dialects; DuckDB computes with it
        # in fixed point at no cost, Spark in arbitrary precision at several times a
        # double's. The values are weights and clamps, which a DOUBLE holds exactly
        # enough, so elsewhere they are DOUBLE.
        tree = sqlglot.parse_one(text, read="duckdb").transform(_as_double)
        if broadcast:
            # DuckDB's dialect has no join hints: the hint is put on the tree.
            for select in tree.find_all(exp.Select):
                if any(join.this.name == broadcast for join in select.args.get("joins") or []):
                    hint = exp.JoinHint(this="BROADCAST", expressions=[exp.to_table(broadcast)])
                    select.set("hint", exp.Hint(expressions=[hint]))
        return tree.sql(dialect=dialect)

    def sensitivity(self, quantity: Quantity, norm: int) -> float:
        """Δ₁ (``norm=1``) or Δ₂ (``norm=2``) of ``quantity`` under add/remove of one unit."""
        return quantity.l1 if norm == 1 else quantity.l2


def _as_double(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Literal) and not node.is_string and not node.this.isdigit():
        return exp.cast(node.copy(), exp.DataType.Type.DOUBLE)
    return node


def _count_of(standard: Standard, column: str | None) -> tuple[str, str | None]:
    """The count an aggregate of ``column`` is over: rows, or the column's values."""
    if column is None or standard.field(column).required:
        return ("rows", None)
    return ("values", column)


def _derivable(query: Query, standard: Standard) -> set[str]:
    """The measures whose SUM is read from their centred sum and count (:class:`Derived`):
    those whose count an aggregate releases with a full share."""
    own = set(_needs(query, standard, None, derive=False, sizes=False))
    return {
        a.column
        for a in query.aggregates
        if a.function == "sum" and a.column and _count_of(standard, a.column) in own
    }


def _needs(
    query: Query,
    standard: Standard,
    policy: Policy | None,
    *,
    derive: bool = True,
    sizes: bool = True,
) -> list[tuple[str, str | None]]:
    """The quantities a query needs, without duplicates, in a stable order; without a
    ``policy``, those its aggregates read (not the count its threshold needs), and
    without ``sizes`` not the count that only sizes a quantile either. With
    ``derive``, a SUM read from its centred sum and count needs those two instead."""

    def count_of(column: str | None) -> tuple[str, str | None]:
        return _count_of(standard, column)

    derived = _derivable(query, standard) if derive else set()
    needs: list[tuple[str, str | None]] = []
    for aggregate in query.aggregates:
        if aggregate.function == "count":
            needs.append(count_of(aggregate.column))
        elif aggregate.function == "count_distinct":
            needs.append(("units", None))
        elif aggregate.function == "sum" and aggregate.column in derived:
            needs += [("centred", aggregate.column), count_of(aggregate.column)]
        elif aggregate.function == "sum":
            needs.append(("sum", aggregate.column))
        elif aggregate.function == "quantile":
            # The quantile itself is selected from the values; its count tells a
            # group from an empty one and sizes the interval.
            if sizes:
                needs.append(count_of(aggregate.column))
        else:
            # An AVG sums deviations from its bounds' midpoint: half a plain sum's
            # sensitivity when the bounds start at 0.
            needs += [("centred", aggregate.column), count_of(aggregate.column)]
    if (
        policy is not None
        and policy.threshold > 0
        and ("units", None) not in needs
        and ("rows", None) not in needs
    ):
        needs.append(("rows", None))
    return list(dict.fromkeys(needs))


def _read(query: Query, standard: Standard) -> set[tuple[str, str | None]]:
    """The quantities whose removed total an aggregate's removed share reads: a COUNT's
    or SUM's own (a derived SUM's two), the count an AVG or a quantile is over."""

    def count_of(column: str | None) -> tuple[str, str | None]:
        return _count_of(standard, column)

    derived = _derivable(query, standard)
    read: set[tuple[str, str | None]] = set()
    for aggregate in query.aggregates:
        if aggregate.function == "count_distinct":
            read.add(("units", None))
        elif aggregate.function == "sum" and aggregate.column in derived:
            read |= {("centred", aggregate.column), count_of(aggregate.column)}
        elif aggregate.function == "sum":
            read.add(("sum", aggregate.column))
        else:
            read.add(count_of(aggregate.column))
    return read


def midpoint(standard: Standard, column: str) -> float:
    """The midpoint of a measure's public bounds, which an AVG's sum is centred on."""
    low, high = standard.field(column).bounds or (0.0, 0.0)
    return (low + high) / 2


def _clamp(column: str, low: float, high: float) -> str:
    # The same values as least(greatest(x, low), high), NaN (DuckDB's largest value)
    # and NULL included, at less than half its cost per row (0.03 vs 0.18 CPU
    # seconds over the plain SUM at 10M rows). TRY_CAST: no stored value can make a
    # row fail (it cannot on a numeric column; TRY_CAST costs what CAST does).
    x = _ident(column)
    return (
        f"CASE WHEN {x} > {high!r} THEN {high!r} WHEN {x} < {low!r} THEN {low!r} "
        f"ELSE TRY_CAST({x} AS DOUBLE) END"
    )


def _weight(rows: int, count: str) -> str:
    """``min(1, rows / count)``; NULL when ``count`` is (a row without a unit)."""
    return f"CASE WHEN {count} <= {rows} THEN 1.0 ELSE {float(rows)!r} / {count} END"


def _removed(rows: int, count: str) -> str:
    """A row's share of what bounding removed from its unit: ``min(count - rows, C) /
    count`` above the bound, ``C = REMOVED_CAP·rows``; NULL without a unit."""
    cap = float(REMOVED_CAP * rows)
    return (
        f"CASE WHEN {count} <= {rows} THEN 0.0 ELSE least({count} - {rows}, {cap!r}) / {count} END"
    )


def _over(rows: int, count: str) -> str:
    """A row's share of its unit when the unit has more rows than the removed total
    counts, ``(REMOVED_CAP + 1)·rows``: ``1 / count``, else 0 (and 0 without a unit)."""
    return f"CASE WHEN {count} > {(REMOVED_CAP + 1) * rows} THEN 1.0 / {count} ELSE 0.0 END"


def _key_sql(column: str, unit: str | None) -> str:
    if unit is None:
        return _ident(column)
    return f"TRY_CAST(date_trunc({_literal(unit)}, {_ident(column)}) AS DATE)"


def rewrite(
    query: Query, standard: Standard, policy: Policy, *, groups: int, rows_per_unit: int
) -> Rewrite:
    """Rewrite an accepted query; ``groups`` is the number of public output groups and
    ``rows_per_unit`` the bound ``R`` on each unit's rows, the same grouped or not."""
    unit = standard.privacy_unit
    bounded = unit is not None and not standard.one_row_per_unit
    spread = min(policy.groups_per_unit, max(groups, 1)) if bounded and query.keys else 1
    rows = rows_per_unit if bounded else 1
    keys = [f"__k{i}" for i in range(len(query.keys))]
    key_sql = [_key_sql(key.column, key.unit) for key in query.keys]
    where = query.where.sql(dialect="duckdb") if query.where is not None else "TRUE"

    quantities = []
    read = _read(query, standard)
    own = set(_needs(query, standard, None, sizes=False))
    needs = _needs(query, standard, policy)
    for i, (kind, column) in enumerate(needs):
        if kind == "units":
            l1, l2 = float(spread), math.sqrt(spread)
        elif kind == "sum":
            assert column is not None, "a sum always names its measure"
            low, high = standard.field(column).bounds or (0.0, 0.0)
            l1 = l2 = rows * max(abs(low), abs(high))
        elif kind == "centred":
            assert column is not None, "an average always names its measure"
            low, high = standard.field(column).bounds or (0.0, 0.0)
            l1 = l2 = rows * (high - low) / 2
        else:
            l1 = l2 = float(rows)
        # Nothing is reported when the policy spends nothing on it, nor for distinct
        # units without GROUP BY (each unit is then in one group: none is removed),
        # nor where no aggregate's removed share reads it.
        reported = (
            bounded
            and policy.removed_epsilon > 0
            and (kind != "units" or bool(query.keys))
            and (kind, column) in read
        )
        removed = REMOVED_CAP * l1 if reported else 0.0
        quantities.append(
            Quantity(
                name=f"__q{i}",
                kind=kind,
                column=column,
                l1=l1,
                l2=l2,
                removed=removed,
                auxiliary=(kind, column) not in own,
            )
        )

    names = {(q.kind, q.column): q.name for q in quantities}
    derived = tuple(
        Derived(
            name=f"__q{len(needs) + i}",
            column=column,
            centred=names[("centred", column)],
            count=names[_count_of(standard, column)],
            midpoint=midpoint(standard, column),
        )
        for i, column in enumerate(sorted(_derivable(query, standard)))
    )
    # What a put-back counts short (see removed_shares): rows removed from a count,
    # or values from a sum, of units above the cap.
    over = (
        bounded
        and any(q.removed and q.kind != "units" for q in quantities)
        and any(a.function in ("count", "sum") for a in query.aggregates)
    )
    counted = broadcast = ""
    if bounded:
        assert unit is not None
        shape = _Shape(quantities, standard, keys, key_sql, rows, spread, over)
        template = _bounded_sql(shape, _ident(unit))
        counted = _bounded_sql(shape, _ident(UNIT_KEY), precounted=query.where is None, stored=True)
        if query.where is not None:
            broadcast = _bounded_sql(shape, _ident(UNIT_KEY), stored=True, heavy=True)
    else:
        template = _direct_sql(quantities, standard, keys, key_sql, unit)
    sampled = tuple(
        dict.fromkeys(a.column for a in query.aggregates if a.function == "quantile" and a.column)
    )
    samples = ("", "")
    if sampled:
        clamped = [_clamp(c, *(standard.field(c).bounds or (0.0, 0.0))) for c in sampled]
        shape = _Shape([], standard, keys, key_sql, rows, spread, False)
        if not bounded:
            samples = (_samples_sql(shape, clamped, None), "")
        else:
            assert unit is not None
            samples = (
                _samples_sql(shape, clamped, _ident(unit)),
                _samples_sql(
                    shape,
                    clamped,
                    _ident(UNIT_KEY),
                    stored=True,
                    precounted=query.where is None,
                ),
            )
    return Rewrite(
        template=template,
        counted=counted,
        where=where,
        keys=tuple(keys),
        quantities=tuple(quantities),
        groups_per_unit=spread,
        bounded=bounded,
        rows_per_unit=rows,
        samples=samples,
        sampled=sampled,
        broadcast=broadcast,
        derived=derived,
        over=over,
        units_whole=groups <= (REMOVED_CAP + 1) * spread,
    )


def _samples_sql(
    shape: _Shape,
    clamped: list[str],
    u: str | None,
    *,
    stored: bool = False,
    precounted: bool = False,
) -> str:
    """Per group, each clamped measure's non-null values with their rows' weights
    ``min(1, R/n_u)``, ``n_u`` its unit's rows after the filter, as the bounded counts
    and sums weight them: every row of every unit, so a unit's values weigh at most R
    in all and none is drawn at random. Column ``__x<i>`` lists the ``i``-th measure's
    pairs ``{x: value, w: weight}`` (one list of pairs keeps each weight with its value
    on any engine: two lists need not come out in the same order).

    ``u`` names units (None: every row is its own, of weight 1); ``stored`` reads each
    unit's row count over the version from its per-unit column: a unit with at most R
    rows there weighs 1 whatever the filter, and only the others are counted over it,
    unless ``precounted`` (no filter) lets the stored count stand. A row without a unit
    is left out, as the bounded counts leave it."""
    keys = shape.keys
    select = [f"{expr} AS {key}" for expr, key in zip(shape.key_sql, keys, strict=True)]
    values = [f"{expr} AS __x{i}" for i, expr in enumerate(clamped)]
    # a weight of 1.0 alone would be a DECIMAL, which reaches numpy as Python objects
    pair = "{{'x': __x{i}, 'w': CAST(__w AS DOUBLE)}}"
    lists = [
        f"list({pair.format(i=i)}) FILTER (WHERE __x{i} IS NOT NULL) AS __x{i}"
        for i in range(len(clamped))
    ]
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    ctes = []
    if u is None:
        kept = f"SELECT {', '.join([*select, *values])}, 1.0 AS __w FROM {{view}} WHERE {{where}}"
    elif stored:
        rows = _ident(UNIT_ROWS)
        if precounted:
            weight, source = _weight(shape.rows, rows), "{view}"
        else:
            ctes.append(
                f"__heavy AS (SELECT {u} AS __u, count(*) AS __n FROM {{view}} "
                f"WHERE {rows} > {shape.rows} AND ({{where}}) GROUP BY 1)"
            )
            weight = f"CASE WHEN __n IS NULL THEN 1.0 ELSE {_weight(shape.rows, '__n')} END"
            # only a unit above R in the version looks its count up
            source = (
                f"{{view}} LEFT JOIN __heavy "
                f"ON CASE WHEN {rows} > {shape.rows} THEN {u} END = __heavy.__u"
            )
        kept = (
            f"SELECT {', '.join([*select, *values])}, {weight} AS __w FROM {source} "
            f"WHERE {rows} IS NOT NULL AND ({{where}})"
        )
    else:
        ctes.append(
            f"__units AS (SELECT {u} AS __u, count(*) AS __n FROM {{view}} "
            "WHERE {where} GROUP BY 1)"
        )
        kept = (
            f"SELECT {', '.join([*select, *values])}, {_weight(shape.rows, '__n')} AS __w "
            f"FROM {{view}} JOIN __units ON {u} = __units.__u WHERE {{where}}"
        )
    ctes.append(f"__kept AS ({kept})")
    return f"WITH {', '.join(ctes)} SELECT {', '.join([*keys, *lists])} FROM __kept{group}"


def _measure(q: Quantity, standard: Standard) -> str:
    if q.kind == "values":
        return f"CAST({_ident(q.column or '')} IS NOT NULL AS DOUBLE)"
    if q.kind == "sum":
        low, high = standard.field(q.column or "").bounds or (0.0, 0.0)
        return _clamp(q.column or "", low, high)
    if q.kind == "centred":
        low, high = standard.field(q.column or "").bounds or (0.0, 0.0)
        return f"({_clamp(q.column or '', low, high)} - {midpoint(standard, q.column or '')!r})"
    return "1.0"


def _weighted(q: Quantity, standard: Standard, weight: str) -> str:
    return weight if q.kind == "rows" else f"{_measure(q, standard)} * {weight}"


def _direct_sql(
    quantities: list[Quantity],
    standard: Standard,
    keys: list[str],
    key_sql: list[str],
    unit: str | None,
) -> str:
    select = [f"{expr} AS {key}" for expr, key in zip(key_sql, keys, strict=True)]
    for q in quantities:
        if q.kind == "units":
            expr = f"count({_ident(unit or '')})"
        elif q.kind == "rows":
            expr = "count(*)"
        elif q.kind == "values":
            expr = f"count({_ident(q.column or '')})"
        else:
            expr = f"sum({_measure(q, standard)})"
        select.append(f"CAST(coalesce({expr}, 0) AS DOUBLE) AS {q.name}")
    group = f" GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))}" if keys else ""
    return f"SELECT {', '.join(select)} FROM {{view}} WHERE {{where}}{group}"


@dataclass(frozen=True)
class _Shape:
    """What both texts of a bounded rewrite share."""

    quantities: list[Quantity]
    standard: Standard
    keys: list[str]
    key_sql: list[str]
    rows: int
    spread: int
    over: bool


def _bounded_sql(
    shape: _Shape, u: str, *, precounted: bool = False, stored: bool = False, heavy: bool = False
) -> str:
    """The bounded SQL, units named by the SQL expression ``u``; ``precounted`` reads
    each unit's row count from the stored column instead of counting it; ``stored``
    (with a filter) counts only the units the stored count cannot settle, over partial
    sums, or (``heavy``) in a read of their own joined to the rows."""
    keys = shape.keys
    ctes, parts = [], []
    weighted = [q for q in shape.quantities if q.kind != "units"]
    distinct = [q for q in shape.quantities if q.kind == "units"]
    select = [f"{expr} AS {key}" for expr, key in zip(shape.key_sql, keys, strict=True)]
    if weighted:
        if heavy:
            ctes += _heavy_ctes(shape, weighted, u)
        elif stored and not precounted:
            ctes += _split_ctes(shape, weighted, u)
        else:
            ctes.append(_weighted_cte(shape, weighted, u, precounted=precounted))
        parts.append("__weighted")
    if distinct:
        q = distinct[0]
        ctes.append(
            f"__pairs AS (SELECT {', '.join([f'{u} AS __u', *select])} FROM {{view}} "
            f"WHERE {{where}} GROUP BY {', '.join(str(i + 1) for i in range(len(keys) + 1))})"
        )
        ctes.append("__spread AS (SELECT __u, count(*) AS __g FROM __pairs GROUP BY 1)")
        total = f"sum(least(1.0, {float(shape.spread)!r} / __g))"
        cut = f"sum({_removed(shape.spread, '__g')})"
        outer = [*keys, f"CAST(coalesce({total}, 0) AS DOUBLE) AS {q.name}"]
        if q.removed:
            outer.append(f"CAST(coalesce({cut}, 0) AS DOUBLE) AS {q.name}_removed")
        by_keys = f" GROUP BY {', '.join(keys)}" if keys else ""
        ctes.append(
            f"__distinct AS (SELECT {', '.join(outer)} FROM __pairs "
            f"JOIN __spread USING (__u){by_keys})"
        )
        parts.append("__distinct")
    if len(parts) == 1:
        body = f"SELECT * FROM {parts[0]}"
    elif keys:
        body = f"SELECT * FROM __weighted FULL JOIN __distinct USING ({', '.join(keys)})"
    else:
        body = "SELECT * FROM __weighted CROSS JOIN __distinct"
    return f"WITH {', '.join(ctes)} {body}"


def _weighted_cte(shape: _Shape, weighted: list[Quantity], u: str, *, precounted: bool) -> str:
    """``__weighted``: each row weighted by its unit's count, read from the stored
    column (``precounted``) or counted over the filter and joined back on ``u``."""
    select = [f"{expr} AS {key}" for expr, key in zip(shape.key_sql, shape.keys, strict=True)]
    group = _group_by(len(shape.keys))
    if precounted:
        # A row without a unit has no count: its weight is NULL and sums skip it,
        # as the join below drops it.
        count, units, source = _ident(UNIT_ROWS), "", "{view}"
    else:
        count = "__n"
        units = (
            f"__units AS (SELECT {u} AS __u, count(*) AS __n FROM {{view}} "
            "WHERE {where} GROUP BY 1), "
        )
        source = f"{{view}} JOIN __units ON {u} = __units.__u"
    weight, cut = _weight(shape.rows, count), _removed(shape.rows, count)
    sums = [
        f"CAST(coalesce(sum({_weighted(q, shape.standard, weight)}), 0) AS DOUBLE) AS {q.name}"
        for q in weighted
    ]
    sums += [
        f"CAST(coalesce(sum({_weighted(q, shape.standard, cut)}), 0) AS DOUBLE) AS {q.name}_removed"
        for q in weighted
        if q.removed
    ]
    if shape.over:
        sums.append(f"CAST(coalesce(sum({_over(shape.rows, count)}), 0) AS DOUBLE) AS {OVER.name}")
    return (
        f"{units}__weighted AS (SELECT {', '.join(select + sums)} FROM {source} "
        f"WHERE {{where}}{group})"
    )


def _split_ctes(shape: _Shape, weighted: list[Quantity], u: str) -> list[str]:
    """``__weighted`` for a filtered query on a version with per-unit columns.

    A unit with at most R rows in the version has at most R after any filter: its
    weight is 1 and nothing of it is removed. One pass sums each quantity per group,
    keeping apart per unit only the rows of units above R (by their key; NULL for all
    others), so light units cost no per-unit grouping and no row is joined. A unit's
    weight depends on its count alone, so it multiplies the unit's partial sums
    exactly: the values are those of :func:`_weighted_cte`.

    Each heavy unit's count over the filter is the sum of its partial counts,
    joined back on the key.
    """
    keys = shape.keys
    select = [f"{expr} AS {key}" for expr, key in zip(shape.key_sql, keys, strict=True)]
    heavy = f"CASE WHEN {_ident(UNIT_ROWS)} > {shape.rows} THEN {u} END AS __u"
    partial = [f"sum({_measure(q, shape.standard)}) AS __p{i}" for i, q in enumerate(weighted)]
    # A row without a unit belongs to no unit the bound accounts for: it is left out.
    parts = (
        f"__parts AS (SELECT {', '.join([*select, heavy, 'count(*) AS __c', *partial])} "
        "FROM {view} "
        f"WHERE {_ident(UNIT_ROWS)} IS NOT NULL AND ({{where}}) "
        f"{_group_by(len(keys) + 1)})"
    )
    units = "__units AS (SELECT __u, sum(__c) AS __n FROM __parts WHERE __u IS NOT NULL GROUP BY 1)"
    source = "__parts LEFT JOIN __units USING (__u)"
    weight = f"CASE WHEN __n IS NULL THEN 1.0 ELSE {_weight(shape.rows, '__n')} END"
    cut = f"CASE WHEN __n IS NULL THEN 0.0 ELSE {_removed(shape.rows, '__n')} END"
    sums = [
        f"CAST(coalesce(sum(__p{i} * {weight}), 0) AS DOUBLE) AS {q.name}"
        for i, q in enumerate(weighted)
    ]
    sums += [
        f"CAST(coalesce(sum(__p{i} * {cut}), 0) AS DOUBLE) AS {q.name}_removed"
        for i, q in enumerate(weighted)
        if q.removed
    ]
    if shape.over:
        # a heavy unit's partial counts add up to its count: its shares to 1
        share = f"CASE WHEN __n IS NULL THEN 0.0 ELSE {_over(shape.rows, '__n')} END"
        sums.append(f"CAST(coalesce(sum(__c * {share}), 0) AS DOUBLE) AS {OVER.name}")
    by_keys = f" GROUP BY {', '.join(keys)}" if keys else ""
    outer = f"__weighted AS (SELECT {', '.join([*keys, *sums])} FROM {source}{by_keys})"
    return [parts, units, outer]


def _heavy_ctes(shape: _Shape, weighted: list[Quantity], u: str) -> list[str]:
    """``__weighted`` for a filtered query on a version with per-unit columns, in two
    reads and no grouping by unit and group: the values of :func:`_split_ctes`.

    The first read counts over the filter the rows of each unit above R in the
    version (by its key; one with at most R there keeps weight 1, whatever the
    filter). The second joins those counts to the rows (only a heavy unit's rows look
    its count up), weights each row by its unit's count and sums the groups.
    """
    keys = shape.keys
    select = [f"{expr} AS {key}" for expr, key in zip(shape.key_sql, keys, strict=True)]
    rows = _ident(UNIT_ROWS)
    counts = (
        f"{_HEAVY} AS (SELECT {u} AS __u, count(*) AS __n FROM {{view}} "
        f"WHERE {rows} > {shape.rows} AND ({{where}}) GROUP BY 1)"
    )
    weight = f"CASE WHEN __n IS NULL THEN 1.0 ELSE {_weight(shape.rows, '__n')} END AS __w"
    cut = f"CASE WHEN __n IS NULL THEN 0.0 ELSE {_removed(shape.rows, '__n')} END AS __r"
    if shape.over:
        cut += f", CASE WHEN __n IS NULL THEN 0.0 ELSE {_over(shape.rows, '__n')} END AS __o"
    values = [
        f"{_measure(q, shape.standard)} AS __x{i}"
        for i, q in enumerate(weighted)
        if q.kind != "rows"
    ]
    # A row without a unit belongs to no unit the bound accounts for: it is left out.
    inner = (
        f"SELECT {', '.join([*select, weight, cut, *values])} FROM {{view}} "
        f"LEFT JOIN {_HEAVY} ON CASE WHEN {rows} > {shape.rows} THEN {u} END = {_HEAVY}.__u "
        f"WHERE {rows} IS NOT NULL AND ({{where}})"
    )
    value = {q.name: "" if q.kind == "rows" else f"__x{i} * " for i, q in enumerate(weighted)}
    sums = [f"CAST(coalesce(sum({value[q.name]}__w), 0) AS DOUBLE) AS {q.name}" for q in weighted]
    sums += [
        f"CAST(coalesce(sum({value[q.name]}__r), 0) AS DOUBLE) AS {q.name}_removed"
        for q in weighted
        if q.removed
    ]
    if shape.over:
        sums.append(f"CAST(coalesce(sum(__o), 0) AS DOUBLE) AS {OVER.name}")
    by_keys = f" GROUP BY {', '.join(keys)}" if keys else ""
    outer = f"__weighted AS (SELECT {', '.join([*keys, *sums])} FROM ({inner}){by_keys})"
    return [counts, outer]


def _group_by(count: int) -> str:
    return f" GROUP BY {', '.join(str(i + 1) for i in range(count))}" if count else ""
