"""The optimal generalization: a branch-and-bound search over the lattice of levels.

A lattice node picks one level per quasi-identifier. A node *passes* when, after its
generalization, every equivalence class that fails the model (fewer than k privacy
units, fewer than l sensitive values, or a sensitive distribution further than t from
the whole's) can be suppressed within the suppression limit. Each criterion is
monotone: if a node passes, every coarser node passes (Samarati 2001; Machanavajjhala
et al. 2007; Li et al. 2007), and if it fails, every finer node fails.

The loss is Iyengar's loss metric (LM), averaged over every released cell: a value
generalized to a label that covers ``m`` of the column's ``n`` observed values loses
``(m - 1) / (n - 1)``, a withheld value or a suppressed row loses 1. Without
suppression, LM only grows up the lattice, so ``bound(node)`` (its LM as if nothing
were suppressed, a sum of per-column figures computed once) is a lower bound of its
real LM and of every coarser node's. The search visits nodes in order of that bound,
skips nodes a failed coarser node proves failing, and stops at the first node whose
bound reaches the best loss found: the result is optimal for LM, as in OLA and Flash
(El Emam et al. 2009; Kohlmayer et al. 2012), whose predictive tagging it uses. A node
whose status no evaluated node settles is settled from a chain of coarser nodes, by
bisection, as Flash does: the chain's last failing node proves a whole region of fine
nodes failing at once, where evaluating them one by one cost most of the search.

A node is checked with a few vectorized passes over the distinct (quasi-identifiers,
unit, sensitive value) tuples: a gather per column, one group key, ``bincount``s.

When a release keeps the privacy unit's pseudonym (``Table.linked``), a unit's rows are
linked, and what an attacker can match is the *set* of classes its rows fall in. The
units whose rows fall in exactly the same classes form a group; the equivalence
classes the model is checked on are then (group, class) cells, each holding every unit
of its group. A cell that fails is suppressed: the units left keep a set of classes
that other groups may share, which only makes the released groups larger. Coarsening
maps each class to one coarser class, so a group only grows up the lattice and each
criterion stays monotone.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from entrepot.errors import LimitExceeded
from entrepot.privacy.anonymize.hierarchy import Levels

__all__ = ["Criteria", "Evaluation", "Search", "Table"]

# A lattice larger than this is refused: 10 columns of 4 levels is 1,048,576 nodes,
# far beyond what any release needs; the error says which columns to drop.
_MAX_NODES = 500_000
# Group keys with at most this many possible values per tuple are counted with
# bincount instead of hashed: beyond it, clearing and scanning the counts costs more
# than hashing the keys.
_DENSE = 2


@dataclass(frozen=True)
class Criteria:
    """The privacy model a release must meet."""

    k: int
    l: int = 1  # noqa: E741 - the model's own name
    l_model: str = "distinct"
    t: float = 1.0
    max_suppression: float = 0.0  # a share of the rows


@dataclass(frozen=True)
class Table:
    """The data a search runs on, as distinct tuples with their row counts."""

    levels: tuple[Levels, ...]  # one per quasi-identifier
    codes: tuple[np.ndarray, ...]  # per quasi-identifier: each tuple's distinct-value index
    counts: np.ndarray  # rows per tuple
    units: np.ndarray | None  # each tuple's unit index, when a unit may have several rows
    sensitive: np.ndarray | None  # each tuple's sensitive-value index
    n_sensitive: int
    linked: bool = False  # the release links a unit's rows (it keeps the unit's pseudonym)

    @property
    def rows(self) -> int:
        return int(self.counts.sum())

    @classmethod
    def build(
        cls,
        levels: tuple[Levels, ...],
        codes: tuple[np.ndarray, ...],
        units: np.ndarray | None,
        sensitive: np.ndarray | None,
        n_sensitive: int,
        *,
        linked: bool = False,
    ) -> tuple[Table, np.ndarray]:
        """Rows (one index array per column) grouped into distinct tuples, and each
        row's tuple."""
        columns = [*codes, *(a for a in (units, sensitive) if a is not None)]
        n = len(columns[0]) if columns else 0
        key = np.zeros(n, dtype=np.int64)
        for column in columns:
            key = _combine(key, column.astype(np.int64), int(column.max(initial=0)) + 1)
        group, first = _factorize(key)
        counts = np.bincount(group, minlength=len(first)).astype(np.int64)

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[first]

        table = cls(
            levels,
            tuple(c[first] for c in codes),
            counts,
            pick(units),
            pick(sensitive),
            n_sensitive,
            linked and units is not None,
        )
        return table, group


