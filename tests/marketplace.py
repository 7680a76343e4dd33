"""A small exchange for tests: one provider, one dataset, one consumer, a hand-moved clock."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from entrepot.exchange.accounts import LOCAL, Accounts, Actor
from entrepot.exchange.contracts import Contracts, GrantInfo
from entrepot.exchange.metering import Metering
from entrepot.exchange.node import Node
from entrepot.privacy.ledger import Ledger
from entrepot.vault.models import Dataset, Provider
from entrepot.vault.providers import add_provider

__all__ = ["Clock", "Market", "add_dataset", "race_processes", "race_threads"]


class Clock:
    """A clock the test moves by hand, so no test depends on today's date."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Market:
    """A node with a provider, one dataset and one consumer, and the exchange's services."""

    node: Node
    clock: Clock
    accounts: Accounts
    contracts: Contracts
    ledger: Ledger
    metering: Metering
    provider: Actor
    consumer: Actor
    dataset: str
    dataset_id: int

    @classmethod
    def on(cls, node: Node, clock: Clock) -> Market:
        """Seed ``node`` with riverside-hospitals/outpatient-visits and city-health-bureau."""
        add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
        dataset_id = add_dataset(node, "riverside-hospitals", "outpatient-visits")
        accounts = Accounts(node.db, node.settings, clock=clock, log=node.log)
        accounts.create(LOCAL, "city-health-bureau", "consumer")
        return cls(
            node=node,
            clock=clock,
            accounts=accounts,
            contracts=Contracts(node.db, node.settings, clock=clock, log=node.log),
            ledger=Ledger(node.db, clock=clock),
            metering=Metering(node.db, node.settings),
            provider=accounts.actor("riverside-hospitals"),
            consumer=accounts.actor("city-health-bureau"),
            dataset="riverside-hospitals/outpatient-visits",
            dataset_id=dataset_id,
        )

    def consumer_org(self, slug: str) -> Actor:
        """A new consumer organization with one account."""
        self.accounts.create(LOCAL, slug, "consumer")
        return self.accounts.actor(slug)

    def grant(
        self,
        consumer: Actor | None = None,
        *,
        epsilon: float = 1.0,
        until: date = date(2026, 12, 31),
        purpose: str = "public-health-surveillance",
        **terms: Any,
    ) -> GrantInfo:
        """Request and grant access in one go."""
        request = self.contracts.request(
            consumer or self.consumer,
            self.dataset,
            purpose=purpose,
            epsilon=epsilon,
            until=until,
            actions=terms.pop("actions", ("aggregate-query",)),
        )
        return self.contracts.grant(self.provider, request.ref, epsilon=epsilon, **terms)


def add_dataset(node: Node, provider: str, dataset: str) -> int:
    """A dataset row with no version: contracts and budgets need nothing more."""
    with node.db.write() as session:
        owner = session.scalar(select(Provider).where(Provider.slug == provider))
        assert owner is not None
        row = Dataset(
            provider_id=owner.id,
            slug=dataset,
            title=dataset.replace("-", " ").capitalize(),
            description="",
            standard="health.visit",
            schema={},
        )
        session.add(row)
        session.flush()
        return row.id


def race_threads(action: Callable[[], object], refused: type[Exception], count: int) -> list[str]:
    """Run ``action`` in ``count`` threads released together; each one's outcome, sorted:
    ``done``, or ``refused`` where it raised ``refused``."""
    outcomes: list[str] = []
    start = threading.Barrier(count)

    def run() -> None:
        start.wait()
        try:
            action()
            outcomes.append("done")
        except refused:
            outcomes.append("refused")

    workers = [threading.Thread(target=run) for _ in range(count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sorted(outcomes)


def race_processes(script: str, args: list[str], count: int = 4) -> list[str]:
    """Run ``script`` in ``count`` processes released together once all are ready; their
    outputs. Each prints ``ready``, waits for a line on stdin, then does its work."""
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", script, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    for worker in workers:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready"
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    outputs = []
    for worker in workers:
        out, _ = worker.communicate(timeout=300)
        assert worker.returncode == 0
        outputs.append(out.strip())
    return outputs
