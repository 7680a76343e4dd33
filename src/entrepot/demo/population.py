"""The shared synthetic population every demo provider draws its customers from.

Each person has a fictional resident number and a phone number. Providers record
them in their own local formats, and their mappings bring them back to one canonical
form, so private joins across providers find the same people.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["DEMO_YEAR", "Population", "make_population"]

# The calendar year every demo file describes (ages and dates are relative to it).
DEMO_YEAR = 2025

# Share of the population living in the first province; the rest live in the second.
_FIRST_PROVINCE_SHARE = 0.55


@dataclass(frozen=True)
class Population:
    """Columns of the population, one entry per person (index = person number)."""

    resident_id: npt.NDArray[np.str_]
    phone: npt.NDArray[np.str_]
    sex: npt.NDArray[np.int64]
    age: npt.NDArray[np.int64]
    province: npt.NDArray[np.int64]
    district: npt.NDArray[np.str_]

    def __len__(self) -> int:
        return len(self.resident_id)

    def living_in(self, province: int) -> npt.NDArray[np.int64]:
        """Person numbers of the residents of ``province`` (0 or 1)."""
        return np.flatnonzero(self.province == province)


def _unique_numbers(rng: np.random.Generator, size: int, digits: int) -> npt.NDArray[np.int64]:
    return rng.choice(10**digits, size=size, replace=False).astype(np.int64)


def make_population(
    rng: np.random.Generator, size: int, districts: Sequence[Sequence[str]]
) -> Population:
    """Draw ``size`` people living in the given districts of two provinces.

    ``districts[p]`` lists the standard district codes of province ``p``.
    """
    resident = np.char.add("ZR", np.char.zfill(_unique_numbers(rng, size, 10).astype(str), 10))
    # Mobile numbers: 1 + a carrier prefix 30..99 + 8 digits, all distinct.
    prefix = rng.integers(30, 100, size=size)
    phone = ((10**10 + prefix * 10**8) + _unique_numbers(rng, size, 8)).astype(str)
    sex = rng.choice(np.array([1, 2], dtype=np.int64), size=size)
    # A rough adult-heavy age pyramid, capped at 99.
    age = np.minimum(rng.gamma(shape=4.5, scale=9.0, size=size).astype(np.int64), 99)
    province = (rng.random(size) >= _FIRST_PROVINCE_SHARE).astype(np.int64)
    district = np.empty(size, dtype=object)
    for p, codes in enumerate(districts):
        members = np.flatnonzero(province == p)
        # Uneven district sizes: a few big urban districts, smaller outer ones.
        weights = rng.dirichlet(np.full(len(codes), 2.0))
        district[members] = rng.choice(np.asarray(codes), size=len(members), p=weights)
    return Population(
        resident_id=resident,
        phone=phone,
        sex=sex,
        age=age,
        province=province,
        district=district.astype(str),
    )
