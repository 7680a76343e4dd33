"""A node of one's own for the privacy tests: one published visits dataset, one consumer."""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

from entrepot.exchange.accounts import LOCAL, Accounts
from entrepot.exchange.contracts import Contracts
from entrepot.exchange.node import Node
from entrepot.exchange.policies import Policies
from entrepot.settings import Settings
from entrepot.standards import codelist, get
from entrepot.vault import LocalVault, OnError, PublishRequest, add_provider

__all__ = ["CONSUMER", "DATASET", "POLICY", "small_node"]

DATASET = "riverside-hospitals/outpatient-visits"
CONSUMER = "city-health-bureau"
POLICY = """
epsilon:
  per_query: 1.0
  dataset_cap: 50.0
latency_floor_ms: 0
"""


def _write_visits(path: Path, rows: int, districts: Sequence[str], seed: int) -> None:
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(get("health.visit").field_names)
        for i in range(rows):
            writer.writerow(
                [
                    f"V{i:06d}",
                    f"P-{rng.randrange(max(rows // 2, 1)):05d}",
                    f"2025-{rng.randrange(1, 7):02d}-{rng.randrange(1, 29):02d}",
                    rng.choice(districts),
                    str(rng.choice((1, 2))),
                    rng.choice(codelist("age_band").codes),
                    rng.choice(codelist("diagnosis_group").codes),
                    f"{rng.uniform(10, 900):.2f}",
                    f"{rng.uniform(0.1, 5):.2f}",
                ]
            )


def small_node(
    home: Path,
    *,
    rows: int,
    districts: Sequence[str] | None = None,
    policy: str = POLICY,
    seed: int = 3,
) -> Path:
    """Make a node at ``home`` holding ``rows`` visits in ``districts``, a policy, and a
    consumer granted 50 ε on it; returns ``home`` for :func:`entrepot.connect`."""
    node = Node.init(Settings(home=home))
    try:
        raw = home.parent / f"{home.name}-visits.csv"
        _write_visits(raw, rows, districts or codelist("region.district").codes[:4], seed)
        add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
        with raw.open("rb") as data:
            LocalVault.of(node).publish(
                PublishRequest(
                    provider="riverside-hospitals",
                    standard=get("health.visit"),
                    title="Outpatient visits 2025",
                    on_error=OnError.REJECT,
                    filename="visits.csv",
                ),
                data,
            )
        accounts = Accounts(node.db, node.settings, log=node.log)
        accounts.create(LOCAL, CONSUMER, "consumer")
        provider = accounts.actor("riverside-hospitals")
        Policies(node).set(provider, DATASET, policy, where="test")
        contracts = Contracts(node.db, node.settings, log=node.log)
        request = contracts.request(
            accounts.actor(CONSUMER),
            DATASET,
            purpose="public-health-surveillance",
            epsilon=50.0,
            until=date.today() + timedelta(days=30),
        )
        contracts.grant(provider, request.ref, epsilon=50.0)
    finally:
        node.close()
    return home
