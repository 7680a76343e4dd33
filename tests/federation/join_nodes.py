"""Three nodes on loopback for joins across nodes: visits on a, payments on b, a consumer on c.

Each holder's policy allows joining with the other's dataset, named with its node;
the consumer ``city-desk`` of node c asks each holder's node for access (with the
action ``private-join``) and each holder's provider grants it there.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from tests.api.conftest import running
from tests.exchange.join_world import PAYMENTS, VISITS, Payment, Visit
from tests.federation.nodes import federation_node
from tests.federation.proxy import FaultProxy, fault_proxy

from entrepot.api import create_app
from entrepot.client.local import LocalClient
from entrepot.exchange import Exchange
from entrepot.exchange.accounts import LOCAL
from entrepot.exchange.node import Node
from entrepot.standards import get
from entrepot.vault import LocalVault, PublishRequest, add_provider

__all__ = [
    "CONSUMER",
    "JOIN",
    "PAYMENT_ROWS",
    "POLICY",
    "VISIT_ROWS",
    "Nodes",
    "nodes",
    "payment_rows",
    "publish",
]

CONSUMER = "city-desk"
JOIN = (
    "SELECT t.district, COUNT(DISTINCT v.patient_id) AS people, COUNT(*) AS pairs "
    "FROM a.riverside_hospitals.outpatient_visits v "
    "JOIN b.acme_pay.transactions t ON v.patient_id = t.person_id "
    "WHERE v.diagnosis_group = 'I' GROUP BY t.district"
)
POLICY = """
contributions: {{rows_per_unit: 1000, groups: 20}}
epsilon: {{per_query: 1.0, dataset_cap: {cap}}}
latency_floor_ms: {floor}
join_with: [{other}]
"""
VISIT_ROWS: list[Visit] = [
    ("AB-0001", "910101", "I"),
    ("AB0002", "910101", "I"),
    ("AB0003", "910102", "I"),
]
PAYMENT_ROWS: list[Payment] = [
    ("AB0001", "910101", 10.0),
    ("AB0002", "910102", 5.0),
    ("AB0007", "910102", 7.0),
]


@dataclass
class Nodes:
    """The three nodes' services, by name."""

    a: Exchange
    b: Exchange
    c: Exchange
    # Between c and a, when asked for: a proxy that loses or alters messages on request.
    proxy: FaultProxy | None = None

    def consumer(self, name: str = "c") -> LocalClient:
        exchange = getattr(self, name)
        return LocalClient(exchange, exchange.actor(CONSUMER))

    def spent(self, name: str) -> float:
        """The ε node ``name``'s ledger has spent (released reservations spent nothing)."""
        entries = getattr(self, name).ledger.entries()
        return sum(e.epsilon for e in entries if e.state in ("touched", "completed"))


def publish(node: Node, provider: str, standard: str, title: str, rows: list[list[str]]) -> None:
    add_provider(node.db, provider, provider.replace("-", " ").title())
    raw = node.home / f"{provider}.csv"
    with raw.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(get(standard).field_names)
        writer.writerows(rows)
    with raw.open("rb") as data:
        LocalVault.of(node).publish(
            PublishRequest(provider=provider, standard=get(standard), title=title), data
        )


def _visits(visits: Sequence[Visit]) -> list[list[str]]:
    return [
        [f"V{i:06d}", patient, "2025-03-04", district, "1", "35-44", diagnosis, "120.00", "1.0"]
        for i, (patient, district, diagnosis) in enumerate(visits)
    ]


def payment_rows(payments: Sequence[Payment]) -> list[list[str]]:
    return [
        [f"T{i:06d}", person, "G", district, "card", f"{amount:.2f}", "2025-03-05T10:00:00"]
        for i, (person, district, amount) in enumerate(payments)
    ]


def _ask(
    holder: Exchange, consumer: LocalClient, node: str | None, dataset: str, *, grant: bool
) -> None:
    asked = consumer.request_access(
        dataset if node is None else f"{node}:{dataset}",
        purpose="public-health-surveillance",
        epsilon=5.0,
        until=date.today() + timedelta(days=30),
        actions=("aggregate-query", "private-join"),
    )
    if grant:
        provider = dataset.split("/")[0]
        LocalClient(holder, holder.actor(provider)).grant_access(asked["id"])


@contextmanager
def nodes(
    tmp_path: Path,
    *,
    visits: Sequence[Visit] = VISIT_ROWS,
    payments: Sequence[Payment] = PAYMENT_ROWS,
    caps: tuple[float, float] = (1000.0, 1000.0),
    consumers: str = "c",
    grants: str = "ab",
    floor_ms: int = 0,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    proxied: bool = False,
) -> Iterator[Nodes]:
    """Nodes a, b and c, peered with each other, served on loopback; ``consumers``
    names the nodes where ``city-desk`` is a consumer asking for both datasets, which
    the holders named in ``grants`` grant. Both holders' policies pad answers to
    ``floor_ms``; ``settings`` overrides a node's settings, by its name; ``proxied``
    has c call a through a :class:`FaultProxy` (``Nodes.proxy``)."""
    made = {
        name: federation_node(tmp_path, name, **(settings or {}).get(name, {})) for name in "abc"
    }
    publish(made["a"], "riverside-hospitals", "health.visit", "Outpatient visits", _visits(visits))
    publish(made["b"], "acme-pay", "payments.transaction", "Transactions", payment_rows(payments))
    exchanges = {name: Exchange(node) for name, node in made.items()}
    for holder, dataset, other, cap in (
        ("a", VISITS, f"b:{PAYMENTS}", caps[0]),
        ("b", PAYMENTS, f"a:{VISITS}", caps[1]),
    ):
        ex = exchanges[holder]
        owner = ex.actor(dataset.split("/")[0])
        ex.policies.set(
            owner, dataset, POLICY.format(other=other, cap=cap, floor=floor_ms), where="test"
        )
    for name in consumers:
        exchanges[name].accounts.create(LOCAL, CONSUMER, "consumer")
    try:
        with ExitStack() as stack:
            urls = {
                name: str(stack.enter_context(running(create_app(node))).base_url)
                for name, node in made.items()
            }
            proxy = None
            if proxied:
                proxy = stack.enter_context(fault_proxy(int(urls["a"].rsplit(":", 1)[1])))
            for me in "abc":
                for them in "abc":
                    if me != them:
                        key = bytes(made[them].verify_key).hex()
                        url = proxy.url if proxy and (me, them) == ("c", "a") else urls[them]
                        exchanges[me].peers.add(url, key)
            world = Nodes(exchanges["a"], exchanges["b"], exchanges["c"], proxy)
            for name in consumers:
                client = world.consumer(name)
                for holder, dataset in (("a", VISITS), ("b", PAYMENTS)):
                    where = None if holder == name else holder
                    _ask(exchanges[holder], client, where, dataset, grant=holder in grants)
            yield world
    finally:
        for node in made.values():
            node.close()
