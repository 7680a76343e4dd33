"""Private join queries: two holders' datasets joined on blinded link keys, answered with DP.

:class:`JoinQuery` says what a join is to the coordinator
(:mod:`entrepot.exchange.coordinator`): the two datasets its SQL names, the contract
action ``private-join`` (a grant on each side must permit it), its price (both
policies read, the join checked and planned from text and public metadata, one
:class:`~entrepot.exchange.coordinator.Cost` per dataset, so the ledger debits ε from
both grants and both caps in one step) and the operation the coordinator conducts,
:class:`JoinRun`::

    vault A: Blind   → A's tokens (blinded by A) + A's attribute columns by handle
    vault B: Blind   → B's tokens (blinded by B) + B's attribute columns by handle
             (a token for every distinct link key of the version, whatever the WHERE;
             columns of the rows the WHERE keeps only)
    vault B: Reblind(A's tokens) → A's tokens blinded by both; B forgets its key
    vault A: Reblind(B's tokens) → B's tokens blinded by both; A forgets its key
    matcher: equal tokens → pairs of handles → each side's matched rows, numbered by pair
    engine:  the plan's bounded aggregates over the view (the two sides' inner join on
             that number, streamed, never held; about PAIRS_READ pairs of rows per
             person at most, of rows chosen at random beyond), then its noise

Each holder is reached only through the :class:`~entrepot.vault.Vault` protocol, so a
holder on another node takes part the same way. The matcher is this process: it sees
tokens that carry both blindings, handles, and the query's own attribute columns,
never an identifier, and drops them when the answer is out (docs/psi.md).
"""

from __future__ import annotations

import contextlib
import math
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from entrepot.engine import UNIT_KEY, UNIT_ROWS, Engine, Session
from entrepot.engine._sql import ident
from entrepot.errors import EntrepotError, InvalidInput, NotFound, PolicyViolation
from entrepot.exchange.coordinator import Cost, Found, Priced
from entrepot.privacy.psi import TOKEN_BYTES, BlindedBatch, DoublyBlindedBatch, Match, Matcher
from entrepot.privacy.psi.query import JoinPlan, plan_join
from entrepot.privacy.sql.join import Side, join_sources
from entrepot.privacy.sql.rewrite import REMOVED_CAP
from entrepot.standards import codelist
from entrepot.standards.schema import Standard
from entrepot.transparency import Kind
from entrepot.vault import (
    Aggregated,
    Blind,
    Blinded,
    DatasetRef,
    Outcome,
    Reblind,
    Reblinded,
    Touched,
    Vault,
)

__all__ = [
    "ACTION",
    "PAIRS_READ",
    "STEPS",
    "JoinProgress",
    "JoinQuery",
    "JoinRun",
    "overlap_sql",
    "pairs_read",
    "sources",
]

ACTION = "private-join"

# The steps of a join, in order, as progress reports and timings name them.
STEPS = ("blind", "reblind", "match", "aggregate", "noise")

# Called as progress(step, done, total) after each step of :data:`STEPS`.
JoinProgress = Callable[[str, int, int], None]

# Tokens matched per call: bounds the matcher's scratch arrays to a few tens of MB.
_MATCH_BATCH = 1 << 18
# The joined view the plan's SQL reads, and the two sides' matched rows it is made of.
_VIEW = "joined"
_SIDES = ("joined_left", "joined_right")
# The most pairs of rows the joined view reads whole of one unit (see _Pairs): a unit
# with more is read as a random part of its rows on each side, with at least this many
# pairs between them and fewer than twice as many, whatever its m × n.
PAIRS_READ = 1024


def sources(
    sql: str, *, catalog: Callable[[], Iterable[str]] | None = None
) -> tuple[DatasetRef, ...]:
    """The datasets ``sql`` reads: one for a query, two for a private join."""
    return tuple(DatasetRef.from_sql_name(name) for name in join_sources(sql, catalog=catalog))


