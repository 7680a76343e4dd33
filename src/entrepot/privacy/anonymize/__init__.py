"""Anonymized releases: generalize quasi-identifiers until a privacy model holds.

::

    from entrepot.privacy.anonymize import Criteria, anonymize
    done = anonymize(frame, standard, quasi=("district", "age_band"), sensitive="diagnosis_group",
                     keep=("cost",), criteria=Criteria(k=10, l=3, max_suppression=0.05))
    done.table      # the rows to release (pyarrow), quasi-identifiers as labels
    done.report     # the generalization chosen, the loss, the risk report

Identifiers and every column not named are dropped, except those in ``pseudonyms``:
each is kept as a keyed hash (HMAC-SHA256, truncated to 128 bits) under a random key
made for this call alone and never kept, so a value has one pseudonym within the
release and another in every other release. A pseudonym of the privacy unit links a
unit's rows, and the search then counts what it links (:mod:`.search`). Measures in
``keep`` are clamped to the standard's public bounds. The hierarchies are
:mod:`.hierarchy`'s, the search :mod:`.search`'s, the risk figures :mod:`.risk`'s.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from entrepot.errors import InvalidInput, PolicyViolation, param
from entrepot.privacy.anonymize.hierarchy import Hierarchy, Levels, hierarchy_for
from entrepot.privacy.anonymize.risk import class_histogram, drivers, risk
from entrepot.privacy.anonymize.search import Criteria, Evaluation, Search, Table
from entrepot.standards.schema import Standard

__all__ = ["Anonymization", "Anonymized", "Criteria", "anonymize", "generalize"]

# 128 bits of HMAC-SHA256 (truncation as RFC 2104 section 5 allows): collisions are
# out of reach for any table, at half the bytes of the full digest per row.
_PSEUDONYM_BYTES = 16


@dataclass(frozen=True)
class Anonymized:
    """The rows to release and the report that describes them."""

    table: pa.Table
    report: dict[str, Any]


@dataclass(frozen=True)
class Anonymization:
    """A checked anonymized release, as the vault runs it on a version's rows."""

    standard: Standard
    quasi: tuple[str, ...]
    criteria: Criteria
    sensitive: str | None = None
    kept_sensitive: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()
    pseudonyms: tuple[str, ...] = ()

    def make(self, frame: pd.DataFrame, *, plan_only: bool) -> tuple[pa.Table, dict[str, Any]]:
        done = anonymize(
            frame,
            self.standard,
            quasi=self.quasi,
            criteria=self.criteria,
            sensitive=self.sensitive,
            kept_sensitive=self.kept_sensitive,
            keep=self.keep,
            pseudonyms=self.pseudonyms,
            plan_only=plan_only,
        )
        return done.table, done.report


def _codes(series: pd.Series) -> tuple[np.ndarray, list[object]]:
    codes, uniques = pd.factorize(series, use_na_sentinel=False)
    values = [None if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in uniques]
    return codes.astype(np.int32), values


def _check_columns(frame: pd.DataFrame, names: Sequence[str]) -> None:
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise InvalidInput(
            f"the data has no column {', '.join(missing)}",
            hint=f"its columns: {', '.join(map(str, frame.columns))}",
        )


def anonymize(
    frame: pd.DataFrame,
    standard: Standard,
    *,
    quasi: Sequence[str],
    criteria: Criteria,
    sensitive: str | None = None,
    kept_sensitive: Sequence[str] = (),
    keep: Sequence[str] = (),
    pseudonyms: Sequence[str] = (),
    hierarchies: Sequence[Hierarchy] | None = None,
    plan_only: bool = False,
) -> Anonymized:
    """Generalize ``frame`` so that ``criteria`` hold on ``quasi``, at the least loss.

    Raises :class:`PolicyViolation` (rule ``suppression_limit``) when no generalization
    meets the criteria within the suppression limit. With ``plan_only``, the table is
    empty and only the report is computed.
    """
    quasi = list(quasi)
    released = [*quasi, *keep, *kept_sensitive, *([sensitive] if sensitive else [])]
    _check_columns(frame, [*released, *pseudonyms])
    both = sorted(set(pseudonyms) & set(released))
    if both:
        raise InvalidInput(
            f"{', '.join(both)} cannot be released both as a pseudonym and as it is",
            hint="a pseudonym is a unique identifier: never a quasi-identifier, sensitive "
            "or kept column",
        )
    if sensitive is None and (criteria.l > 1 or criteria.t < 1.0):
        raise PolicyViolation(
            "l-diversity and t-closeness need a sensitive column, and the release names none",
            rule="sensitive_column",
            hint=f"list one in the policy's release.sensitive, or ask for {param('l')} 1 "
            f"without {param('t')}",
        )
    given = {h.column: h for h in hierarchies or ()}
    levels: list[Levels] = []
    codes: list[np.ndarray] = []
    for column in quasi:
        column_codes, values = _codes(frame[column])
        chosen = given.get(column) or hierarchy_for(standard.field(column), values)
        levels.append(chosen.levels(values))
        codes.append(column_codes)
    units = None
    unit = standard.privacy_unit
    if unit and not standard.one_row_per_unit and unit in frame.columns:
        units = _codes(frame[unit])[0]
    linked = unit is not None and unit in pseudonyms and units is not None
    sensitive_codes, n_sensitive = None, 0
    if sensitive is not None:
        sensitive_codes, sensitive_values = _codes(frame[sensitive])
        n_sensitive = len(sensitive_values)
    table, row_tuple = Table.build(
        tuple(levels), tuple(codes), units, sensitive_codes, n_sensitive, linked=linked
    )
    search = Search(table, criteria)
    best, passing = search.run()
    if best is None:
        raise PolicyViolation(
            f"no generalization of {', '.join(quasi)} meets k = {criteria.k}"
            + (f", l = {criteria.l}" if criteria.l > 1 else "")
            + (f", t = {criteria.t:g}" if criteria.t < 1 else "")
            + f" with at most {criteria.max_suppression:.1%} of the rows suppressed",
            rule="suppression_limit",
            hint="ask for a smaller k or l, or release fewer quasi-identifiers",
        )
    report = _report(frame, quasi, levels, codes, table, search, best, passing, criteria)
    if pseudonyms:
        report["pseudonyms"] = {
            "columns": list(dict.fromkeys(pseudonyms)),
            "links_units": linked,
            "method": "HMAC-SHA256 (128 bits) under a random key made for this release "
            "and never kept: the same value has the same pseudonym within the release, "
            "another in any other release",
        }
    if plan_only:
        return Anonymized(pa.table({}), report)
    out = generalize(frame, quasi, levels, codes, best, row_tuple)
    kept = ~best.failing[best.classes[row_tuple]]
    for column in dict.fromkeys([*([sensitive] if sensitive else []), *kept_sensitive]):
        # pandas holds a missing text as NaN, which Arrow would read as a number and
        # then fail on the text: whether one person's value is missing would decide
        # whether the release is made. Read as pandas means it, a missing value is null.
        out[column] = pa.array(frame[column].to_numpy()[kept], from_pandas=True)
    for column in keep:
        values = frame[column].to_numpy()[kept]
        bounds = standard.field(column).bounds
        out[column] = values if bounds is None else np.clip(values.astype(float), *bounds)
    if pseudonyms:
        key = secrets.token_bytes(32)
        for column in dict.fromkeys(pseudonyms):
            out[column] = _pseudonyms(frame[column].to_numpy()[kept], key)
    return Anonymized(pa.table(out), report)


