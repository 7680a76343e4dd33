"""A private query answered through a vault served over HTTP on loopback.

The coordinator of the holder's node reaches its data only through the protocol,
here over a real uvicorn server: the ledger, the log and the receipt stay with the
holder, and the answer is the same kind of answer a local vault gives.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.api.conftest import running
from tests.exchange.logged_world import CONSUMER, DATASET, SQL, seed
from tests.exchange.remote_vault import RemoteVault, vault_app

from entrepot.errors import Forbidden, NotFound
from entrepot.exchange.accounts import Accounts, Actor
from entrepot.exchange.node import Node
from entrepot.exchange.query import Queries
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
    queries = Queries(holder, vault=remote)
    asker = consumer(holder)
    result = queries.run(asker, SQL, epsilon=0.5)
    # 198 valid rows; Laplace noise at ε 0.5 is far below 40 with overwhelming odds.
    assert result.answer.rows[0].values[0].value == pytest.approx(198, abs=40)
    assert (result.epsilon_spent, result.repeated, result.version) == (0.5, False, 1)
    [entry] = queries.ledger.entries()
    assert (entry.state, entry.rows_scanned, entry.epsilon) == ("completed", 198, 0.5)
    checked = verify_receipt(result.receipt.to_bytes(), holder.verify_key)
    assert checked.opening is not None
    [(_, logged)] = [(i, e) for i, e in holder.log.entries() if e.get("reservation") == entry.id]
    assert logged["outcome"] == "answered"
    again = queries.run(asker, SQL, epsilon=0.5)
    assert again.repeated
    assert again.answer.to_json() == result.answer.to_json()
    assert len(queries.ledger.entries()) == 1