def overlap_sql(vault: Vault, left: str, right: str) -> str:
    """The join query counting the people two datasets (``provider/dataset``) share, on
    their one pair of link keys of the same concept, read from their standards.

    Only a malformed name or several pairs to choose from are refused here. Any other
    refusal (an unknown dataset, no pair of link keys of one concept) is left to the
    coordinator, which logs it naming both datasets: the query is then written on the
    columns the checker refuses under its own rule.
    """
    refs = DatasetRef.parse(left), DatasetRef.parse(right)
    left_std, right_std = (_standard(vault, ref) for ref in refs)
    if left_std is None or right_std is None:
        return _overlap(refs, _LINK, _LINK)
    pairs = [
        (a.name, b.name)
        for a in left_std.fields
        for b in right_std.fields
        if a.link_key is not None and a.link_key == b.link_key
    ]
    if len(pairs) > 1:
        found = ", ".join(f"{a} = {b}" for a, b in pairs)
        raise PolicyViolation(
            f"{left} and {right} share {len(pairs)} pairs of link keys of one concept ({found})",
            rule="link_key",
            hint="write the join with `entrepot query`, naming the link keys",
        )
    [(a, b)] = pairs or [(_some_link(left_std), _some_link(right_std))]
    return _overlap(refs, a, b)


# The column an overlap names for a dataset whose standard cannot be read.
_LINK = "link_key"


def _standard(vault: Vault, ref: DatasetRef) -> Standard | None:
    """``ref``'s standard, or None for a dataset the catalog does not hold."""
    try:
        return vault.standard(ref)
    except NotFound:
        return None


def _some_link(standard: Standard) -> str:
    """A link key of ``standard`` (its first field if it has none), for the checker to
    refuse as a join condition under ``link_key``."""
    keys = [f.name for f in standard.fields if f.link_key is not None]
    return (keys or list(standard.field_names) or [_LINK])[0]


def _overlap(refs: tuple[DatasetRef, DatasetRef], a: str, b: str) -> str:
    return (
        f"SELECT COUNT(DISTINCT l.{a}) AS people FROM {refs[0].sql_name} AS l "
        f"JOIN {refs[1].sql_name} AS r ON l.{a} = r.{b}"
    )


def _codes(name: str) -> Any:
    return codelist(name).codes


