"""Planning and running a private query: the API the query coordinator calls.

::

    plan = entrepot.privacy.plan(sql, standard=std, policy=pol, dataset="riverside_hospitals.
               outpatient_visits", epsilon=0.5, codes=codelist, version=version_hash)
    plan.epsilon, plan.delta      # the price, from the text and the policy alone
    plan.fingerprint              # stable id of (query, policy, version, ε, groups, noise)
    answer = plan.run(session, view)  # exact aggregates in an engine session, then OpenDP noise

:func:`plan` touches no data: it checks the SQL, prices it, lists the public output
groups and rewrites the SQL, so the ledger can reserve the price before
:meth:`Plan.run` reads anything. A plan never touches the metadata database.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from entrepot._numbers import MIN_EPSILON
from entrepot.engine import Session
from entrepot.engine.units import HIDDEN_COLUMNS
from entrepot.errors import InvalidInput, PolicyViolation, QueryFailed, StorageCorrupt
from entrepot.privacy import _quantiles, mechanisms
from entrepot.privacy._groups import Codes, enumerate_groups, normalize
from entrepot.privacy._post import (
    PUT_BACK,
    Noisy,
    estimate_rows,
    near_zero_alpha,
    recipes,
    removed_shares,
    size_name,
)
from entrepot.privacy._quantiles import QuantileSpec
from entrepot.privacy.answer import Answer, Estimate
from entrepot.privacy.bounds import Bound, Removal, bound_in_force
from entrepot.privacy.policy import Policy
from entrepot.privacy.sql.query import Query
from entrepot.privacy.sql.rewrite import OVER, Rewrite, rewrite
from entrepot.privacy.sql.rules import check, source
from entrepot.standards import SQL_TYPES
from entrepot.standards.schema import Standard

__all__ = ["Plan", "dataset_of", "plan", "price"]

_log = logging.getLogger("entrepot.privacy")
# The part of a full share a count gets when only the policy's threshold or a
# quantile's sizing reads it (a query of SUMs alone on a dataset with a threshold, a
# median): the threshold, the near-zero mark and a quantile's interval need it
# coarsely, the figure asked for precisely.
AUXILIARY_SHARE = 0.25
# The least share of ε a query of counts without GROUP BY spends on what bounding
# removed. The put-back total B + E has noise variance ∝ 1/(1-f)² + 3²/f², least at
# f ≈ 0.68; half keeps B near its own precision when E cannot be told from zero. On
# the demo's COUNT(*) (6% of rows removed) E is then told at ε 0.5 and 1.
PUT_BACK_SHARE = 0.5
# The share of ε testing the put-back's assumption (no unit above 4·R rows), as a
# part of the share its removed totals spend, taken from the answer's own. Where the
# test tells units above it from zero, a put-back's interval has no high end (what
# they lost beyond the cap is unknown); with none above, it costs the answer's own
# counts precision they have to spare (the demo's noise of 88 rows on 29,520 at
# ε 0.5).
OVER_SHARE = 0.5
# How a note names where the rows-per-unit bound came from.
_SOURCES = {
    "policy": "the dataset's policy",
    "estimate": "estimated privately from the version's rows when it was published",
    "fallback": "the default: the version has no estimate",
}


@dataclass(frozen=True)
class Plan:
    """A checked, priced and rewritten query, ready to run on a registered view."""

    query: Query
    rewrite: Rewrite
    standard: Standard
    policy: Policy
    groups: tuple[tuple[Any, ...], ...]
    epsilon: float
    delta: float
    mechanism: str
    scales: dict[str, float]
    fingerprint: str
    table: str
    notes: tuple[str, ...] = field(default=())
    # The scale of the noisy total each bounded quantity lost to bounding, and the
    # share of the query's budget those totals spend.
    removal_scales: dict[str, float] = field(default_factory=dict)
    removed_budget: float = 0.0
    # The scale of the noisy count of units above the removed total's cap, when the
    # answer may put its removed part back (0: it may not).
    over_scale: float = 0.0
    # Each quantile aggregate's selection scales, by aggregate name.
    quantiles: tuple[QuantileSpec, ...] = ()
    # The share of the version's rows its bound removes, released at publish, which
    # the answer states for each aggregate in place of one of its own (None: it
    # states its own, if any).
    removed_at_publish: Estimate | None = None
    # The version's removed rows over its kept rows, released at publish, where its
    # bound is in force: what a COUNT or SUM puts back where it cannot tell its own
    # removed total from zero (None: nothing).
    removed_ratio: float | None = None

    def sql(self, view: str, dialect: str = "duckdb", *, counted: bool = False) -> str:
        """The engine SQL computing the exact, bounded aggregates over ``view``;
        ``counted`` when ``view`` carries the per-unit columns a publish adds."""
        return self.rewrite.sql(view, dialect, counted=counted)

    def run(self, session: Session, view: str) -> Answer:
        """Compute the exact aggregates in ``session`` over ``view``, then release them.

        A version published with per-unit columns is read through them, any other
        one by counting units in the query; both give the same values. The view's
        column types are checked against the standard first: the checker typed every
        literal by the standard, so a column of another type could make a comparison
        cast stored values. Any failure raises :class:`QueryFailed` with one message
        whatever its cause, since the cause may depend on the data; the budget stays
        spent (the data may have been read) and the operator's log has the cause.
        """
        try:
            return self.release(*self.exact(session, view))
        except Exception:
            _log.exception("a private query on %s failed after reading data", self.table)
            raise QueryFailed(
                f"the query on {self.table} failed after the data was read; its ε is spent",
                hint="the cause is not shown, as it may depend on the data: a time or "
                "memory limit, or a fault of the engine the operator's log names; "
                "retrying spends ε again",
            ) from None

    def exact(self, session: Session, view: str) -> tuple[pa.Table, pa.Table | None]:
        """The exact, bounded per-group table and, for quantiles, the per-group values:
        what :meth:`release` turns into an answer. Raises what the engine raises."""
        columns = session.columns(view)
        self._check_types(columns)
        counted = bool(self.rewrite.counted) and set(HIDDEN_COLUMNS) <= set(columns)
        exact = session.execute(self.sql(view, session.dialect, counted=counted))
        samples = None
        if self.quantiles:
            text = self.rewrite.samples_sql(view, session.dialect, counted=counted)
            samples = session.execute(text)
        return exact, samples

    def _check_types(self, columns: Mapping[str, str]) -> None:
        for column in self.standard.fields:
            stored = columns.get(column.name)
            if stored != SQL_TYPES[column.type]:
                raise StorageCorrupt(
                    f"{self.table}: column {column.name!r} is stored as {stored}, "
                    f"not {SQL_TYPES[column.type]} as its standard says"
                )

    def release(self, exact: pa.Table, samples: pa.Table | None = None) -> Answer:
        """Add noise to the exact per-group table :meth:`sql` returns and post-process;
        select each quantile from the per-group values ``samples`` holds (the table of
        :meth:`Rewrite.samples_sql`).

        Groups outside the public list are dropped and missing ones count as zero (or
        hold no values), so which groups appear never depends on the data.
        """
        quantities = self.rewrite.quantities
        positions, found = self._positions(exact)
        exact_vectors = {}
        for q in quantities:
            vector = np.zeros(len(self.groups), dtype=np.float64)
            vector[positions] = _column(exact, q.name)[found]
            exact_vectors[q.name] = vector
        # What bounding removed, over the public groups: one total per quantity.
        lost = {
            name: [math.fsum(_column(exact, f"{name}_removed")[found].tolist())]
            for name in self.removal_scales
        }
        mechanism = mechanisms.get(self.mechanism)
        vectors = {
            q.name: mechanism.release(exact_vectors[q.name], self.scales[q.name])
            for q in quantities
        }
        derived = self.rewrite.derived
        noisy = Noisy(mechanism, quantities, self.scales, vectors, derived)
        selected = self._quantiles(mechanism, noisy, samples)
        lossy = [q for q in quantities if q.name in lost]
        removed_totals = {
            name: mechanism.release(total, self.removal_scales[name])
            for name, total in lost.items()
        }
        over = None
        if self.over_scale > 0:
            units = math.fsum(_column(exact, OVER.name)[found].tolist())
            over = Noisy(
                mechanism,
                [OVER],
                {OVER.name: self.over_scale},
                {OVER.name: mechanism.release([units], self.over_scale)},
            )
        removed, put_back = removed_shares(
            self.query.aggregates,
            noisy,
            self.standard,
            Noisy(mechanism, lossy, self.removal_scales, removed_totals, derived),
            over,
            whole_units=self.rewrite.units_whole,
            ratio=self.removed_ratio,
        )
        if self.removed_at_publish is not None:
            removed = {a.name: self.removed_at_publish for a in self.query.aggregates}
        threshold_name = None
        if self.policy.threshold > 0:
            kinds = {q.kind: q.name for q in quantities}
            threshold_name = kinds.get("units", kinds.get("rows"))
        rows, suppressed, merged = estimate_rows(
            self.groups,
            self.query.aggregates,
            noisy,
            self.standard,
            threshold_name=threshold_name,
            threshold=self.policy.threshold,
            merge=self.policy.small_groups == "merge",
            drop_near_zero=self.policy.near_zero == "suppress",
            quantiles=selected,
            put_back=put_back,
        )
        return Answer(
            columns=self.query.output,
            keys=tuple(k.name for k in self.query.keys),
            aggregates=tuple(a.name for a in self.query.aggregates),
            rows=tuple(rows),
            epsilon=self.epsilon,
            delta=self.delta,
            mechanism=self.mechanism,
            scales=self._aggregate_scales(),
            suppressed=tuple(suppressed),
            merged=tuple(merged),
            threshold=self.policy.threshold,
            fingerprint=self.fingerprint,
            notes=self.notes,
            near_zero_threshold=self.near_zero_threshold,
            removed=removed,
            removed_budget=self.removed_budget,
            interval_of="bounded data" if self.rewrite.bounded else "data",
            removed_of="version" if self.removed_at_publish is not None else "answer",
        )

    def _quantiles(
        self, mechanism: mechanisms.Mechanism, noisy: Noisy, samples: pa.Table | None
    ) -> dict[str, tuple[list[float | None], list[float], list[float]]]:
        """Per quantile aggregate, each group's selected value and interval."""
        if not self.quantiles:
            return {}
        if samples is None:
            raise InvalidInput(
                "a plan with quantiles needs the values of Rewrite.samples_sql to release",
                hint="pass release(exact, samples), as Plan.run does",
            )
        empty = mechanisms.Weighted.of([])
        values = {c: [empty] * len(self.groups) for c in self.rewrite.sampled}
        if samples.num_rows:
            keys = [samples.column(k).to_pylist() for k in self.rewrite.keys]
            positions = [
                self._index.get(tuple(normalize(k[row]) for k in keys))
                for row in range(samples.num_rows)
            ]
            for i, column in enumerate(self.rewrite.sampled):
                values[column] = _weighted_lists(
                    samples.column(f"__x{i}"), positions, values[column]
                )
        out = {}
        for quantile in self.quantiles:
            size = noisy.count_name(quantile.column, self.standard)
            out[quantile.name] = _quantiles.estimate(
                mechanism,
                quantile,
                values[quantile.column],
                noisy.vectors[size],
                self.scales[size],
            )
        return out

    def halfwidths(self, alpha: float = 0.05) -> dict[str, float]:
        """Per aggregate, the half-width of one group's interval at confidence 1 - alpha,
        known before any data is read: from the noise scales the answer is released with.

        Exact for COUNT and SUM (a count's interval is then cut at 0; a SUM read from its
        centred sum and count gets that of the two noises' sum); for AVG, the
        half-width of its centred SUM, so about this divided by the group's size. A quantile's
        interval depends on its group's noisy size, so quantiles are left out.
        """
        mechanism = mechanisms.get(self.mechanism)
        return {
            name: mechanism.combined_halfwidth(noises, alpha)
            for name, noises in self._noises().items()
        }

    @property
    def near_zero_threshold(self) -> float:
        """The count under which a group is near zero: an empty group's noisy count
        exceeds it with probability 10⁻⁶ (:data:`entrepot.privacy._post.NEGLIGIBLE`)
        divided by the number of public groups, so that any of the answer's empty
        groups does with probability at most 10⁻⁶.

        A function of the public noise scale and groups only, so suppressing by it is too."""
        name = size_name(self.rewrite.quantities)
        if name is None:
            return 0.0
        kind = next(q.kind for q in self.rewrite.quantities if q.name == name)
        alpha = near_zero_alpha(kind, len(self.groups))
        return mechanisms.get(self.mechanism).halfwidth(self.scales[name], alpha)

    def _positions(self, exact: pa.Table) -> tuple[Any, Any]:
        """Each row's position among the public groups, and which rows have one."""
        if self.rewrite.keys:
            index = self._index
            keys = [[normalize(v) for v in exact.column(k).to_pylist()] for k in self.rewrite.keys]
            rows = [index.get(key, -1) for key in zip(*keys, strict=True)]
        else:
            rows = [0] * exact.num_rows
        at = np.asarray(rows, dtype=np.int64)
        found = at >= 0
        return at[found], found

    @cached_property
    def _index(self) -> dict[tuple[str, ...], int]:
        """Each public group's position, by the text its key values match by."""
        keys = (tuple(normalize(v) for v in group) for group in self.groups)
        return {key: i for i, key in enumerate(keys)}

    def _noises(self) -> dict[str, tuple[float, ...]]:
        """Per aggregate but quantiles, the scales of the noises its value adds up, each
        times its weight: one, or two for a SUM read from its centred sum and count."""
        by_kind = {(q.kind, q.column): q.name for q in self.rewrite.quantities}
        derived = {d.column: d for d in self.rewrite.derived}
        noises: dict[str, tuple[float, ...]] = {}
        for aggregate in self.query.aggregates:
            if aggregate.function == "quantile":
                continue
            if aggregate.function == "sum" and aggregate.column in derived:
                d = derived[aggregate.column]
                noises[aggregate.name] = (
                    self.scales[d.centred],
                    abs(d.midpoint) * self.scales[d.count],
                )
                continue
            if aggregate.function == "count_distinct":
                name = by_kind[("units", None)]
            elif aggregate.function == "sum":
                name = by_kind[("sum", aggregate.column)]
            elif aggregate.function == "avg":
                name = by_kind[("centred", aggregate.column)]
            else:
                name = by_kind.get(("values", aggregate.column), by_kind.get(("rows", None), ""))
            noises[aggregate.name] = (self.scales[name],)
        return noises

    def _aggregate_scales(self) -> dict[str, float]:
        # Two noises added up have the variance of one whose scale is their root sum of
        # squares (a Laplace draw's variance is 2b², a Gaussian's σ²).
        scales = {
            name: math.sqrt(math.fsum(s * s for s in noises))
            for name, noises in self._noises().items()
        }
        for quantile in self.quantiles:
            scales[quantile.name] = quantile.scale
        return {a.name: scales[a.name] for a in self.query.aggregates}


