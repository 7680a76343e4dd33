"""A budget's wire shape, pinned byte for byte: ``entrepot budget --json`` and ``/v1/budgets``.

Both doors show the exchange's budget record unchanged, so the field list, its order
and the spelling of every value are fixed here once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

import httpx
from fastapi import FastAPI
from typer.testing import CliRunner

from entrepot.api import create_app
from entrepot.cli.app import app
from entrepot.exchange.accounts import LOCAL
from entrepot.exchange.node import Node
from marketplace import Clock, Market

Serve = Callable[[FastAPI], AbstractContextManager[httpx.Client]]

PRINTED = """\
[
  {
    "dataset": "riverside-hospitals/outpatient-visits",
    "consumer": "city-health-bureau",
    "grant": "GRANT-1",
    "state": "open",
    "epsilon_granted": 2.0,
    "epsilon_spent": 0.5,
    "epsilon_left": 1.5,
    "delta_spent": 1e-10,
    "max_queries": 10,
    "queries_used": 2,
    "valid_from": "2026-11-15",
    "valid_until": "2026-12-31",
    "cap": {
      "dataset": "riverside-hospitals/outpatient-visits",
      "epsilon_cap": 3.0,
      "epsilon_spent": 0.5,
      "epsilon_left": 2.5,
      "delta_cap": 1e-09,
      "delta_spent": 1e-10,
      "delta_left": 9e-10
    }
  }
]
"""


def _spent(node: Node) -> Market:
    """0.5 ε and 1e-10 δ spent in two uses of a 2 ε grant, under a dataset cap of 3 ε
    and 1e-9 δ."""
    market = Market.on(node, Clock(datetime(2026, 11, 15, 10, 0)))
    market.grant(epsilon=2.0, max_queries=10)
    assert market.consumer.org_id is not None
    market.ledger.set_cap(market.dataset_id, 3.0, delta=1e-9, actor="org:riverside-hospitals")
    for delta in (1e-10, 0.0):
        held = market.ledger.reserve(market.consumer.org_id, market.dataset_id, 1, "q", 0.25, delta)
        market.ledger.complete(held)
    return market


def test_the_cli_prints_a_budget_in_its_pinned_shape(node: Node) -> None:
    _spent(node)
    printed = CliRunner().invoke(
        app, ["budget", "--as", "city-health-bureau", "--json", "--home", str(node.home)]
    )
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == PRINTED


def test_the_api_answers_the_same_budget_fields_in_the_same_order(node: Node, serve: Serve) -> None:
    token = _spent(node).accounts.issue_token(LOCAL, "city-health-bureau").secret
    with serve(create_app(node)) as api:
        answer = api.get("/v1/budgets", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert json.dumps(items, indent=2, ensure_ascii=False) + "\n" == PRINTED