def _pseudonyms(values: np.ndarray, key: bytes) -> pa.Array:
    """Each value's keyed hash (HMAC-SHA256, 128 bits, hex) under ``key``; missing
    values stay missing. Each distinct value is hashed once."""
    codes, uniques = pd.factorize(values)
    digests = np.array(
        [hmac.digest(key, str(v).encode(), "sha256")[:_PSEUDONYM_BYTES].hex() for v in uniques]
        + [None],
        dtype=object,
    )
    return pa.array(digests[codes], type=pa.string())


def generalize(
    frame: pd.DataFrame,
    quasi: Sequence[str],
    levels: Sequence[Levels],
    codes: Sequence[np.ndarray],
    best: Evaluation,
    row_tuple: np.ndarray,
) -> dict[str, Any]:
    """The kept rows' quasi-identifiers, as the labels of ``best``'s levels."""
    kept = ~best.failing[best.classes[row_tuple]]
    out: dict[str, Any] = {}
    for column, lv, column_codes, level in zip(quasi, levels, codes, best.node, strict=True):
        labels = lv.labels[level][lv.maps[level][column_codes[kept]]]
        out[column] = pa.array(labels.tolist(), type=pa.string())
    return out


def _report(
    frame: pd.DataFrame,
    quasi: list[str],
    levels: list[Levels],
    codes: list[np.ndarray],
    table: Table,
    search: Search,
    best: Evaluation,
    passing: int,
    criteria: Criteria,
) -> dict[str, Any]:
    kept = ~best.failing
    sizes, units = best.sizes[kept], best.units[kept]
    weights = table.counts * kept[best.classes]
    per_column = []
    for lv, column_codes, level in zip(levels, table.codes, best.node, strict=True):
        loss = lv.losses[level][lv.maps[level][column_codes]]
        cell = (float(np.dot(loss, weights)) + best.suppressed) / max(table.rows, 1)
        per_column.append(
            {
                "column": lv.column,
                "level": level,
                "generalized_to": lv.names[level],
                "levels": list(lv.names),
                "loss": cell,
            }
        )
    rows_in = table.rows
    return {
        "model": {
            "k": criteria.k,
            "l": criteria.l,
            "l_model": criteria.l_model,
            "t": criteria.t,
            "max_suppression": criteria.max_suppression,
        },
        "generalization": per_column,
        "rows_in": rows_in,
        "rows_released": rows_in - best.suppressed,
        "rows_suppressed": best.suppressed,
        "classes": {
            "count": int(kept.sum()),
            "smallest_units": int(units.min()) if units.size else 0,
            "median_units": float(np.median(units)) if units.size else 0.0,
            "largest_units": int(units.max()) if units.size else 0,
            "histogram": class_histogram(units),
        },
        "risk": risk(sizes, units),
        "drivers": drivers(quasi, [c for c in table.codes], table.counts, criteria.k),
        "information_loss": {
            "metric": "LM (Iyengar's loss metric, averaged over released cells; suppressed = 1)",
            "loss": best.loss,
            "discernibility": int(np.dot(sizes, sizes)) + best.suppressed * rows_in,
        },
        "search": {
            "lattice_nodes": search.nodes,
            "evaluated": search.evaluated,
            "passing_evaluated": passing,
            "why": "the least LM among the nodes that meet the model: every node not "
            "evaluated is finer than one that fails, or its loss without suppression "
            "(a lower bound) already reaches this one's",
        },
    }
