"""A local vault answers an operation where the data is, and says when it first reads it."""

from __future__ import annotations

import pytest
from tests.vault.visits import WriteVisits

from entrepot.errors import NotFound
from entrepot.exchange.node import Node
from entrepot.privacy import Plan, parse_policy, plan
from entrepot.standards import Standard
from entrepot.vault import Aggregate, DatasetRef, LocalVault, PublishRequest, Vault, add_provider

REF = DatasetRef("riverside-hospitals", "outpatient-visits")
SQL = "SELECT COUNT(*) AS n FROM riverside_hospitals.outpatient_visits"


@pytest.fixture
def vault(node: Node, write_visits: WriteVisits, visit_standard: Standard) -> LocalVault:
    add_provider(node.db, REF.provider, "Riverside Hospitals")
    vault = LocalVault.of(node)
    request = PublishRequest(
        provider=REF.provider, standard=visit_standard, title="Outpatient visits"
    )
    with write_visits(250).open("rb") as data:
        vault.publish(request, data)
    return vault


def checked(vault: LocalVault) -> Plan:
    standard = vault.standard(REF)
    policy = parse_policy({"epsilon": {"per_query": 1e9}, "threshold": 0}, standard)
    return plan(SQL, standard=standard, policy=policy, epsilon=1e8)


def test_a_local_vault_is_a_vault(vault: LocalVault) -> None:
    assert isinstance(vault, Vault)


def test_an_aggregate_is_answered_with_noise_after_touching(vault: LocalVault) -> None:
    calls: list[str] = []
    done = vault.run(Aggregate(REF, 1, checked(vault)), touched=lambda: calls.append("touched"))
    assert calls == ["touched"]
    assert done.rows == 250
    # ε of 10^8 leaves noise far below one unit.
    assert done.answer.rows[0].values[0].value == pytest.approx(250, abs=1e-3)


def test_an_unknown_version_is_refused_before_touching(vault: LocalVault) -> None:
    calls: list[str] = []
    with pytest.raises(NotFound, match="no version 9"):
        vault.run(Aggregate(REF, 9, checked(vault)), touched=lambda: calls.append("touched"))
    assert calls == []