def _factorize(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group ids of ``key`` and, per group, the index of its first row."""
    group, uniques = pd.factorize(key)
    first = np.full(len(uniques), -1, dtype=np.int64)
    order = np.arange(len(key) - 1, -1, -1)
    first[group[order]] = order
    return group.astype(np.int64), first


def _combine(key: np.ndarray, codes: np.ndarray, cardinality: int) -> np.ndarray:
    """``key * cardinality + codes``, re-keyed first if it would overflow."""
    if key.size and int(key.max()) > (2**62) // max(cardinality, 1):
        key, _ = pd.factorize(key)
        key = key.astype(np.int64)
    return key * cardinality + codes


@dataclass(frozen=True)
class Evaluation:
    """A node's equivalence classes and what the model makes of them."""

    node: tuple[int, ...]
    classes: np.ndarray  # each tuple's class index
    sizes: np.ndarray  # rows per class
    units: np.ndarray  # privacy units per class (= sizes when a unit is a row)
    failing: np.ndarray  # per class: suppressed
    suppressed: int  # rows
    loss: float  # LM over every released cell, suppressed rows counting 1
    passes: bool


class Search:
    """Find the node of least loss that meets ``criteria`` on ``table``."""

    def __init__(self, table: Table, criteria: Criteria) -> None:
        self.table = table
        self.criteria = criteria
        self.heights = tuple(level.height for level in table.levels)
        total = int(np.prod(self.heights, dtype=np.int64))
        if total > _MAX_NODES:
            columns = ", ".join(f"{lv.column} ({lv.height})" for lv in table.levels)
            raise LimitExceeded(
                f"the generalization lattice has {total:,} nodes, more than {_MAX_NODES:,}",
                hint=f"release fewer quasi-identifiers; levels per column: {columns}",
                setting="release.quasi_identifiers",
            )
        self.rows = table.rows
        self._weights = table.counts.astype(np.float64)
        self.limit = int(np.floor(criteria.max_suppression * self.rows + 1e-9))
        n_qi = max(len(table.levels), 1)
        # Per column and level: the summed loss of every row's cell, for the bound, from
        # the rows per distinct value. Products are summed, never passed to np.dot:
        # OpenBLAS runs a dot product of over 10,000 floats on a second thread that
        # keeps spinning after it, and that doubled the CPU time of a search at 30k rows.
        self._cell = []
        for lv, codes in zip(table.levels, table.codes, strict=True):
            per_value = np.bincount(codes, weights=self._weights, minlength=len(lv.maps[0]))
            self._cell.append(
                [float((lv.losses[i][lv.maps[i]] * per_value).sum()) for i in range(lv.height)]
            )
        self._scale = 1.0 / (max(self.rows, 1) * n_qi)
        if table.sensitive is not None:
            whole = np.bincount(table.sensitive, weights=table.counts, minlength=table.n_sensitive)
            self._whole = whole / max(whole.sum(), 1)
        self.evaluated = 0
        self.nodes = total

    def bound(self, node: tuple[int, ...]) -> float:
        """The node's loss if nothing were suppressed: a lower bound of its loss."""
        return sum(self._cell[q][level] for q, level in enumerate(node)) * self._scale

    def run(self) -> tuple[Evaluation | None, int]:
        """The best passing node (None if none passes) and how many nodes pass that the
        search evaluated."""
        nodes = np.array(list(itertools.product(*(range(h) for h in self.heights))), dtype=np.int16)
        if nodes.size == 0:
            nodes = np.zeros((1, 0), dtype=np.int16)
        bounds = np.zeros(len(nodes))
        for q, per_level in enumerate(self._cell):
            bounds += np.asarray(per_level)[nodes[:, q]]
        bounds *= self._scale
        order = np.argsort(bounds, kind="stable")
        tags = _Tags(nodes.shape[1], len(nodes))
        found: dict[int, Evaluation] = {}  # passing nodes evaluated, by index
        best: Evaluation | None = None
        passing = 0

        def check(index: int) -> bool:
            nonlocal passing
            evaluation = self.evaluate(tuple(int(x) for x in nodes[index]))
            tags.add(nodes[index], evaluation.passes)
            if evaluation.passes:
                passing += 1
                if best is None or bounds[index] < best.loss - 1e-12:
                    found[index] = evaluation
            return evaluation.passes

        for index in order:
            if best is not None and bounds[index] >= best.loss - 1e-12:
                break
            node = nodes[index]
            status = tags.status(node)
            if status is None:
                self._climb(int(index), nodes, bounds, tags, check)
                status = tags.status(node)
            if not status:
                continue  # it, or a coarser node, failed
            evaluation = found.pop(int(index), None)
            if evaluation is None:
                if not check(int(index)):
                    continue
                evaluation = found.pop(int(index))
            if best is None or evaluation.loss < best.loss - 1e-12:
                best = evaluation
                found = {i: e for i, e in found.items() if bounds[i] < best.loss - 1e-12}
        return best, passing

    def _climb(
        self,
        index: int,
        nodes: np.ndarray,
        bounds: np.ndarray,
        tags: _Tags,
        check: Callable[[int], bool],
    ) -> None:
        """Settle a node of unknown status from a chain of coarser nodes, as Flash does
        (Kohlmayer et al. 2012): climb one level at a time, each time to the coarser
        neighbour of least bound not known to pass, and find by bisection where the
        chain starts passing. The last failing node tags everything finer as failing;
        that is how a few evaluations settle the many fine nodes that fail (at 30k rows
        and k = 10, 24 evaluations instead of 150)."""
        chain = [index]
        current = nodes[index].astype(np.int64)
        strides = np.cumprod((1, *self.heights[:0:-1]))[::-1]
        while True:
            step = [
                int(index + strides[q])
                for q in range(len(current))
                if current[q] + 1 < self.heights[q]
            ]
            step = [i for i in step if tags.status(nodes[i]) is not True]
            if not step:
                break
            index = min(step, key=lambda i: (bounds[i], i))
            chain.append(index)
            current = nodes[index]
        low, high = 0, len(chain)
        while low < high:
            middle = (low + high) // 2
            status = tags.status(nodes[chain[middle]])
            if status is None:
                status = check(chain[middle])
            if status:
                high = middle
            else:
                low = middle + 1

    def evaluate(self, node: tuple[int, ...]) -> Evaluation:
        self.evaluated += 1
        table, criteria = self.table, self.criteria
        key = np.zeros(len(table.counts), dtype=np.int64)
        space = 1
        mapped_columns = []
        for lv, codes, level in zip(table.levels, table.codes, node, strict=True):
            mapped = lv.maps[level][codes]
            mapped_columns.append(mapped)
            cardinality = len(lv.labels[level])
            if space * cardinality < (1 << 62):
                key = key * cardinality + mapped
                space *= cardinality
            else:
                key = _combine(key, mapped.astype(np.int64), cardinality)
                space = 1 << 62
        if space <= _DENSE * len(key):
            present = np.bincount(key, minlength=space) > 0
            remap = np.cumsum(present) - 1
            classes = remap[key]
            n_classes = int(present.sum())
        else:
            codes_, uniques = pd.factorize(key)
            classes, n_classes = codes_.astype(np.int64), len(uniques)
        if table.linked and table.units is not None:
            classes, n_classes = _cells(classes, n_classes, table.units)
        weights = table.counts
        sizes = np.bincount(classes, weights=weights, minlength=n_classes).astype(np.int64)
        units = sizes if table.units is None else _distinct(classes, table.units, n_classes)
        failing = units < criteria.k
        if table.sensitive is not None and (criteria.l > 1 or criteria.t < 1.0):
            failing |= self._diversity(classes, n_classes, sizes)
        suppressed = int(sizes[failing].sum())
        passes = suppressed <= self.limit
        n_qi = len(table.levels)
        loss = 1.0  # a failing node's loss is never used
        if passes and n_qi:
            # The loss without suppression, less that of the few suppressed tuples: a
            # gather over those alone, not over every tuple.
            gone = np.flatnonzero(failing[classes])
            whole = sum(self._cell[q][level] for q, level in enumerate(node))
            kept_loss = whole - sum(
                float((lv.losses[level][mapped[gone]] * self._weights[gone]).sum())
                for lv, mapped, level in zip(table.levels, mapped_columns, node, strict=True)
            )
            loss = (kept_loss + suppressed * n_qi) * self._scale
        elif passes:
            loss = 0.0
        return Evaluation(node, classes, sizes, units, failing, suppressed, loss, passes)

    def _diversity(self, classes: np.ndarray, n_classes: int, sizes: np.ndarray) -> np.ndarray:
        """Per class: fails l-diversity or t-closeness."""
        table, criteria = self.table, self.criteria
        assert table.sensitive is not None
        n_s = max(table.n_sensitive, 1)
        pair, uniques = pd.factorize(classes * n_s + table.sensitive)
        pair_count = np.bincount(pair, weights=table.counts, minlength=len(uniques))
        pair_class = uniques // n_s
        pair_value = uniques % n_s
        share = pair_count / sizes[pair_class]
        failing = np.zeros(n_classes, dtype=bool)
        if criteria.l > 1:
            if criteria.l_model == "entropy":
                entropy = np.bincount(
                    pair_class, weights=-share * np.log(share), minlength=n_classes
                )
                failing |= entropy < np.log(criteria.l) - 1e-12
            else:
                failing |= np.bincount(pair_class, minlength=n_classes) < criteria.l
        if criteria.t < 1.0:
            # Total variation (EMD with equal ground distances) to the whole's distribution.
            whole = self._whole[pair_value]
            near = np.bincount(pair_class, weights=np.abs(share - whole), minlength=n_classes)
            covered = np.bincount(pair_class, weights=whole, minlength=n_classes)
            failing |= 0.5 * (near + 1.0 - covered) > criteria.t + 1e-12
        return failing


class _Tags:
    """What the evaluated nodes prove: a node finer than (or equal to) one that failed
    fails; one coarser than (or equal to) one that passed passes."""

    def __init__(self, width: int, size: int) -> None:
        self._failed = np.empty((size, width), dtype=np.int16)
        self._passed = np.empty((size, width), dtype=np.int16)
        self._n_failed = 0
        self._n_passed = 0

    def add(self, node: np.ndarray, passes: bool) -> None:
        if passes:
            self._passed[self._n_passed] = node
            self._n_passed += 1
        else:
            self._failed[self._n_failed] = node
            self._n_failed += 1

    def status(self, node: np.ndarray) -> bool | None:
        if self._n_failed and (self._failed[: self._n_failed] >= node).all(axis=1).any():
            return False
        if self._n_passed and (self._passed[: self._n_passed] <= node).all(axis=1).any():
            return True
        return None


def _cells(classes: np.ndarray, n_classes: int, units: np.ndarray) -> tuple[np.ndarray, int]:
    """Each tuple's (group, class) cell, a group being the units whose rows fall in
    exactly the same classes; and how many cells there are."""
    pairs = np.unique(units.astype(np.int64) * n_classes + classes)  # by unit, then class
    unit_of, class_of = pairs // n_classes, pairs % n_classes
    lengths = np.bincount(unit_of, minlength=int(units.max(initial=0)) + 1)
    starts = np.cumsum(lengths) - lengths
    group = np.zeros(len(lengths), dtype=np.int64)
    taken = 0
    # Units with as many classes are compared as the rows of one matrix: exact, and one
    # vectorized pass per distinct count of classes (few: at most the rows per unit).
    for length in np.unique(lengths[lengths > 0]):
        members = np.flatnonzero(lengths == length)
        sets = class_of[starts[members][:, None] + np.arange(length)]
        _, inverse = np.unique(sets, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        group[members] = inverse + taken
        taken += int(inverse.max()) + 1
    cells, uniques = pd.factorize(group[units] * n_classes + classes)
    return cells.astype(np.int64), len(uniques)


def _distinct(classes: np.ndarray, units: np.ndarray, n_classes: int) -> np.ndarray:
    """Distinct units per class."""
    n_units = int(units.max(initial=0)) + 1
    pairs = pd.unique(classes * n_units + units)
    return np.bincount(pairs // n_units, minlength=n_classes).astype(np.int64)
