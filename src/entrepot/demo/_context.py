"""What every demo provider builder shares: the people, the regions, the calendar."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib import resources

import numpy as np
import numpy.typing as npt

from entrepot.demo.population import DEMO_YEAR, Population
from entrepot.standards import codelist

# The two provinces of the demo, as codes of the standard region hierarchy.
PROVINCES = ("910000", "920000")

_EPOCH_DAY = date(1970, 1, 1)

MAPPINGS = resources.files("entrepot.demo").joinpath("mappings")


@dataclass(frozen=True)
class Region:
    """The standard cities and districts of one province."""

    province: str
    cities: tuple[str, ...]
    districts: tuple[str, ...]
    city_of: dict[str, str]


def regions() -> tuple[Region, ...]:
    """The demo provinces with their cities and districts, from the shipped code lists."""
    city_list = codelist("region.city")
    district_list = codelist("region.district")
    out = []
    for province in PROVINCES:
        cities = tuple(
            c for c, p in zip(city_list.codes, city_list.parents, strict=True) if p == province
        )
        city_of = {
            d: str(p)
            for d, p in zip(district_list.codes, district_list.parents, strict=True)
            if p in cities
        }
        out.append(Region(province, cities, tuple(city_of), city_of))
    return tuple(out)


@dataclass(frozen=True)
class Context:
    """Inputs of one provider builder: its own random stream, the people, the regions."""

    rng: np.random.Generator
    population: Population
    regions: tuple[Region, ...]
    scale: float

    def rows(self, base: int) -> int:
        return max(50, round(base * self.scale))


def day_numbers(rng: np.random.Generator, size: int, months: int) -> npt.NDArray[np.int64]:
    """Days since the epoch in the first ``months`` months of the demo year, weekdays busier."""
    start = (date(DEMO_YEAR, 1, 1) - _EPOCH_DAY).days
    end = (date(DEMO_YEAR + months // 12, months % 12 + 1, 1) - _EPOCH_DAY).days
    days = np.arange(start, end)
    # 1970-01-01 was a Thursday: (day + 3) % 7 is 0 on Mondays, 5-6 at weekends.
    weights = np.where((days + 3) % 7 >= 5, 0.45, 1.0)
    return rng.choice(days, size=size, p=weights / weights.sum()).astype(np.int64)


def as_date(day: int) -> date:
    return _EPOCH_DAY + timedelta(days=int(day))


def as_datetime(day: int, second: int) -> datetime:
    return datetime(DEMO_YEAR, 1, 1) + timedelta(
        days=int(day) - (date(DEMO_YEAR, 1, 1) - _EPOCH_DAY).days, seconds=int(second)
    )


def age_band(age: npt.NDArray[np.int64]) -> npt.NDArray[np.str_]:
    """Standard age-band codes (``age_band`` code list) of ages in years."""
    edges = np.array([5, 15, 25, 35, 45, 55, 65, 75, 85])
    codes = np.asarray(codelist("age_band").codes)
    return codes[np.searchsorted(edges, age, side="right")]


def mapping_codes(name: str) -> dict[str, str]:
    """A ``local,standard`` code file shipped with the demo mappings, as a dict."""
    rows = csv.DictReader(io.StringIO(MAPPINGS.joinpath(name).read_text(encoding="utf-8")))
    return {row["local"]: row["standard"] for row in rows}
