"""One organization has one name in the log, whichever door it acted through."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from entrepot.client.local import LocalClient
from entrepot.exchange import Exchange

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.api.conftest import World

DATASET = "riverside-hospitals/outpatient-visits"
POLICY = "epsilon:\n  per_query: 0.5\n"


def test_an_organization_is_named_alike_over_http_and_on_the_local_node(
    world: World, api: httpx.Client, tmp_path: Path, make_visits: Callable[..., Path]
) -> None:
    source = make_visits(tmp_path / "new.csv", 30, seed=21)
    # Over HTTP, as the provider's account (named "provider", not after the organization).
    published = api.post(
        "/v1/datasets",
        data={"standard": "health.visit", "title": "Visits", "dataset": "outpatient-visits"},
        files={"file": ("v.csv", source.read_bytes(), "text/csv")},
        headers=world.auth("provider"),
    )
    assert published.status_code == 201, published.text
    put = api.put(
        f"/v1/policies/{DATASET}", json={"document": POLICY}, headers=world.auth("provider")
    )
    assert put.status_code == 200, put.text
    # On the node itself: --as the organization, and a publish for it by the holder.
    exchange = Exchange(world.node)
    LocalClient(exchange, exchange.actor("riverside-hospitals")).set_policy(DATASET, POLICY)
    holder = LocalClient(exchange, exchange.actor("riverside-hospitals"))
    holder.publish(
        make_visits(tmp_path / "more.csv", 35, seed=22),
        standard="health.visit",
        title="Visits",
        provider="riverside-hospitals",
        dataset="outpatient-visits",
    )
    entries = [entry for _, entry in world.node.log.search() if entry.get("dataset") == DATASET]
    kinds = {entry["kind"] for entry in entries}
    assert {"dataset_version", "policy"} <= kinds
    assert {entry["actor"] for entry in entries if entry["kind"] != "grant"} == {
        "org:riverside-hospitals"
    }
    # An account's name is the node's business, never the public log's.
    assert all(entry["actor"] != "provider" for entry in entries)
    assert not any(
        str(entry["actor"]).startswith("account:") for _, entry in world.node.log.search()
    )
