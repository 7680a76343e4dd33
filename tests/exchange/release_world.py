"""A node with a dataset whose policy allows releases, and consumers to make them for."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

from tests.exchange.logged_world import DATASET, PROVIDER, publish
from tests.vault.visits import write_visits_csv

from entrepot.exchange import Exchange
from entrepot.exchange.accounts import LOCAL
from entrepot.exchange.node import Node
from entrepot.exchange.release import ReleaseSpec
from entrepot.settings import Settings
from entrepot.vault import add_provider

CONSUMER = "lanshan-health-bureau"
MARKETER = "acme-insights"  # its grant's purpose allows aggregates only
OUTSIDER = "other-bureau"  # holds a grant of its own, and no release
POLICY = """
epsilon:
  per_query: 1.0
  dataset_cap: 20.0
latency_floor_ms: 0
release:
  kinds: [anonymized, synthetic]
  k_min: 5
  l_min: 2
  max_suppression: 0.1
  quasi_identifiers: [visit_date, district, sex, age_band]
  sensitive: [diagnosis_group]
  keep: [cost]
  epsilon_per_release: 5.0
"""


def grant(ex: Exchange, consumer: str, purpose: str, *, epsilon: float = 10.0) -> None:
    request = ex.contracts.request(
        ex.actor(consumer),
        DATASET,
        purpose=purpose,
        epsilon=epsilon,
        until=date.today() + timedelta(days=30),
        actions=("aggregate-query", "release-download"),
    )
    ex.contracts.grant(ex.actor(PROVIDER), request.ref)


def seed(node: Node, tmp_path: Path, *, rows: int = 600, policy: str = POLICY) -> Exchange:
    """The dataset published, its policy set, three consumers granted."""
    add_provider(node.db, PROVIDER, "Riverside Hospitals")
    publish(node, write_visits_csv(tmp_path / "visits.csv", rows))
    ex = Exchange(node)
    for name in (CONSUMER, MARKETER, OUTSIDER):
        ex.accounts.create(LOCAL, name, "consumer")
    ex.policies.set(ex.actor(PROVIDER), DATASET, policy, where="test")
    grant(ex, CONSUMER, "public-health-surveillance")
    grant(ex, MARKETER, "market-analysis")
    grant(ex, OUTSIDER, "official-statistics")
    return ex


@contextmanager
def served_node(home: Path) -> Iterator[Node]:
    """A fresh node to serve: Argon2id at 1 MiB (the same code path, no seconds spent
    per token) and no query processes, so a server over it starts at once."""
    node = Node.init(Settings(home=home, token_hash_memory_kib=1024, api_query_workers=0))
    try:
        yield node
    finally:
        node.close()


def released(node: Node, tmp_path: Path) -> Exchange:
    """:func:`seed`, and the anonymized release R-1 made for :data:`CONSUMER`."""
    ex = seed(node, tmp_path)
    ex.releases.create(ex.actor(PROVIDER), DATASET, CONSUMER, ReleaseSpec(k=5, l=2))
    return ex