def _weighted_lists(
    column: pa.ChunkedArray, positions: list[int | None], groups: list[mechanisms.Weighted]
) -> list[mechanisms.Weighted]:
    """``groups`` with each public group's list of ``{x, w}`` pairs (a row of
    ``column``, placed at ``positions``) as its weighted values: all values and all
    weights are read out of Arrow as two float64 arrays at once, not pair by pair."""
    lists = column.combine_chunks()
    pairs, offsets = lists.values, lists.offsets.to_numpy()
    values = pairs.field("x").to_numpy(zero_copy_only=False)
    weights = pairs.field("w").to_numpy(zero_copy_only=False)
    out = list(groups)
    for row, position in enumerate(positions):
        start, stop = offsets[row], offsets[row + 1]
        if position is None or not lists[row].is_valid or start == stop:
            continue
        out[position] = mechanisms.Weighted.of(values[start:stop], weights[start:stop])
    return out


def _column(table: pa.Table, name: str) -> Any:
    """A numeric column as a float64 array, NULL read as 0."""
    column = pc.fill_null(table.column(name), 0.0).cast(pa.float64())
    return column.to_numpy()


def dataset_of(sql: str, *, catalog: Callable[[], Iterable[str]] | None = None) -> str:
    """The ``provider.dataset`` name a query reads, so the caller can find its policy.

    Raises :class:`PolicyViolation` under the rule that refuses what the query reads
    instead (no FROM, a system table, a file, a table function, a subquery), before
    any policy is looked up. ``catalog`` returns the SQL names of the datasets in the
    public catalog: a query naming ``outpatient_visits`` alone is then told the one
    qualified name it may mean. It is public, so the refusal reveals nothing else.
    """
    return source(sql, catalog=catalog)


