"""DP synthetic rows from noisy marginals on a spanning tree, in the manner of MST.

MST (McKenna, Miklau & Sheldon 2021) measures every 1-way marginal, privately picks a
maximum spanning tree of 2-way marginals (the pairs least explained by independence),
measures those, and samples from the graphical model they define. This module does the
same with OpenDP for every random choice that touches the data:

1. each 1-way marginal is measured with OpenDP's Laplace mechanism (a third of ε);
2. the tree is grown one edge at a time (Kruskal), each edge chosen by OpenDP's
   report-noisy-max over the candidate pairs, scored by the L1 distance between their
   real 2-way counts and the product of the noisy 1-way marginals (a third of ε);
3. the chosen 2-way marginals are measured with Laplace noise (the last third);
4. the noisy figures are made one consistent model (:mod:`._marginals`): one total,
   each column's counts combined from every table that measured it, the noise in
   empty categories taken off by projection rather than clipped, each 2-way table
   raked to its two columns' counts;
5. rows are sampled from the tree: the root's counts rounded to the rows asked, each
   child drawn within each parent category by stratified uniforms. Steps 4 and 5 are
   post-processing: they read only noisy figures.

Before step 4, a child's counts came from its noisy 2-way table alone, whose clipped
noise over a wide domain (372 months × 60 districts) outweighed the rows: at 100k rows
and ε = 1 the 1-way marginals were 0.015 apart (total variation), 0.0018 after.

Every marginal's domain is public: the code list of a dimension, the months between a
time column's declared minimum and maximum, ten bins over a measure's public bounds. A
column with no public domain (free text) is left out and named in the report. Each
privacy unit keeps at most ``rows_per_unit`` rows, so one unit changes any marginal by
at most that much in L1, the sensitivity every mechanism is built with.

The smartnoise-synth package (MST and AIM over Private-PGM) pins opacus 0.14, mbi < 2
and an older OpenDP, which this environment cannot hold; the steps above are MST's,
with Private-PGM's estimation replaced by direct steps that a tree allows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import opendp.prelude as dp
import pandas as pd
import pyarrow as pa

from entrepot.errors import InvalidInput
from entrepot.privacy._marginals import (
    Noisy,
    combine,
    conditional_draw,
    rake,
    rounded,
    simplex,
    total_of,
)
from entrepot.standards import codelist
from entrepot.standards.schema import Field, Standard

__all__ = ["Column", "Synthesis", "columns_of", "fidelity", "synthesize"]

dp.enable_features("contrib")

_BINS = 10  # bins over a measure's public bounds


@dataclass(frozen=True)
class Column:
    """A column with a public domain: its categories and how a row's value falls in one."""

    name: str
    categories: tuple[str, ...]
    kind: str  # code, month, bin
    bounds: tuple[float, float] | None = None

    def encode(self, series: pd.Series) -> np.ndarray:
        """Each value's category index; -1 for a value outside the public domain."""
        if self.kind == "month":
            text = pd.to_datetime(series, errors="coerce").dt.strftime("%Y-%m")
        elif self.kind == "bin":
            assert self.bounds is not None
            low, high = self.bounds
            values = pd.to_numeric(series, errors="coerce").clip(low, high).to_numpy(float)
            index = np.floor((values - low) / (high - low) * _BINS).clip(0, _BINS - 1)
            return np.where(np.isnan(index), -1, index).astype(np.int64)
        else:
            text = series.astype("string")
        lookup = {c: i for i, c in enumerate(self.categories)}
        return np.array([lookup.get(v, -1) for v in text.fillna("").tolist()], dtype=np.int64)

    def decode(self, index: np.ndarray, rng: np.random.Generator) -> pa.Array:
        if self.kind == "bin":
            assert self.bounds is not None
            low, high = self.bounds
            width = (high - low) / _BINS
            return pa.array(low + (index + rng.random(len(index))) * width, type=pa.float64())
        return pa.array(np.asarray(self.categories, dtype=object)[index].tolist(), type=pa.string())


