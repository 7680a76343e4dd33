"""The Python API: one handle on a node, opened in-process or over HTTP.

::

    import entrepot
    with entrepot.connect("http://127.0.0.1:8000", token=TOKEN) as ex:   # a consumer
        ex.catalog_search("visits district")
        result = ex.query("SELECT district, COUNT(*) AS visits FROM "
                          "riverside_hospitals.outpatient_visits GROUP BY district",
                          epsilon=0.5)
        result.to_pandas()      # district, visits, visits_lo, visits_hi

``entrepot.connect("./exchange", consumer="city-health-bureau")`` opens a node's home
instead, acting as that organization. Either way the handle offers every operation
of :class:`~entrepot.client.Client` with the values the HTTP API answers; a query
answer comes as a :class:`QueryAnswer` (pandas, Arrow, a one-line repr) and budgets
as records with attributes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from entrepot.client.http import HttpClient
from entrepot.client.protocol import Client
from entrepot.errors import InvalidInput
from entrepot.settings import Settings

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from entrepot.schemas.budgets import BudgetOut

__all__ = ["Connection", "QueryAnswer", "connect"]


@dataclass(frozen=True, repr=False)
class QueryAnswer:
    """A differentially private answer as the API sends it, with its signed receipt."""

    body: dict[str, Any]

    @property
    def dataset(self) -> str:
        return str(self.body["dataset"])

    @property
    def version(self) -> int:
        return int(self.body["version"])

    @property
    def epsilon_spent(self) -> float:
        return float(self.body["epsilon_spent"])

    @property
    def epsilon_left(self) -> float | None:
        left = self.body["epsilon_left"]
        return None if left is None else float(left)

    @property
    def repeated(self) -> bool:
        return bool(self.body["repeated"])

    @property
    def answer(self) -> dict[str, Any]:
        found: dict[str, Any] = self.body["answer"]
        return found

    @property
    def receipt(self) -> dict[str, Any]:
        """The signed receipt: save it as JSON and check it with `entrepot receipt verify`."""
        found: dict[str, Any] = self.body["receipt"]
        return found

    @property
    def log_index(self) -> int:
        """The answer's entry in the node's public transparency log."""
        return int(self.receipt["log"]["index"])

    def to_arrow(self) -> pa.Table:
        """One column per key, and per aggregate ``name``, ``name_lo`` and ``name_hi``."""
        import pyarrow as pa

        answer = self.answer
        rows = answer["rows"]
        # A row merging small groups is keyed "other": its column stays text.
        merged = any(row["other"] for row in rows)
        data: dict[str, list[Any]] = {}
        for name in answer["columns"]:
            if name in answer["keys"]:
                index = answer["keys"].index(name)
                dated = answer["key_types"].get(name) == "date" and not merged
                data[name] = [
                    _day(row["key"][index]) if dated else row["key"][index] for row in rows
                ]
            else:
                index = answer["aggregates"].index(name)
                data[name] = [row["values"][index][0] for row in rows]
                data[f"{name}_lo"] = [row["values"][index][1] for row in rows]
                data[f"{name}_hi"] = [row["values"][index][2] for row in rows]
        if not rows:
            return pa.table({name: pa.array([], pa.float64()) for name in data})
        return pa.table(data)

    def to_pandas(self) -> pd.DataFrame:
        return self.to_arrow().to_pandas()

    def to_dict(self) -> dict[str, Any]:
        return self.body

    def __repr__(self) -> str:
        answer = self.answer
        spent = "0 (repeated)" if self.repeated else f"{self.epsilon_spent:g}"
        left = "" if self.epsilon_left is None else f", ε left {self.epsilon_left:g}"
        return (
            f"<QueryAnswer {self.dataset} v{self.version}: {len(answer['rows'])} rows × "
            f"{', '.join(answer['columns'])}; ε spent {spent}{left}; log entry {self.log_index}>"
        )


def _day(value: Any) -> Any:
    """A date key as the engine gave it (the wire spells it in ISO 8601)."""
    if not isinstance(value, str):
        return value
    return datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)


class Connection:
    """A handle on a node: every operation of ``client``, and answers as data frames.

    Operations not named here are ``client``'s own (``catalog_search``,
    ``request_access``, ``usage``, ``audit_head``...), with the API's JSON values.
    """

    def __init__(self, client: Client) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.client, name)

    def __repr__(self) -> str:
        return f"<entrepot.Connection {self.client!r}>"

    def query(
        self, sql: str, *, epsilon: float | None = None, purpose: str | None = None
    ) -> QueryAnswer:
        """A differentially private answer to ``sql``, with its receipt."""
        return QueryAnswer(self.client.query(sql, epsilon=epsilon, purpose=purpose))

    def query_arrow(self, sql: str, *, epsilon: float | None = None) -> pa.Table:
        """Only the answer, as Arrow."""
        return self.query(sql, epsilon=epsilon).to_arrow()

    def budgets(self, *, closed: bool = False) -> list[BudgetOut]:
        """ε granted, spent and left per budget, as ``entrepot budget`` shows them."""
        from pydantic import TypeAdapter

        from entrepot.schemas.budgets import BudgetOut

        records = TypeAdapter(list[BudgetOut])
        return records.validate_python(self.client.budgets(closed=closed))

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(
    target: str | Path | None = None,
    *,
    consumer: str | None = None,
    token: str | None = None,
    settings: Settings | None = None,
) -> Connection:
    """A server at ``http(s)://...`` as ``token``'s account (default: ``ENTREPOT_TOKEN``),
    or the node at home ``target`` acting as ``consumer`` (default: ``ENTREPOT_AS``)."""
    base = settings or Settings()
    if isinstance(target, str) and target.startswith(("http://", "https://")):
        secret = token or os.environ.get("ENTREPOT_TOKEN")
        if not secret:
            raise InvalidInput(
                f"connect({target!r}) needs an API token",
                hint="pass token=..., or set ENTREPOT_TOKEN",
            )
        return Connection(
            HttpClient(
                target,
                secret,
                timeout_s=base.http_timeout_s,
                plain_http=base.allow_plain_http,
            )
        )
    if token is not None:
        raise InvalidInput(
            "a token is for a server URL, not a node's home",
            hint='connect("http://HOST:PORT", token=...), or connect(home, consumer=...)',
        )
    return Connection(_open_home(base, target, consumer))


def _open_home(base: Settings, home: str | Path | None, consumer: str | None) -> Client:
    from entrepot.client.local import LocalClient
    from entrepot.exchange.facade import Exchange
    from entrepot.exchange.node import Node

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
    return LocalClient(exchange, actor)