def price(policy: Policy, epsilon: float | None = None) -> tuple[float, float]:
    """The (ε, δ) a query spends: ``epsilon`` (or the policy's default), capped.

    Raises :class:`PolicyViolation` (rule ``epsilon_cap``) above the policy's cap.
    """
    spend = policy.default_epsilon if epsilon is None else epsilon
    real = isinstance(spend, int | float) and not isinstance(spend, bool)
    if not real or not math.isfinite(spend) or spend < MIN_EPSILON:
        raise InvalidInput(
            f"ε must be a finite number of at least {MIN_EPSILON:g}, not {spend!r}", hint="e.g. 0.5"
        )
    if spend > policy.max_epsilon_per_query:
        raise PolicyViolation(
            f"ε {spend:g} is above the {policy.max_epsilon_per_query:g} one query may spend "
            "on this dataset",
            rule="epsilon_cap",
            hint=f"ask with ε <= {policy.max_epsilon_per_query:g}",
        )
    delta = policy.delta if policy.mechanism == "gaussian" else 0.0
    return float(spend), delta


def plan(
    sql: str,
    *,
    standard: Standard,
    policy: Policy,
    dataset: str | None = None,
    epsilon: float | None = None,
    codes: Codes = None,
    version: str = "",
    estimate: int | None = None,
    removed: Removal | None = None,
) -> Plan:
    """Check, price and rewrite ``sql`` without touching any data.

    ``dataset`` is the name the consumer must use (default: whatever the query
    names, see :func:`dataset_of`); ``codes`` gives a dimension's public code list
    by name (a mapping or a function); ``version`` is the dataset version the
    fingerprint binds to, ``estimate`` its rows-per-unit bound released at publish
    (:mod:`entrepot.privacy.bounds`), which bounds units unless the policy sets its
    own, and ``removed`` the rows that bound keeps and removes, released with it: an
    answer bounded by the estimate that could put nothing back (see
    :func:`_put_back_possible`) states their share and spends none of its ε on its
    own. Raises :class:`PolicyViolation` naming the rule.
    """
    query = check(sql, standard=standard, policy=policy, dataset=dataset)
    table = query.dataset
    spend, delta = price(policy, epsilon)
    groups = enumerate_groups(
        query, standard, codes, limit=policy.max_groups, coverage=policy.coverage
    )
    bound = bound_in_force(policy, estimate)
    rewritten = rewrite(query, standard, policy, groups=len(groups), rows_per_unit=bound.rows)
    mechanism = mechanisms.get(policy.mechanism)
    lossy = [q for q in rewritten.quantities if q.removed > 0]
    fraction = policy.removed_epsilon if lossy else 0.0
    if fraction > 0 and not query.keys and all(a.function == "count" for a in query.aggregates):
        # Counts without GROUP BY: what bounding removed is put back into the answer
        # itself, whose error is then that of B + E, least near an even split.
        fraction = max(fraction, PUT_BACK_SHARE)
    budget = mechanism.share(spend, delta, 1)
    # A removed total is bought to be put back; where none could be, the answer states
    # the version's share, released at publish, and its values get that ε.
    published: Estimate | None = None
    if (
        removed is not None
        and lossy
        and bound.source == "estimate"
        and not _put_back_possible(
            query, standard, rewritten, mechanism, removed, budget * fraction / len(lossy)
        )
    ):
        published, lossy, fraction = removed.share(), [], 0.0
    # The version's removed rows over its kept rows describe its whole rows: a WHERE
    # counts each unit's rows over the filter, so bounding removes less of them.
    ratio = None
    if removed is not None and bound.source == "estimate" and query.where is None:
        ratio = removed.ratio()
    # An answer that may put its removed part back tests the assumption that makes
    # it whole: see removed_shares.
    tested = fraction * OVER_SHARE if rewritten.over and fraction > 0 else 0.0
    # Sequential composition: ε (pure DP) or ρ (zCDP) adds up, so the query's budget
    # is split in these shares: one per noisy quantity and one per quantile, a count
    # only the threshold or a quantile's sizing reads getting AUXILIARY_SHARE of one.
    selected = [a for a in query.aggregates if a.function == "quantile"]
    weights = {q.name: AUXILIARY_SHARE if q.auxiliary else 1.0 for q in rewritten.quantities}
    share = budget * (1 - fraction - tested) / (sum(weights.values()) + len(selected))
    size = max(len(groups), 1)
    scales = {
        q.name: mechanism.scale(
            rewritten.sensitivity(q, mechanism.norm), share * weights[q.name], size
        )
        for q in rewritten.quantities
    }
    quantiles = tuple(
        _quantiles.spec(
            mechanism,
            a.name,
            a.column or "",
            a.level or 0.5,
            standard.field(a.column or "").bounds or (0.0, 0.0),
            rows=rewritten.rows_per_unit,
            share=share,
        )
        for a in selected
    )
    removal_scales = {}
    if fraction > 0:
        part = budget * fraction / len(lossy)
        removal_scales = {q.name: mechanism.scale(q.removed, part, 1) for q in lossy}
    over_scale = mechanism.scale(OVER.l1, budget * tested, 1) if tested else 0.0
    noise = {**scales, **{f"removed:{name}": s for name, s in removal_scales.items()}}
    if over_scale:
        noise[OVER.name] = over_scale
    noise.update({f"quantile:{q.name}": q.scale for q in quantiles})
    fingerprint = _fingerprint(query, policy, table, version, spend, delta, groups, noise)
    return Plan(
        query=query,
        rewrite=rewritten,
        standard=standard,
        policy=policy,
        groups=tuple(groups),
        epsilon=spend,
        delta=delta,
        mechanism=policy.mechanism,
        scales=scales,
        fingerprint=fingerprint,
        table=table,
        notes=_notes(query, standard, rewritten, bound, published, ratio),
        removal_scales=removal_scales,
        removed_at_publish=published,
        removed_ratio=ratio,
        removed_budget=fraction + tested,
        over_scale=over_scale,
        quantiles=quantiles,
    )