def _months(low: str, high: str) -> tuple[str, ...]:
    start, end = date.fromisoformat(low[:10]), date.fromisoformat(high[:10])
    out, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return tuple(out)


def _column(f: Field) -> Column | None:
    if f.codelist is not None:
        return Column(f.name, tuple(codelist(f.codelist).codes), "code")
    if f.type in ("date", "datetime") and f.minimum is not None and f.maximum is not None:
        return Column(f.name, _months(str(f.minimum), str(f.maximum)), "month")
    if f.type in ("integer", "number"):
        bounds = f.bounds
        if bounds is None and f.minimum is not None and f.maximum is not None:
            bounds = (float(f.minimum), float(f.maximum))
        if bounds is not None and bounds[1] > bounds[0]:
            return Column(f.name, tuple(str(i) for i in range(_BINS)), "bin", bounds)
    return None


def columns_of(standard: Standard, names: tuple[str, ...]) -> tuple[list[Column], list[str]]:
    """The columns that have a public domain, and the names of those that do not."""
    found, left_out = [], []
    for name in names:
        column = _column(standard.field(name))
        if column is None:
            left_out.append(name)
        else:
            found.append(column)
    return found, left_out


def _scale(make: Any, d_in: float, epsilon: float, guess: float) -> float:
    """A noise scale OpenDP's privacy map proves ``epsilon``-DP for ``d_in``: the
    textbook ``guess``, nudged up until the map (which rounds conservatively) agrees."""
    scale = guess
    for _ in range(64):
        if make(scale).map(d_in) <= epsilon:
            return scale
        scale *= 1.0 + 1e-6
    return float(dp.binary_search_param(make, d_in=d_in, d_out=epsilon, T=float))


def _noisy(counts: np.ndarray, sensitivity: float, epsilon: float) -> Noisy:
    """``counts`` with OpenDP's Laplace noise for ``epsilon``, and its variance."""
    domain = dp.vector_domain(dp.atom_domain(T=float, nan=False), size=counts.size)

    def make(scale: float) -> Any:
        return dp.m.make_laplace(domain, dp.l1_distance(T=float), scale)

    scale = _scale(make, sensitivity, epsilon, sensitivity / epsilon)
    noisy = np.asarray(make(scale)(counts.astype(np.float64).ravel()), dtype=float)
    return Noisy(noisy.reshape(counts.shape), 2.0 * scale**2)


def _pick(scores: list[float], sensitivity: float, epsilon: float) -> int:
    domain = dp.vector_domain(dp.atom_domain(T=float, nan=False))

    def make(scale: float) -> Any:
        return dp.m.make_noisy_max(domain, dp.linf_distance(T=float), dp.max_divergence(), scale)

    return int(make(_scale(make, sensitivity, epsilon, 2 * sensitivity / epsilon))(scores))


def _marginal(codes: np.ndarray, sizes: tuple[int, ...]) -> np.ndarray:
    flat = np.ravel_multi_index(tuple(codes.T), sizes) if codes.size else np.zeros(0, np.int64)
    return np.bincount(flat, minlength=int(np.prod(sizes))).reshape(sizes).astype(float)


def _distribution(counts: np.ndarray) -> np.ndarray:
    clipped = np.clip(counts, 0, None)
    total = clipped.sum(axis=-1, keepdims=True)
    uniform = np.full_like(clipped, 1.0 / clipped.shape[-1])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, clipped / np.where(total > 0, total, 1), uniform)


@dataclass(frozen=True)
class Model:
    """The marginals a synthesis samples from: estimates from noisy figures alone."""

    columns: list[Column]
    one_way: list[np.ndarray]  # counts per category, all of one total
    edges: list[tuple[int, int]]  # (parent, child), in sampling order
    two_way: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)  # by (parent, child)
    root: int = 0


