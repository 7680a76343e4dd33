"""A node whose every change went through the exchange's logged write paths."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from tests.vault.visits import write_visits_csv

from entrepot.exchange import Exchange
from entrepot.exchange.accounts import LOCAL, Accounts
from entrepot.exchange.catalog import publish_version
from entrepot.exchange.contracts import Contracts
from entrepot.exchange.node import Node
from entrepot.exchange.policies import Policies
from entrepot.standards import get
from entrepot.vault import OnError, PublishRequest, add_provider

PROVIDER = "riverside-hospitals"
CONSUMER = "city-health-bureau"
DATASET = "riverside-hospitals/outpatient-visits"
SQL = "SELECT COUNT(*) AS n FROM riverside_hospitals.outpatient_visits"
POLICY = """
epsilon:
  per_query: 1.0
  dataset_cap: 5.0
latency_floor_ms: 0
threshold: 0
"""


def publish(node: Node, source: Path) -> int:
    """Publish ``source`` as the dataset's next version; returns its number."""
    with source.open("rb") as data:
        published = publish_version(
            node,
            PublishRequest(
                provider=PROVIDER,
                standard=get("health.visit"),
                title="Outpatient visits 2025",
                dataset="outpatient-visits",
                on_error=OnError.QUARANTINE,
                filename=source.name,
            ),
            data,
        )
    return published.version.number


def seed(node: Node, tmp_path: Path, *, query: bool = True) -> None:
    """A version, a consumer account, a policy, a granted request and (by default) one answer."""
    add_provider(node.db, PROVIDER, "Riverside Hospitals")
    publish(node, write_visits_csv(tmp_path / "visits.csv", 200, bad=2))
    accounts = Accounts(node.db, node.settings, log=node.log)
    accounts.create(LOCAL, CONSUMER, "consumer")
    provider, consumer = accounts.actor(PROVIDER), accounts.actor(CONSUMER)
    Policies(node).set(provider, DATASET, POLICY, where="test")
    contracts = Contracts(node.db, node.settings, log=node.log)
    request = contracts.request(
        consumer,
        DATASET,
        purpose="public-health-surveillance",
        epsilon=3.0,
        until=date.today() + timedelta(days=30),
    )
    contracts.grant(provider, request.ref)
    if query:
        Exchange(node).queries.run(consumer, SQL, epsilon=0.5)