@dataclass(frozen=True)
class JoinRun:
    """A planned join, conducted over the holders' vaults and answered here."""

    plan: JoinPlan
    refs: tuple[DatasetRef, DatasetRef]
    versions: tuple[int, int]
    engine: Callable[[], Engine] = field(compare=False)
    progress: JoinProgress | None = field(default=None, compare=False)
    # Seconds per step of the last run, for benchmarks.
    timings: dict[str, float] = field(default_factory=dict, compare=False)

    def conduct(self, vault: Vault, *, touched: Touched) -> Outcome:
        """Every step of the join; the answer, noised by the plan."""
        pairs, rows = self._view(vault, touched)
        with self.engine().session() as session:
            pairs.register(session)

            def aggregate() -> tuple[pa.Table, pa.Table | None]:
                exact = session.execute(pairs.streamed(self.plan.plan.sql(_VIEW, counted=True)))
                if not self.plan.plan.quantiles:
                    return exact, None
                # each pair weighted by its unit's pairs read, as the aggregates weight it
                samples = self.plan.plan.rewrite.samples_sql(_VIEW, counted=True)
                return exact, session.execute(pairs.streamed(samples))

            exact, samples = self._timed("aggregate", aggregate)
        answer = self._timed("noise", lambda: self.plan.plan.release(exact, samples))
        return Aggregated(answer, rows)

    def exact(self, vault: Vault) -> pa.Table:
        """The exact, bounded aggregates per group, without noise: for tests only, which
        compare them with the plain join of the raw data."""
        pairs, _ = self._view(vault, lambda: None)
        with self.engine().session() as session:
            pairs.register(session)
            return session.execute(pairs.streamed(self.plan.plan.sql(_VIEW, counted=True)))

    def _timed(self, step: str, work: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = work()
        self.timings[step] = self.timings.get(step, 0.0) + time.perf_counter() - started
        if self.progress is not None:
            self.progress(step, STEPS.index(step) + 1, len(STEPS))
        return result

    def _view(self, vault: Vault, touched: Touched) -> tuple[_Pairs, int]:
        """Blind, reblind and match: each side's matched rows, of which the joined view is
        made, and the rows both versions hold."""
        join = secrets.token_hex(16)
        once = _Once(touched)
        sides = self.plan.sides

        def blind() -> tuple[Blinded, Blinded]:
            out = []
            for ref, version, side in zip(self.refs, self.versions, sides, strict=True):
                outcome = vault.run(
                    Blind(
                        ref,
                        version,
                        join,
                        side.link,
                        self.plan.concept,
                        side.where,
                        side.columns,
                    ),
                    touched=once,
                )
                assert isinstance(outcome, Blinded)
                out.append(outcome)
            return out[0], out[1]

        def reblind() -> tuple[DoublyBlindedBatch, DoublyBlindedBatch]:
            # Each holder blinds the other's tokens: A's come back with A's handles.
            mine = vault.run(Reblind(self.refs[1], join, left.tokens), touched=once)
            theirs = vault.run(Reblind(self.refs[0], join, right.tokens), touched=once)
            assert isinstance(mine, Reblinded)
            assert isinstance(theirs, Reblinded)
            return mine.tokens, theirs.tokens

        try:
            left, right = self._timed("blind", blind)
            left_tokens, right_tokens = self._timed("reblind", reblind)
        except BaseException:
            self._forget(vault, join)
            raise
        view = self._timed("match", lambda: self._joined(left, right, left_tokens, right_tokens))
        return view, left.rows + right.rows

    def _forget(self, vault: Vault, join: str) -> None:
        """Have every holder still keeping this join's key forget it: a reblind of no
        tokens ends a holder's part; one that kept none answers Conflict."""
        empty = BlindedBatch(np.empty(0, np.uint64), b"")
        for ref in self.refs:
            with contextlib.suppress(EntrepotError):
                vault.run(Reblind(ref, join, empty), touched=lambda: None)

    def _joined(
        self,
        left: Blinded,
        right: Blinded,
        left_tokens: DoublyBlindedBatch,
        right_tokens: DoublyBlindedBatch,
    ) -> _Pairs:
        swap = len(right_tokens) < len(left_tokens)
        small, large = (right_tokens, left_tokens) if swap else (left_tokens, right_tokens)
        matcher = Matcher([small])
        parts = [
            matcher.match(
                DoublyBlindedBatch(
                    large.handles[start : start + _MATCH_BATCH],
                    large.tokens[start * TOKEN_BYTES : (start + _MATCH_BATCH) * TOKEN_BYTES],
                )
            )
            for start in range(0, len(large), _MATCH_BATCH)
        ]
        match = Match.concat(parts)
        left_handles, right_handles = (
            (match.right, match.left) if swap else (match.left, match.right)
        )
        unit = self.plan.unit
        tables = [
            _with_units(blinded.attributes, handles, len(tokens), unit, side.alias)
            for blinded, handles, tokens, side in zip(
                (left, right),
                (left_handles, right_handles),
                (left_tokens, right_tokens),
                self.plan.sides,
                strict=True,
            )
        ]
        rows = self.plan.plan.rewrite.rows_per_unit
        return _Pairs.of(tables[0], tables[1], unit, len(match), rows)


def _with_units(
    attributes: pa.Table, handles: np.ndarray, size: int, unit: str, alias: str
) -> pa.Table:
    """The rows of ``attributes`` whose handle matched, each with its pair's number."""
    number = np.full(max(size, 1), -1, dtype=np.int64)
    number[handles.astype(np.int64)] = np.arange(len(handles), dtype=np.int64)
    of_row = number[attributes.column("handle").to_numpy().astype(np.int64)]
    kept = np.flatnonzero(of_row >= 0)
    columns = {
        f"{alias}__{name}": attributes.column(name).take(kept)
        for name in attributes.column_names
        if name != "handle"
    }
    return pa.table({unit: pa.array(of_row[kept], pa.int64()), **columns})


@dataclass(frozen=True)
class _Pairs:
    """Each side's matched rows, numbered by their pair of handles (the view's unit).

    The joined view is their inner join on that number. A unit on m rows of one side
    and n of the other has its m × n pairs of rows there when there are at most
    :func:`pairs_read` of them; a larger one keeps a random a of its m rows and b of
    its n (:func:`_kept`), so that a × b is at least that many and not much more,
    and has their a × b pairs. Each of its m × n pairs is then read with the same
    chance, a·b / (m·n). Each left row carries its unit's pairs read, m × n or a × b
    (:data:`~entrepot.engine.UNIT_ROWS`, with the unit as
    :data:`~entrepot.engine.UNIT_KEY`): the plan's text for versions with per-unit
    columns weights each row by it as it passes. A unit's pairs weigh R in total
    either way, so the bounded figures of a unit read in part are unbiased estimates
    of those of its m × n, and its counts of rows, of removed rows and of units above
    the removed total's cap are those of its m × n exactly (it has more pairs read
    than the cap counts). Nothing holds the pairs: the aggregates read them as the
    engine streams the join. So the pairs read, the join's work, grow with a unit's
    rows (m × n up to the limit, never much more), never with their product, and its
    memory with the sides' rows.
    """

    left: pa.Table  # the unit, its pairs read, then the left side's columns
    right: pa.Table  # the unit, then the right side's columns
    unit: str

    @classmethod
    def of(cls, left: pa.Table, right: pa.Table, unit: str, units: int, rows: int) -> _Pairs:
        """Each side's rows of ``units`` pairs of handles, numbered in column ``unit``,
        the units bounded to ``rows`` rows: the rows of each unit read, each left row
        with its unit's pairs read."""
        lefts, rights = (side.column(unit).to_numpy() for side in (left, right))
        m, n = (np.bincount(numbers, minlength=units) for numbers in (lefts, rights))
        a, b = _sizes(m, n, pairs_read(rows))
        left = left.add_column(1, UNIT_ROWS, pa.array((a * b)[lefts]))
        return cls(_kept(left, lefts, m, a), _kept(right, rights, n, b), unit)

    def register(self, session: Session) -> None:
        for name, table in zip(_SIDES, (self.left, self.right), strict=True):
            session.register_arrow(name, table)

    def streamed(self, sql: str) -> str:
        """``sql``, reading the view as the join of the two sides, never materialised."""
        u = ident(self.unit)
        pairs = f"SELECT *, {u} AS {ident(UNIT_KEY)} FROM {self._join()}"
        return f"WITH {ident(_VIEW)} AS NOT MATERIALIZED ({pairs}) SELECT * FROM ({sql})"

    def _join(self) -> str:
        left, right = (ident(name) for name in _SIDES)
        return f"{left} JOIN {right} USING ({ident(self.unit)})"


def pairs_read(rows: int) -> int:
    """The least pairs of rows the joined view reads of a unit it does not read whole,
    its rows bounded to ``rows``: :data:`PAIRS_READ`, or more where the bound needs it,
    so that such a unit has more pairs read than the removed total counts of it."""
    return max(PAIRS_READ, (REMOVED_CAP + 1) * rows + 1)


def _sizes(m: np.ndarray, n: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Per unit, the rows read of each side: all ``m`` and ``n`` where m × n is at most
    ``limit``; else ``a`` of m and ``b`` of n, near √limit each where both sides allow
    it, with ``limit`` ≤ a × b < 2 · ``limit`` (and a × b ≤ m × n)."""
    whole = m * n <= limit
    a = np.minimum(m, np.maximum(math.isqrt(limit - 1) + 1, -(-limit // np.maximum(n, 1))))
    b = np.minimum(n, -(-limit // np.maximum(a, 1)))
    return np.where(whole, m, a), np.where(whole, n, b)


def _kept(side: pa.Table, numbers: np.ndarray, rows: np.ndarray, sizes: np.ndarray) -> pa.Table:
    """The rows of ``side`` of units that keep them all, and ``sizes[u]`` of unit
    ``u``'s ``rows[u]`` at random (each set of that many as likely as any other) where
    it has more; each unit's choice independent of every other's."""
    over = np.flatnonzero(sizes[numbers] < rows[numbers])
    if not len(over):
        return side
    units = numbers[over]
    # The rows of units that keep some, by unit and then at random (the unit's number
    # above 32 random bits): a unit's first sizes[u] rows in that order are a random
    # choice of them.
    noise = np.random.default_rng().integers(0, 1 << 32, len(over), dtype=np.uint64)
    order = np.argsort((units.astype(np.uint64) << np.uint64(32)) | noise)
    ranked = units[order]
    firsts = np.searchsorted(ranked, ranked, side="left")
    dropped = over[order][np.arange(len(order)) - firsts >= sizes[ranked]]
    keep = np.ones(len(numbers), dtype=bool)
    keep[dropped] = False
    return side.filter(pa.array(keep))


class _Once:
    """``touched`` called at most once, however many holders read data."""

    def __init__(self, touched: Touched) -> None:
        self._touched: Touched | None = touched

    def __call__(self) -> None:
        if self._touched is not None:
            touched, self._touched = self._touched, None
            touched()


@dataclass(frozen=True)
class JoinQuery:
    """A consumer's SQL over two holders' datasets, joined on link keys."""

    action: ClassVar[str] = ACTION
    kind: ClassVar[Kind] = Kind.JOIN
    sql: str
    epsilon: float | None
    engine: Callable[[], Engine] = field(compare=False)
    catalog: Callable[[], Iterable[str]] | None = field(default=None, compare=False)
    progress: JoinProgress | None = field(default=None, compare=False)
    # Filled with the seconds each step of :data:`STEPS` took, for benchmarks.
    timings: dict[str, float] = field(default_factory=dict, compare=False)
    # In a join across nodes, the node of each dataset: policies name them
    # ``node:provider/dataset`` in ``join_with``, alike on both nodes.
    nodes: Mapping[DatasetRef, str] = field(default_factory=dict, compare=False)
    # The most rows one side may blind (the setting psi_max_rows), None for no limit.
    max_rows: int | None = field(default=None, compare=False)

    @property
    def text(self) -> str:
        return self.sql

    def datasets(self) -> tuple[DatasetRef, ...]:
        refs = sources(self.sql, catalog=self.catalog)
        if len(refs) != 2:
            raise InvalidInput("a private join reads two datasets", hint="JOIN a second dataset")
        return refs

    def price(self, found: Mapping[DatasetRef, Found]) -> Priced:
        left, right = (found[ref] for ref in self.datasets())
        for side in (left, right):
            self._check_size(side)
        planned = plan_join(
            self.sql,
            _side(left, self.nodes.get(left.ref)),
            _side(right, self.nodes.get(right.ref)),
            epsilon=self.epsilon,
            codes=_codes,
            versions=(left.version.sha256, right.version.sha256),
        )
        cost = Cost(planned.epsilon, planned.delta)
        run = JoinRun(
            planned,
            (left.ref, right.ref),
            (left.version.number, right.version.number),
            self.engine,
            self.progress,
            self.timings,
        )
        return Priced(run, bytes.fromhex(planned.fingerprint), {left.ref: cost, right.ref: cost})

    def body(self, outcome: Outcome) -> bytes:
        assert isinstance(outcome, Aggregated)
        return outcome.answer.to_json()

    def _check_size(self, side: Found) -> None:
        """Refuse, before anything is reserved or read, a side whose version holds more
        rows than one side may blind. The version's rows, not those the WHERE keeps: those
        the consumer can tune one row at a time, and an answer that failed past the
        limit would tell whether one more person passed the filter."""
        if self.max_rows is not None and side.version.rows > self.max_rows:
            raise PolicyViolation(
                f"{side.ref} holds more rows than a private join blinds on one side "
                f"({self.max_rows:,}, the node's psi_max_rows)",
                rule="psi_max_rows",
                hint="ask the node's operator to raise psi_max_rows, or ask an aggregate "
                "query of each dataset",
            )


def _side(found: Found, node: str | None) -> Side:
    name = str(found.ref) if node is None else f"{node}:{found.ref}"
    return Side(found.ref.sql_name, name, found.standard, found.policy)