def fit(codes: np.ndarray, columns: list[Column], epsilon: float, sensitivity: float) -> Model:
    """Measure the model on ``codes`` (rows × columns of category indices) with ε."""
    d = len(columns)
    sizes = [len(c.categories) for c in columns]
    parts = 3 if d > 1 else 1
    one_eps = epsilon / parts / d
    measured = [
        _noisy(_marginal(codes[:, [i]], (sizes[i],)), sensitivity, one_eps) for i in range(d)
    ]
    total = total_of(measured)
    first = [simplex(m.counts, total) for m in measured]
    if d == 1:
        return Model(columns, first, [])
    chosen = _tree(codes, sizes, first, total, epsilon / parts / (d - 1), sensitivity)
    two_eps = epsilon / parts / (d - 1)
    two_way = {
        (a, b): _noisy(_marginal(codes[:, [a, b]], (sizes[a], sizes[b])), sensitivity, two_eps)
        for a, b in chosen
    }
    # One total and one set of column counts that every table agrees with.
    total = total_of([*measured, *two_way.values()])
    one_way = []
    for i in range(d):
        estimates = [measured[i]]
        for (a, b), table in two_way.items():
            if i in (a, b):
                margin = table.counts.sum(axis=1 if i == a else 0)
                estimates.append(Noisy(margin, table.variance * sizes[b if i == a else a]))
        one_way.append(simplex(combine(estimates), total))
    joint = {
        (a, b): rake(simplex(table.counts, total), one_way[a], one_way[b])
        for (a, b), table in two_way.items()
    }
    # Orient the tree from column 0 for sampling: each edge (parent, child).
    seen, edges, oriented = {0}, [], {}
    while len(seen) < d:
        for a, b in chosen:
            for parent, child in ((a, b), (b, a)):
                if parent in seen and child not in seen:
                    seen.add(child)
                    edges.append((parent, child))
                    oriented[(parent, child)] = joint[(a, b)] if parent == a else joint[(a, b)].T
    return Model(columns, one_way, edges, oriented)


def _tree(
    codes: np.ndarray,
    sizes: list[int],
    one_way: list[np.ndarray],
    total: float,
    epsilon: float,
    sensitivity: float,
) -> list[tuple[int, int]]:
    """A spanning tree grown one edge at a time (Kruskal), each edge picked by OpenDP's
    report-noisy-max over the pairs not yet connected, scored by the L1 distance of
    their real 2-way counts from independence under the noisy 1-way counts."""
    d = len(sizes)
    component = list(range(d))
    chosen: list[tuple[int, int]] = []
    for _ in range(d - 1):
        candidates = [
            (a, b) for a in range(d) for b in range(a + 1, d) if component[a] != component[b]
        ]
        scores = []
        for a, b in candidates:
            real = _marginal(codes[:, [a, b]], (sizes[a], sizes[b]))
            independent = np.outer(one_way[a], one_way[b]) / total
            scores.append(float(np.abs(real - independent).sum()))
        a, b = candidates[_pick(scores, sensitivity, epsilon)]
        chosen.append((a, b))
        old, new = component[b], component[a]
        component = [new if c == old else c for c in component]
    return chosen


def sample(model: Model, rows: int, rng: np.random.Generator) -> np.ndarray:
    d = len(model.columns)
    out = np.zeros((rows, d), dtype=np.int64)
    out[:, model.root] = rounded(_distribution(model.one_way[model.root]), rows, rng)
    for parent, child in model.edges:
        conditional = _distribution(model.two_way[(parent, child)])  # rows: parent's categories
        out[:, child] = conditional_draw(conditional, out[:, parent], rng)
    return out


def _bounded(frame: pd.DataFrame, unit: str | None, per_unit: int, seed: int) -> pd.DataFrame:
    """At most ``per_unit`` rows of each privacy unit (chosen at random)."""
    if unit is None or unit not in frame.columns:
        return frame
    shuffled = frame.sample(frac=1.0, random_state=seed)
    return shuffled[shuffled.groupby(unit, sort=False).cumcount() < per_unit]


