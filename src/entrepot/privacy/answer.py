"""The answer to a private query: noisy values, their 95% intervals, and what was spent.

An :class:`Answer` is built from noisy values only (post-processing never touches
raw data), so anything derived from it is safe to show. :meth:`Answer.to_json`
gives canonical bytes: the same answer always serializes to the same bytes, which
the coordinator caches (a repeated query gets these bytes back, never fresh noise
for free) and hashes into receipts; :meth:`Answer.from_json` reads them back.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from entrepot.errors import InvalidInput

__all__ = ["OTHER", "Answer", "Estimate", "Row"]

# The key every column of the merged small-groups row takes.
OTHER = "other"


@dataclass(frozen=True)
class Estimate:
    """A noisy value and its interval; ``lo <= truth <= hi`` with the answer's confidence.

    ``value`` is None for an AVG or a quantile whose count's interval reaches 0: noise
    over noise is not a figure, and the interval (the measure's bounds) says all that
    is known. ``hi`` is None where no high end is known: an estimate with what
    bounding removed put back, when some unit may have more rows than the removed
    total counts.
    """

    value: float | None
    lo: float
    hi: float | None


@dataclass(frozen=True)
class Row:
    """One output group: its key (one value per key column) and one estimate per aggregate.

    ``near_zero``: the group's noisy count is under the answer's
    ``near_zero_threshold``, so at this noise level it cannot be told from an empty
    group (the answer's empty groups escape the mark with probability 10⁻⁶ in all).
    ``asked`` holds, per aggregate, the estimate with the group's part of what
    bounding removed put back, about the question asked (None where nothing is put
    back); empty when nothing is, for any aggregate.
    """

    key: tuple[Any, ...]
    values: tuple[Estimate, ...]
    other: bool = False
    near_zero: bool = False
    asked: tuple[Estimate | None, ...] = ()


@dataclass(frozen=True)
class Answer:
    """What a private query returns.

    ``columns`` is the SELECT order; ``keys`` and ``aggregates`` split it. ``rows``
    holds the shown groups (and, when small groups were merged, one row whose keys
    are all ``"other"``); ``suppressed`` and ``merged`` list the keys of groups whose
    noisy count fell under the threshold. ``scales`` gives each aggregate's noise
    scale (Laplace ``b`` or Gaussian ``σ``; for AVG, that of its sum of
    deviations from the bounds' midpoint; for a quantile,
    the scale of OpenDP's selection of its estimate where both brackets are drawn, in
    ranks: the largest, a group drawing fewer uses a smaller one).
    ``near_zero_threshold`` is the count an empty group's noisy count exceeds with
    probability 10⁻⁶ divided by the number of public groups, so that any of the
    answer's empty groups does with probability at most 10⁻⁶: a row whose count is
    under it is marked ``near_zero`` (and suppressed if the policy says so).
    ``interval_of`` says what the intervals cover: ``"bounded data"`` when each unit's
    contribution was bounded, and then ``removed`` gives, per aggregate, the noisy
    share of it that bounding removed (over all groups, with its 95% interval),
    bought with ``removed_budget`` of the query's ε (of its ρ for Gaussian noise);
    ``removed_of`` is ``"version"`` where it is instead the share of the version's rows
    its bound removes, released when it was published (an answer bounded by the
    version's own estimate that could put nothing back).
    Where a COUNT's or SUM's removed total is told from zero at its own noise, each
    row's ``asked`` gives its estimate with its part of that total put back, about the
    question asked (see :mod:`entrepot.privacy._post`).
    """

    columns: tuple[str, ...]
    keys: tuple[str, ...]
    aggregates: tuple[str, ...]
    rows: tuple[Row, ...]
    epsilon: float
    delta: float
    mechanism: str
    scales: dict[str, float]
    suppressed: tuple[tuple[Any, ...], ...] = ()
    merged: tuple[tuple[Any, ...], ...] = ()
    threshold: float = 0.0
    fingerprint: str = ""
    confidence: float = 0.95
    notes: tuple[str, ...] = field(default=())
    near_zero_threshold: float = 0.0
    removed: dict[str, Estimate] = field(default_factory=dict)
    removed_budget: float = 0.0
    interval_of: str = "data"
    removed_of: str = "answer"

    def to_arrow(self) -> pa.Table:
        """One column per key, per aggregate ``name``, ``name_lo``, ``name_hi`` (and
        ``name_asked``, ``name_asked_lo``, ``name_asked_hi`` where its removed part is
        put back), and ``near_zero`` last."""
        data: dict[str, list[Any]] = {}
        merged = any(row.other for row in self.rows)
        for name in self.columns:
            if name in self.keys:
                index = self.keys.index(name)
                values = [row.key[index] for row in self.rows]
                if merged:
                    # One column of text: the merged row's key is "other", whatever the type.
                    values = [_text(v) for v in values]
                data[name] = values
            else:
                index = self.aggregates.index(name)
                data[name] = [row.values[index].value for row in self.rows]
                data[f"{name}_lo"] = [row.values[index].lo for row in self.rows]
                data[f"{name}_hi"] = [row.values[index].hi for row in self.rows]
                asked = [row.asked[index] if row.asked else None for row in self.rows]
                if any(e is not None for e in asked):
                    data[f"{name}_asked"] = [None if e is None else e.value for e in asked]
                    data[f"{name}_asked_lo"] = [None if e is None else e.lo for e in asked]
                    data[f"{name}_asked_hi"] = [None if e is None else e.hi for e in asked]
        data["near_zero"] = [row.near_zero for row in self.rows]
        if not self.rows:
            return pa.table(
                {
                    name: pa.array([], pa.bool_() if name == "near_zero" else pa.float64())
                    for name in data
                }
            )
        return pa.table(data)

    def to_pandas(self) -> pd.DataFrame:
        return self.to_arrow().to_pandas()

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "keys": list(self.keys),
            "aggregates": list(self.aggregates),
            "key_types": self._key_types(),
            "rows": [
                {
                    "key": [_plain(v) for v in row.key],
                    "values": [[e.value, e.lo, e.hi] for e in row.values],
                    "other": row.other,
                    "near_zero": row.near_zero,
                    **({"asked": [_figures(e) for e in row.asked]} if row.asked else {}),
                }
                for row in self.rows
            ],
            "epsilon": self.epsilon,
            "delta": self.delta,
            "mechanism": self.mechanism,
            "scales": self.scales,
            "suppressed": [[_plain(v) for v in key] for key in self.suppressed],
            "merged": [[_plain(v) for v in key] for key in self.merged],
            "threshold": self.threshold,
            "fingerprint": self.fingerprint,
            "confidence": self.confidence,
            "notes": list(self.notes),
            "near_zero_threshold": self.near_zero_threshold,
            "removed": {name: [e.value, e.lo, e.hi] for name, e in self.removed.items()},
            "removed_budget": self.removed_budget,
            "interval_of": self.interval_of,
            "removed_of": self.removed_of,
        }

    def to_json(self) -> bytes:
        """Canonical JSON bytes: sorted keys, no spaces, UTF-8."""
        return json.dumps(
            self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> Answer:
        """Read :meth:`to_json` bytes back into an equal answer."""
        try:
            doc = json.loads(data)
            types = doc["key_types"]
            keys = tuple(doc["keys"])

            def key_of(values: list[Any]) -> tuple[Any, ...]:
                return tuple(
                    dt.date.fromisoformat(v) if types.get(k) == "date" and v != OTHER else v
                    for k, v in zip(keys, values, strict=True)
                )

            # An answer stored before rows held their put-back had one group, and its
            # put-back beside the rows, by aggregate.
            beside = doc.get("asked") or {}
            aggregates = tuple(doc["aggregates"])
            if beside and len(doc["rows"]) == 1:
                doc["rows"][0]["asked"] = [beside.get(name) for name in aggregates]
            return cls(
                columns=tuple(doc["columns"]),
                keys=keys,
                aggregates=aggregates,
                rows=tuple(
                    Row(
                        key=key_of(r["key"]),
                        values=tuple(Estimate(*v) for v in r["values"]),
                        other=r["other"],
                        near_zero=r.get("near_zero", False),
                        asked=tuple(_estimate(e) for e in r.get("asked", ())),
                    )
                    for r in doc["rows"]
                ),
                epsilon=doc["epsilon"],
                delta=doc["delta"],
                mechanism=doc["mechanism"],
                scales=doc["scales"],
                suppressed=tuple(key_of(k) for k in doc["suppressed"]),
                merged=tuple(key_of(k) for k in doc["merged"]),
                threshold=doc["threshold"],
                fingerprint=doc["fingerprint"],
                confidence=doc["confidence"],
                notes=tuple(doc["notes"]),
                near_zero_threshold=doc.get("near_zero_threshold", 0.0),
                removed={name: Estimate(*v) for name, v in doc.get("removed", {}).items()},
                removed_budget=doc.get("removed_budget", 0.0),
                interval_of=doc.get("interval_of", ""),
                removed_of=doc.get("removed_of", "answer"),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise InvalidInput(
                f"not a stored answer: {error}", hint="pass bytes made by Answer.to_json()"
            ) from None

    def _key_types(self) -> dict[str, str]:
        types: dict[str, str] = {}
        for index, name in enumerate(self.keys):
            sample = [row.key[index] for row in self.rows if not row.other]
            sample += [key[index] for key in (*self.suppressed, *self.merged)]
            types[name] = "date" if any(isinstance(v, dt.date) for v in sample) else "value"
        return types


def _estimate(figures: list[Any] | None) -> Estimate | None:
    return None if figures is None else Estimate(*figures)


def _figures(estimate: Estimate | None) -> list[float | None] | None:
    return None if estimate is None else [estimate.value, estimate.lo, estimate.hi]


def _text(value: Any) -> str | None:
    """A key as text (dates in ISO form), NULL kept."""
    if value is None or isinstance(value, str):
        return value
    return str(_plain(value))


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value
