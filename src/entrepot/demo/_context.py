"""What every demo provider builder shares: the people, the regions, the calendar."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import Any

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


# Where strftime's fields sit in numpy's ISO text "YYYY-MM-DDTHH:MM:SS".
_ISO_FIELDS = {"Y": (0, 4), "m": (5, 7), "d": (8, 10), "H": (11, 13), "M": (14, 16), "S": (17, 19)}


def format_times(
    day: npt.NDArray[np.int64], second: npt.NDArray[np.int64] | int, fmt: str
) -> npt.NDArray[Any]:
    """strftime for whole arrays: days since the epoch plus seconds, formatted by ``fmt``.

    Supports %Y %m %d %H %M %S and literal text; built on numpy's ISO strings so a
    million timestamps format in a fraction of a second.
    """
    moments = day.astype("datetime64[D]").astype("datetime64[s]") + np.asarray(second)
    iso = np.datetime_as_string(moments, unit="s").astype("U19")
    chars = iso.view("U1").reshape(len(iso), 19)
    blocks, literal, i = [], "", 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt) and fmt[i + 1] in _ISO_FIELDS:
            if literal:
                blocks.append(np.full((len(iso), len(literal)), list(literal), dtype="U1"))
                literal = ""
            start, end = _ISO_FIELDS[fmt[i + 1]]
            blocks.append(chars[:, start:end])
            i += 2
        else:
            literal += fmt[i]
            i += 1
    if literal:
        blocks.append(np.full((len(iso), len(literal)), list(literal), dtype="U1"))
    joined = np.ascontiguousarray(np.concatenate(blocks, axis=1))
    return joined.view(f"U{joined.shape[1]}").ravel().astype(object)


def age_band(age: npt.NDArray[np.int64]) -> npt.NDArray[np.str_]:
    """Standard age-band codes (``age_band`` code list) of ages in years."""
    edges = np.array([5, 15, 25, 35, 45, 55, 65, 75, 85])
    codes = np.asarray(codelist("age_band").codes)
    return codes[np.searchsorted(edges, age, side="right")]


def mapping_codes(name: str) -> dict[str, str]:
    """A ``local,standard`` code file shipped with the demo mappings, as a dict."""
    rows = csv.DictReader(io.StringIO(MAPPINGS.joinpath(name).read_text(encoding="utf-8")))
    return {row["local"]: row["standard"] for row in rows}
