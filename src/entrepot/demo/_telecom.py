"""Skyline Mobile: presence of subscribers' phones per district and hour, both provinces.

The operator's network export is semicolon-delimited, timestamps are epoch seconds
of the start of each hour, dwell is in minutes and phones are named by the
operator's own 16-hex-digit pseudonym.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from entrepot.demo._context import Context
from entrepot.demo._table import RawTable
from entrepot.demo.manifest import DemoFile

# One week of presence, Monday 3 March 2025 00:00 to Sunday 23:00.
_WEEK_START = int(datetime(2025, 3, 3, tzinfo=UTC).timestamp())
_HOURS = 7 * 24
# Share of the population subscribed to Skyline Mobile.
_SUBSCRIBERS = 0.65
# Relative network activity by hour of day: quiet nights, commuting peaks.
_ACTIVITY = np.array(
    [2, 1, 1, 1, 1, 2, 4, 7, 9, 8, 7, 7, 8, 7, 7, 7, 8, 9, 9, 8, 7, 6, 4, 3], dtype=float
)


def _defects(rows: int) -> int:
    return max(3, round(rows * 0.003))


def _presence(ctx: Context) -> dict[str, npt.NDArray[Any]]:
    rng, people = ctx.rng, ctx.population
    n = ctx.rows(50_000)
    subscribers = np.flatnonzero(rng.random(len(people)) < _SUBSCRIBERS)
    # Oversample, then keep one row per (phone, district, hour), as the standard's key says.
    draw = round(n * 1.2)
    person = rng.choice(subscribers, size=draw)
    hour_weights = np.tile(_ACTIVITY, 7)
    hour = rng.choice(_HOURS, size=draw, p=hour_weights / hour_weights.sum())
    home = people.district[person].astype(object)
    district = home.copy()
    for region in ctx.regions:
        mine = np.flatnonzero(people.province[person] == ctx.regions.index(region))
        move = rng.random(len(mine))
        codes = np.asarray(region.districts)
        anywhere = mine[move < 0.12]
        district[anywhere] = rng.choice(codes, size=len(anywhere))
        same_city = {
            d: [o for o in region.districts if region.city_of[o] == region.city_of[d]]
            for d in region.districts
        }
        nearby = mine[(move >= 0.12) & (move < 0.32)]
        # One draw per row, folded onto the city's districts (five each in the code list).
        pick = rng.integers(0, 5, size=len(nearby))
        for i, j in zip(nearby, pick, strict=True):
            options = same_city[str(home[i])]
            district[i] = options[j % len(options)]
    district = district.astype(str)
    key = np.char.add(np.char.add(person.astype(str), "|"), np.char.add(district, "|"))
    key = np.char.add(key, hour.astype(str))
    _, first = np.unique(key, return_index=True)
    keep = np.sort(first)[:n]
    order = keep[np.lexsort((person[keep], hour[keep]))]
    city_of = {d: c for region in ctx.regions for d, c in region.city_of.items()}
    at_home = district[order] == home[order]
    dwell = np.where(
        at_home & (rng.random(len(order)) < 0.6), 60, rng.integers(1, 61, size=len(order))
    )
    return {
        "person": person[order],
        "hour": hour[order],
        "district": district[order],
        "city": np.asarray([city_of[d] for d in district[order]]),
        "dwell": dwell,
    }


def skyline(ctx: Context, directory: Path) -> tuple[DemoFile, RawTable]:
    rng = ctx.rng
    presence = _presence(ctx)
    pseudonym = rng.choice(2**62, size=len(ctx.population), replace=False)
    phone_id = np.asarray([f"{int(v):016x}" for v in pseudonym], dtype=object)
    epoch = _WEEK_START + presence["hour"] * 3600
    table = RawTable(
        {
            "phone_id": phone_id[presence["person"]],
            "city": presence["city"].astype(object),
            "district": presence["district"].astype(object),
            "hour": np.asarray([str(int(v)) for v in epoch], dtype=object),
            "dwell_minutes": np.asarray([str(int(v)) for v in presence["dwell"]], dtype=object),
        },
        presence["person"],
    )
    n = len(table)
    k = _defects(n)
    table.spoil(
        rng,
        k,
        "dwell_minutes",
        "maximum:dwell_minutes",
        lambda rows: [str(int(v)) for v in rng.integers(61, 240, size=len(rows))],
    )
    table.spoil(rng, k, "dwell_minutes", "minimum:dwell_minutes", lambda rows: ["0"] * len(rows))
    table.spoil(
        rng,
        k,
        "hour",
        "type:hour",
        lambda rows: [
            datetime.fromtimestamp(int(v), UTC).strftime("%Y-%m-%d %H:%M")
            for v in table.columns["hour"][rows]
        ],
    )
    table.spoil(
        rng,
        k,
        "phone_id",
        "pattern:phone_id",
        lambda rows: [f"0x{v}" for v in table.columns["phone_id"][rows]],
    )
    all_cities = sorted({c for region in ctx.regions for c in region.cities})

    def wrong_city(rows: npt.NDArray[np.int64]) -> list[str]:
        cities = table.columns["city"][rows]
        return [all_cities[(all_cities.index(str(c)) + 1) % len(all_cities)] for c in cities]

    table.spoil(rng, k, "city", "foreign_key:district,city", wrong_city)
    table.duplicate(rng, k, "primary_key:phone_id,district,hour")
    path = directory / "skyline-presence-2025-w10.csv"
    table.write_csv(
        path,
        {
            "phone_id": "imsi_hash",
            "city": "city_code",
            "district": "cell_district",
            "hour": "hour_start_epoch",
            "dwell_minutes": "dwell_min",
        },
        delimiter=";",
    )
    entry = DemoFile(
        provider="skyline-mobile",
        provider_name="Skyline Mobile",
        path=path.name,
        mapping="skyline-presence.yaml",
        standard="mobility.presence",
        dataset="phone-presence",
        title="Phone presence per district and hour 2025",
        description="Where Skyline Mobile subscribers' phones were, per district and hour, "
        "in Lanshan and Qinghe provinces during one week of March 2025.",
        regions=("910000", "920000"),
        sector="J",
        encoding="utf-8",
        rows=len(table),
        people=len(np.unique(table.person)),
        defects=dict(table.defects),
    )
    return entry, table
