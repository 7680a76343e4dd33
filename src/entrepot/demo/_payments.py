"""Jade Pay: card and mobile payments by people to merchants, both provinces.

The processor's export names merchants by a four-digit merchant category code
(mapped onto the standard's sectors), channels in Chinese, amounts in fen and
times as ``%Y年%m月%d日 %H:%M:%S``. Payers are identified by their resident number
(real-name accounts), so the same people can be found in the hospitals' files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from entrepot.demo._context import Context, day_numbers, format_times
from entrepot.demo._table import RawTable
from entrepot.demo.manifest import DemoFile

# Merchant category code → (relative frequency, typical amount in yuan); the mapping
# jadepay-transactions.yaml turns each code into a standard sector.
MERCHANT_CATEGORIES: dict[str, tuple[float, float]] = {
    "5411": (30, 85.0),  # supermarkets
    "5812": (22, 60.0),  # restaurants
    "4111": (14, 6.0),  # local transport
    "5541": (6, 280.0),  # fuel
    "4814": (5, 95.0),  # telecom services
    "8062": (4, 320.0),  # hospitals
    "5912": (5, 70.0),  # pharmacies
    "7011": (2, 450.0),  # hotels
    "7832": (3, 75.0),  # cinemas
    "8220": (2, 1500.0),  # schools and universities
    "6300": (2, 900.0),  # insurance
    "4900": (3, 210.0),  # utilities
    "7230": (2, 120.0),  # hair and beauty
}
# How the export names the channels (→ the standard's enum).
CHANNELS = {"刷卡": "card", "扫码": "qr", "转账": "transfer"}
_CHANNEL_SHARE = (0.25, 0.65, 0.10)
_CUSTOMERS = 0.75
# Seconds after midnight: payments cluster around lunch and the evening.
_HOUR_WEIGHTS = np.array(
    [1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 3, 5, 5, 5, 6, 9, 7, 5, 5, 5, 6, 9, 9, 8, 6, 4, 2]
)
_BAD_TIMES = ("2025年02月30日 12:10:00", "2025年13月01日 09:00:00", "2025/03/01 18:22:05")


def _defects(rows: int) -> int:
    return max(3, round(rows * 0.004))


def _payments(ctx: Context) -> dict[str, npt.NDArray[Any]]:
    rng, people = ctx.rng, ctx.population
    n = ctx.rows(45_000)
    customers = np.flatnonzero(rng.random(len(people)) < _CUSTOMERS)
    weights = rng.gamma(1.0, size=len(customers))
    person = rng.choice(customers, size=n, p=weights / weights.sum())
    district = people.district[person].astype(object)
    elsewhere = np.flatnonzero(rng.random(n) < 0.2)
    for i in elsewhere:
        codes = ctx.regions[int(people.province[person[i]])].districts
        district[i] = codes[int(rng.integers(len(codes)))]
    mcc_codes = np.asarray(list(MERCHANT_CATEGORIES))
    freq = np.asarray([v[0] for v in MERCHANT_CATEGORIES.values()], dtype=float)
    mcc = rng.choice(mcc_codes, size=n, p=freq / freq.sum())
    typical = np.asarray([MERCHANT_CATEGORIES[str(m)][1] for m in mcc])
    fen = np.clip(np.round(rng.lognormal(np.log(typical), 0.7) * 100), 1, 5e7).astype(np.int64)
    channel = rng.choice(np.asarray(list(CHANNELS)), size=n, p=_CHANNEL_SHARE)
    day = day_numbers(rng, n, months=3)
    hour = rng.choice(24, size=n, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    second = hour * 3600 + rng.integers(0, 3600, size=n)
    order = np.lexsort((second, day))
    return {
        "person": person[order],
        "district": district[order].astype(str),
        "mcc": mcc[order],
        "channel": channel[order],
        "fen": fen[order],
        "day": day[order],
        "second": second[order],
    }


def jade_pay(ctx: Context, directory: Path) -> tuple[DemoFile, RawTable]:
    rng = ctx.rng
    pay = _payments(ctx)
    n = len(pay["person"])
    ids = rng.choice(10**12, size=n, replace=False)
    table = RawTable(
        {
            "transaction_id": np.asarray([f"JP{int(v):012d}" for v in ids], dtype=object),
            "person_id": ctx.population.resident_id[pay["person"]],
            "merchant_sector": pay["mcc"].astype(object),
            "district": pay["district"].astype(object),
            "channel": pay["channel"].astype(object),
            "amount": np.asarray([str(int(v)) for v in pay["fen"]], dtype=object),
            "paid_at": format_times(pay["day"], pay["second"], "%Y年%m月%d日 %H:%M:%S"),
        },
        pay["person"],
    )
    k = _defects(n)
    table.spoil(
        rng,
        k,
        "paid_at",
        "type:paid_at",
        lambda rows: [str(v) for v in rng.choice(_BAD_TIMES, size=len(rows))],
    )
    table.spoil(
        rng,
        k,
        "amount",
        "minimum:amount",
        lambda rows: [f"-{v}" for v in table.columns["amount"][rows]],
    )
    table.spoil(rng, k, "channel", "enum:channel", lambda rows: ["现金"] * len(rows))
    table.spoil(
        rng, k, "merchant_sector", "codelist:merchant_sector", lambda rows: ["0000"] * len(rows)
    )
    table.duplicate(rng, k, "primary_key:transaction_id")
    path = directory / "jadepay-transactions-2025q1.csv"
    table.write_csv(
        path,
        {
            "transaction_id": "交易流水号",
            "person_id": "付款人证件号",
            "merchant_sector": "商户类别码",
            "district": "商户所在区县",
            "channel": "支付方式",
            "amount": "金额(分)",
            "paid_at": "交易时间",
        },
    )
    entry = DemoFile(
        provider="jade-pay",
        provider_name="Jade Pay",
        path=path.name,
        mapping="jadepay-transactions.yaml",
        standard="payments.transaction",
        dataset="payments",
        title="Card and mobile payments 2025",
        description="Card and mobile payments processed by Jade Pay in Lanshan and Qinghe "
        "provinces, January to March: merchant sector, district, channel and amount.",
        regions=("910000", "920000"),
        sector="K",
        encoding="utf-8",
        rows=len(table),
        people=len(np.unique(table.person)),
        defects=dict(table.defects),
    )
    return entry, table