def fidelity(real: np.ndarray, synthetic: np.ndarray, columns: list[Column]) -> dict[str, Any]:
    """Total variation distance of every 1- and 2-way marginal, synthetic against real."""
    sizes = [len(c.categories) for c in columns]

    def tvd(idx: list[int]) -> float:
        shape = tuple(sizes[i] for i in idx)
        p = _marginal(real[:, idx], shape)
        q = _marginal(synthetic[:, idx], shape)
        return 0.5 * float(np.abs(p / max(p.sum(), 1) - q / max(q.sum(), 1)).sum())

    one = {columns[i].name: tvd([i]) for i in range(len(columns))}
    two = {
        f"{columns[a].name} × {columns[b].name}": tvd([a, b])
        for a in range(len(columns))
        for b in range(a + 1, len(columns))
    }
    return {
        "metric": "total variation distance (0 = the same distribution, 1 = disjoint)",
        "one_way": one,
        "two_way": two,
        "one_way_mean": float(np.mean(list(one.values()))) if one else 0.0,
        "two_way_mean": float(np.mean(list(two.values()))) if two else 0.0,
    }


def synthesize(
    frame: pd.DataFrame,
    columns: list[Column],
    *,
    epsilon: float,
    rows: int | None,
    max_rows: int | None = None,
    unit: str | None = None,
    rows_per_unit: int = 1,
    seed: int | None = None,
) -> tuple[pa.Table, dict[str, Any]]:
    """``rows`` synthetic rows over ``columns`` at ``epsilon``, and a report (whose
    ``fidelity`` compares with the real rows: its provider's only).

    With ``rows`` None, the rows are the model's noisy total, at most ``max_rows``: the
    exact count of the rows is not released."""
    if not columns:
        raise InvalidInput(
            "no column of the release has a public domain to synthesize",
            hint="list dimensions, time columns with a declared range, or bounded measures",
        )
    rng = np.random.default_rng(seed)
    bounded = _bounded(frame, unit, rows_per_unit, int(rng.integers(2**31)))
    codes = np.column_stack([c.encode(bounded[c.name]) for c in columns])
    # Rows outside a public domain are dropped (the standard's validation keeps them rare).
    codes = codes[(codes >= 0).all(axis=1)]
    model = fit(codes, columns, epsilon, float(rows_per_unit))
    if rows is None:
        rows = round(float(model.one_way[model.root].sum()))
        if max_rows is not None:
            rows = min(rows, max_rows)
    drawn = sample(model, rows, rng)
    table = pa.table({c.name: c.decode(drawn[:, i], rng) for i, c in enumerate(columns)})
    report = {
        "method": "MST-style: noisy 1-way marginals, a spanning tree of 2-way marginals "
        "chosen by report-noisy-max (OpenDP Laplace and noisy max), made consistent "
        "(inverse-variance combination, projection onto non-negative counts, raking) "
        "and sampled from the tree with rounding",
        "epsilon": epsilon,
        "rows": rows,
        "rows_per_unit": rows_per_unit,
        "columns": [c.name for c in columns],
        "tree": [[columns[a].name, columns[b].name] for a, b in model.edges],
        "fidelity": fidelity(codes, drawn, columns),
    }
    return table, report


@dataclass(frozen=True)
class Synthesis:
    """A checked synthetic release, as the vault runs it on a version's rows."""

    standard: Standard
    columns: tuple[str, ...]
    epsilon: float
    rows: int | None  # None: the model's noisy total, at most max_rows
    max_rows: int | None = None
    rows_per_unit: int = 1
    seed: int | None = field(default=None, compare=False)

    def make(self, frame: pd.DataFrame, *, plan_only: bool) -> tuple[pa.Table, dict[str, Any]]:
        found, left_out = columns_of(self.standard, self.columns)
        unit = None if self.standard.one_row_per_unit else self.standard.privacy_unit
        table, report = synthesize(
            frame,
            found,
            epsilon=self.epsilon,
            rows=self.rows,
            max_rows=self.max_rows,
            unit=unit,
            rows_per_unit=self.rows_per_unit,
            seed=self.seed,
        )
        report["left_out"] = left_out
        return table, report
