"""The re-identification risk of a release, in the terms ARX uses.

- **Prosecutor** (the attacker knows the person is in the release): a record's risk is
  1 / the privacy units in its equivalence class; reported as the highest, the average
  over records, and the share of records above :data:`RISK_THRESHOLD`.
- **Journalist** (the attacker knows only that the person is in the dataset, the
  population here): 1 / the units of the record's class in the whole dataset. A release
  suppresses whole classes, so each released class is as large as in the dataset and
  the journalist's figures equal the prosecutor's; they are reported apart because
  they would differ with a population table.
- **Marketer** (the attacker matches everyone at once): the expected share of records
  re-identified, classes / records.

Which quasi-identifiers drive the risk: per column, its *distinction* (distinct values /
records) and the share of records whose value alone is held by fewer than k units.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["RISK_THRESHOLD", "class_histogram", "drivers", "risk"]

# A record whose prosecutor risk is above 20% (a class of fewer than 5 units) is "at
# risk" in the sense of the EMA and Health Canada guidance that ARX follows.
RISK_THRESHOLD = 0.2
_BUCKETS = ((1, 1), (2, 2), (3, 4), (5, 9), (10, 19), (20, 49), (50, 99), (100, None))


def risk(sizes: np.ndarray, units: np.ndarray) -> dict[str, Any]:
    """The three attackers' figures for released classes of ``sizes`` rows and ``units``
    privacy units."""
    records = int(sizes.sum())
    if records == 0:
        empty = {"highest": 0.0, "average": 0.0, "records_at_risk": 0.0}
        return {"prosecutor": empty, "journalist": empty, "marketer": 0.0}
    per_class = 1.0 / units
    figures = {
        "highest": float(per_class.max()),
        "average": float(np.dot(sizes, per_class) / records),
        "records_at_risk": float(sizes[per_class > RISK_THRESHOLD].sum() / records),
    }
    return {
        "prosecutor": figures,
        "journalist": dict(figures),
        "marketer": float(len(sizes) / records),
        "threshold": RISK_THRESHOLD,
    }


def class_histogram(units: np.ndarray) -> list[dict[str, Any]]:
    """How many classes hold how many units, in fixed buckets."""
    out = []
    for low, high in _BUCKETS:
        inside = (units >= low) if high is None else (units >= low) & (units <= high)
        label = f"{low}+" if high is None else (str(low) if low == high else f"{low}-{high}")
        out.append({"units": label, "classes": int(inside.sum())})
    return out


def drivers(
    columns: list[str], codes: list[np.ndarray], counts: np.ndarray, k: int
) -> list[dict[str, Any]]:
    """Per quasi-identifier, on the data before generalization: its distinction and the
    share of records whose value alone is rarer than k."""
    records = max(int(counts.sum()), 1)
    out = []
    for column, values in zip(columns, codes, strict=True):
        held = np.bincount(values, weights=counts)
        out.append(
            {
                "column": column,
                "distinct_values": int((held > 0).sum()),
                "distinction": float((held > 0).sum() / records),
                "records_rare_alone": float(counts[held[values] < k].sum() / records),
            }
        )
    return sorted(out, key=lambda d: (-d["records_rare_alone"], -d["distinction"]))
