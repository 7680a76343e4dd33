from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import update
from tests.privacy.small_node import small_node

from entrepot.errors import Conflict, NotFound
from entrepot.exchange.node import Node
from entrepot.exchange.policies import Policies
from entrepot.schemas.policies import PolicyOut
from entrepot.settings import Settings
from entrepot.standards import get
from entrepot.vault.models import Dataset
from marketplace import Market


@pytest.fixture
def policies(market: Market) -> Policies:
    """The market's dataset, given the standard it follows, so its policies parse."""
    with market.node.db.write() as session:
        session.execute(
            update(Dataset)
            .where(Dataset.id == market.dataset_id)
            .values(schema=get("health.visit").document)
        )
    return Policies(market.node)


def _spend(market: Market, epsilon: float) -> None:
    market.grant(epsilon=1.0)
    assert market.consumer.org_id is not None
    held = market.ledger.reserve(market.consumer.org_id, market.dataset_id, 1, "q", epsilon)
    market.ledger.complete(held)


def test_a_cap_below_the_spent_epsilon_leaves_policy_cap_and_log_unchanged(
    market: Market, policies: Policies
) -> None:
    _spend(market, 0.6)
    cap = market.ledger.cap(market.dataset_id)
    entries = market.node.log.size
    with pytest.raises(Conflict, match="already spent"):
        policies.set(market.provider, market.dataset, "epsilon:\n  dataset_cap: 0.5\n", where="t")
    assert not policies.get(market.dataset).explicit
    assert market.ledger.cap(market.dataset_id) == cap
    assert market.node.log.size == entries


def test_a_policy_sets_its_cap_and_is_logged_once(market: Market, policies: Policies) -> None:
    _spend(market, 0.6)
    entries = market.node.log.size
    info = policies.set(market.provider, market.dataset, "epsilon:\n  dataset_cap: 2\n", where="t")
    assert info.explicit
    assert policies.get(market.dataset).policy.dataset_epsilon_cap == 2.0
    cap = market.ledger.cap(market.dataset_id)
    assert cap is not None
    assert (cap.epsilon_cap, cap.epsilon_left) == (2.0, pytest.approx(1.4))
    assert market.node.log.size == entries + 1


def test_a_stranger_and_a_missing_dataset_get_the_same_refusal(
    market: Market, policies: Policies
) -> None:
    with pytest.raises(NotFound) as stranger:
        policies.set(market.consumer, market.dataset, "epsilon:\n  dataset_cap: 2\n", where="t")
    with pytest.raises(NotFound) as missing:
        policies.get("riverside-hospitals/nothing")
    assert stranger.value.hint == missing.value.hint
    assert stranger.value.message == f"no dataset {market.dataset} in the catalog"
    assert missing.value.message == "no dataset riverside-hospitals/nothing in the catalog"


def test_a_policy_s_body_is_the_api_model_s_dump(market: Market, policies: Policies) -> None:
    default = policies.get(market.dataset)
    document = "epsilon:\n  dataset_cap: 2\n"
    explicit = policies.set(market.provider, market.dataset, document, where="t")
    assert (default.explicit, explicit.explicit) == (False, True)
    for info in (default, explicit, policies.get(market.dataset)):
        dumped = PolicyOut.of(info).model_dump(mode="json")
        assert json.dumps(info.to_body()) == json.dumps(dumped)


def test_a_published_dataset_s_policy_body_with_its_bound_is_the_api_model_s_dump(
    tmp_path: Path,
) -> None:
    node = Node.open(Settings(home=small_node(tmp_path / "node", rows=60)))
    try:
        info = Policies(node).get("riverside-hospitals/outpatient-visits")
    finally:
        node.close()
    assert info.explicit
    assert info.bound is not None
    dumped = PolicyOut.of(info).model_dump(mode="json")
    assert json.dumps(info.to_body()) == json.dumps(dumped)
