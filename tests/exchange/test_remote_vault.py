"""A private query answered through a vault served over HTTP on loopback.

The coordinator of the holder's node reaches its data only through the protocol,
here over a real uvicorn server: the ledger, the log and the receipt stay with the
holder, and the answer is the same kind of answer a local vault gives.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.api.conftest import running
from tests.exchange.logged_world import CONSUMER, DATASET, SQL, seed
from tests.exchange.remote_vault import RemoteVault, vault_app

from entrepot.errors import Forbidden, NotFound, QueryFailed
from entrepot.exchange import Exchange
from entrepot.exchange.accounts import Accounts, Actor
from entrepot.exchange.node import Node
from entrepot.settings import Settings
from entrepot.transparency import verify_receipt
from entrepot.vault import Vault


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[Node]:
    node = Node.init(Settings(home=tmp_path / "holder", token_hash_memory_kib=1024))
    seed(node, tmp_path, query=False)
    yield node
    node.close()


@pytest.fixture
def remote(holder: Node) -> Iterator[RemoteVault]:
    with running(vault_app(holder)) as client:
        yield RemoteVault(client)


def consumer(node: Node) -> Actor:
    return Accounts(node.db, node.settings, log=node.log).actor(CONSUMER)


def test_a_remote_vault_is_a_vault_that_describes_its_datasets(
    holder: Node, remote: RemoteVault
) -> None:
    assert isinstance(remote, Vault)
    [version] = remote.versions(DATASET)
    assert version.rows == 198
    assert remote.standard(DATASET).privacy_unit == "patient_id"
    with pytest.raises(NotFound, match="no dataset"):
        remote.versions("riverside-hospitals/nothing-here")
    with pytest.raises(Forbidden):
        remote.publish(None, None)  # type: ignore[arg-type]


def test_a_private_query_is_answered_through_the_protocol_over_http(
    holder: Node, remote: RemoteVault
) -> None:
    queries = Exchange(holder, vault=remote).queries
    asker = consumer(holder)
    result = queries.run(asker, SQL, epsilon=0.5)
    # 198 valid rows; the noise is within 20 of its own scales but once in e^20.
    scale = result.answer.scales[result.answer.aggregates[0]]
    assert result.answer.rows[0].values[0].value == pytest.approx(198, abs=20 * scale)
    assert (result.epsilon_spent, result.repeated, result.version) == (0.5, False, 1)
    [entry] = queries.coordinator.ledger.entries()
    assert (entry.state, entry.rows_scanned, entry.epsilon) == ("completed", 198, 0.5)
    checked = verify_receipt(result.receipt.to_bytes(), holder.verify_key)
    assert checked.opening is not None
    [(_, logged)] = [(i, e) for i, e in holder.log.entries() if e.get("reservation") == entry.id]
    assert logged["outcome"] == "answered"
    again = queries.run(asker, SQL, epsilon=0.5)
    assert again.repeated
    assert again.answer.to_json() == result.answer.to_json()
    assert len(queries.coordinator.ledger.entries()) == 1


def test_a_remote_failure_after_the_data_may_be_read_is_spent_logged_and_one_error(
    holder: Node, remote: RemoteVault
) -> None:
    """Once the operation is sent, the holder may have read the data: whatever happens
    next (here the holder never answers) costs the ε and answers one QueryFailed."""

    def timed_out(request: httpx.Request) -> None:
        if request.url.path == "/vault/run":
            raise httpx.ReadTimeout("the holder did not answer", request=request)

    remote.client.event_hooks["request"] = [timed_out]
    queries = Exchange(holder, vault=remote).queries
    with pytest.raises(QueryFailed) as failed:
        queries.run(consumer(holder), SQL, epsilon=0.5)
    assert "holder" not in failed.value.message + failed.value.hint
    [entry] = queries.coordinator.ledger.entries()
    assert (entry.state, entry.epsilon) == ("completed", 0.5)
    _, logged = holder.log.search(kind="query")[-1]
    assert (logged["outcome"], logged["reservation"], logged["epsilon"]) == (
        "failed",
        entry.id,
        "0.5",
    )
    # Nothing was stored as an answer: asking again is a new, paid query.
    remote.client.event_hooks["request"] = []
    again = queries.run(consumer(holder), SQL, epsilon=0.5)
    assert (again.repeated, again.epsilon_spent) == (False, 0.5)
