"""The Python API: open a node as a consumer and ask private questions.

::

    import entrepot
    with entrepot.connect("./exchange", consumer="city-health-bureau") as ex:
        result = ex.query("SELECT district, COUNT(*) AS visits FROM "
                          "riverside_hospitals.outpatient_visits GROUP BY district",
                          epsilon=0.5)
        result.to_pandas()      # district, visits, visits_lo, visits_hi
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa

from entrepot.errors import InvalidInput
from entrepot.exchange.accounts import Actor
from entrepot.exchange.facade import Exchange
from entrepot.exchange.node import Node
from entrepot.exchange.query import QueryResult
from entrepot.privacy.ledger import BudgetRecord
from entrepot.settings import Settings

__all__ = ["Connection", "connect"]


class Connection:
    """A consumer's handle on a local node."""

    def __init__(self, exchange: Exchange, consumer: Actor) -> None:
        self.exchange = exchange
        self.consumer = consumer

    def query(
        self, sql: str, *, epsilon: float | None = None, purpose: str | None = None
    ) -> QueryResult:
        """A differentially private answer to ``sql``, with its receipt."""
        return self.exchange.queries.run(self.consumer, sql, epsilon=epsilon, purpose=purpose)

    def query_arrow(self, sql: str, *, epsilon: float | None = None) -> pa.Table:
        """Only the answer, as Arrow: one column per key, and per aggregate its value,
        ``_lo`` and ``_hi``."""
        return self.query(sql, epsilon=epsilon).answer.to_arrow()

    def budgets(self) -> list[BudgetRecord[str]]:
        """ε granted, spent and left on each dataset this consumer holds a grant on,
        as ``entrepot budget`` shows them."""
        return self.exchange.budgets.visible(self.consumer)

    def close(self) -> None:
        self.exchange.node.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(
    home: str | Path | None = None,
    *,
    consumer: str | None = None,
    settings: Settings | None = None,
) -> Connection:
    """Open the node at ``home`` acting as ``consumer`` (default: ``ENTREPOT_AS``)."""
    base = settings or Settings()
    if home is not None:
        base = base.model_copy(update={"home": Path(home)})
    name = consumer or os.environ.get("ENTREPOT_AS")
    if not name:
        raise InvalidInput(
            "connect() needs the consumer organization to act as",
            hint='pass consumer="city-health-bureau", or set ENTREPOT_AS',
        )
    exchange = Exchange(Node.open(base))
    try:
        actor = exchange.actor(name)
    except BaseException:
        exchange.node.close()
        raise
    return Connection(exchange, actor)
