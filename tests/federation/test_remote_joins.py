"""Private joins across nodes, on loopback: each holder's node checks, spends and signs
for its own dataset, and the matching runs on a holder's node, never the consumer's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.federation.join_nodes import JOIN, nodes

from entrepot.transparency import verify_receipt


def test_a_consumer_of_a_third_node_joins_two_nodes_datasets(tmp_path: Path) -> None:
    with nodes(tmp_path) as world:
        answered = world.consumer().query(JOIN, epsilon=0.5)
        assert answered["node"] == "a"
        assert answered["epsilon_spent"] == pytest.approx(1.0)
        receipts = {r["node"]: r["receipt"] for r in answered["receipts"]}
        assert set(receipts) == {"a", "b"}
        verify_receipt(json.dumps(receipts["a"]).encode(), world.a.node.verify_key)
        verify_receipt(json.dumps(receipts["b"]).encode(), world.b.node.verify_key)
        assert (world.spent("a"), world.spent("b"), world.spent("c")) == (0.5, 0.5, 0)