def _fingerprint(
    query: Query,
    policy: Policy,
    table: str,
    version: str,
    epsilon: float,
    delta: float,
    groups: list[tuple[Any, ...]],
    noise: dict[str, float],
) -> str:
    keys = hashlib.sha256(
        json.dumps([[normalize(v) for v in g] for g in groups]).encode()
    ).hexdigest()
    document = {
        "dataset": table,
        "delta": delta,
        "epsilon": epsilon,
        "groups": keys,
        # The noise scales: an answer stored under another conversion of (ε, δ) is
        # not this plan's answer.
        "noise": noise,
        "policy": policy.digest,
        "query": query.normalized,
        "version": version,
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _notes(
    query: Query,
    standard: Standard,
    rewritten: Rewrite,
    bound: Bound,
    published: Estimate | None,
    ratio: float | None,
) -> tuple[str, ...]:
    notes = []
    measures = {a.column for a in query.aggregates if a.function in ("sum", "avg", "quantile")}
    for column in sorted(c for c in measures if c is not None):
        if column is not None:
            low, high = standard.field(column).bounds or (0.0, 0.0)
            notes.append(f"{column} clamped to [{low:g}, {high:g}]")
    for column in rewritten.sampled:
        low, high = standard.field(column).bounds or (0.0, 0.0)
        grid = _quantiles.candidates(low, high)
        ratio = (grid[-1] / grid[-2] - 1) if len(grid) > 2 and grid[-2] > 0 else 0.0
        notes.append(
            f"{column} quantiles chosen among {len(grid)} points spaced geometrically from "
            f"{_quantiles.anchor(low, high):g} ({ratio:.2%} apart)"
        )
    if rewritten.bounded:
        notes.append(
            f"each {standard.privacy_unit} counts for at most {rewritten.rows_per_unit} rows "
            f"in total, grouped or not ({_SOURCES[bound.source]}), and "
            f"{rewritten.groups_per_unit} group(s) in distinct counts"
        )
    if published is not None:
        notes.append(
            f"that bound removes an estimated {published.value:.1%} of the version's rows "
            f"({published.lo:.1%} to {published.hi:.1%}), released when it was published; this "
            "answer could not tell its own removed part from zero, so it spends nothing "
            "estimating it, and its own share may differ"
        )
    if ratio is not None and rewritten.bounded and _puts_back(query, standard):
        notes.append(
            f"a COUNT or SUM that cannot tell what the bound removed from it from zero puts "
            f"back {ratio:.1%} of what it kept, the version's removed rows over its kept rows: "
            "this assumes the rows removed are like those kept, in value and in the groups "
            "they fall in; the high end of its interval is then its own removed total's, or "
            "unknown"
        )
    return tuple(notes)


def _puts_back(query: Query, standard: Standard) -> bool:
    """Whether ``query`` has an aggregate that may put back what bounding removed: a
    COUNT of rows or values, or a SUM of a measure that cannot be negative."""
    for aggregate in query.aggregates:
        if aggregate.function == "count":
            return True
        if aggregate.function == "sum":
            low, _high = standard.field(aggregate.column or "").bounds or (-math.inf, 0.0)
            if low >= 0:
                return True
    return False


def _put_back_possible(
    query: Query,
    standard: Standard,
    rewritten: Rewrite,
    mechanism: mechanisms.Mechanism,
    removed: Removal,
    part: float,
) -> bool:
    """Whether some COUNT or SUM of ``query`` could put back a removed total bought with
    ``part`` of the budget: one that :func:`removed_shares` could tell from zero.

    A count's removed total is at most the rows bounding removes from the whole
    version (a WHERE or GROUP BY only takes some of them); ``removed.most()`` bounds
    those rows above at 95%. A SUM's is those rows times what a removed row holds,
    taken as its measure's midpoint: at the bound, every removed row would hold the
    largest value the measure allows, and a total that only such rows could make
    tellable is not worth the ε it takes from the answer (a measure of costs or
    durations mostly sits far below its bound). Where that stays under the half-width
    its noise passes one time in fifty, the total would be told only by noise; an AVG
    or quantile never puts back. The choice reads public figures only: the released
    rows, the bounds and the noise scales.
    """
    noisy = Noisy(mechanism, rewritten.quantities, {}, {}, rewritten.derived)
    lossy = {q.name: q for q in rewritten.quantities if q.removed > 0}
    derived = {d.name for d in rewritten.derived}
    most = removed.most()
    for function, name, _count, low, high in recipes(query.aggregates, noisy, standard):
        if function not in ("count", "count_distinct", "sum") or (function == "sum" and low < 0):
            continue
        if name in derived or (name in lossy and lossy[name].kind == "units"):
            # a SUM read from two quantities, or units in several groups: not bounded by rows
            return True
        quantity = lossy.get(name)
        if quantity is None:
            continue
        scale = mechanism.scale(quantity.removed, part, 1)
        per_row = 1.0 if function != "sum" else (low + high) / 2
        if most * per_row > mechanism.halfwidth(scale, 2 * PUT_BACK):
            return True
    return False
