"""A peer's catalog pulled page by page: the same copy whatever the page, and a pull
that stops halfway goes on from where it stopped."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.api.conftest import running
from tests.exchange.logged_world import DATASET, seed
from tests.federation.nodes import federation_node

from entrepot.api import create_app
from entrepot.errors import InvalidInput, PeerError
from entrepot.exchange import Exchange
from entrepot.exchange.node import Node
from entrepot.federation.feed import catalog_feed, sync
from entrepot.federation.search import remote_datasets
from entrepot.settings import Settings

COPIES = 7


def copies(home: Path, count: int) -> None:
    """``count`` more catalog entries on the node, copies of its one dataset's rows with
    the same modification time, so only their ids order them."""
    db = sqlite3.connect(home / "node.db")
    with db:
        columns = [c[1] for c in db.execute("PRAGMA table_info(datasets)") if c[1] != "id"]
        (first,) = db.execute("SELECT id FROM datasets").fetchone()
        picked = ", ".join(columns).replace("slug", "slug || '-' || :n")
        for n in range(count):
            db.execute(
                f"INSERT INTO datasets ({', '.join(columns)}) SELECT {picked} FROM datasets "
                "WHERE id = :id",
                {"n": n, "id": first},
            )
    db.close()


def withdraw(home: Path, dataset: str) -> None:
    """Take ``provider/dataset`` out of the node's catalog."""
    provider, _, slug = dataset.partition("/")
    db = sqlite3.connect(home / "node.db")
    with db:
        db.execute(
            "DELETE FROM datasets WHERE slug = :slug AND provider_id = "
            "(SELECT id FROM providers WHERE slug = :provider)",
            {"slug": slug, "provider": provider},
        )
    db.close()


def key(node: Node) -> str:
    return bytes(node.verify_key).hex()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Node, str]]:
    tmp_path = tmp_path_factory.mktemp("feed")
    provider = federation_node(tmp_path, "riverside")
    seed(provider, tmp_path, query=False)
    copies(tmp_path / "riverside", COPIES)
    consumer = federation_node(tmp_path, "capital")
    with running(create_app(provider)) as served, running(create_app(consumer)) as own:
        Exchange(provider).peers.add(str(own.base_url), key(consumer))
        Exchange(consumer).peers.add(str(served.base_url), key(provider))
        yield provider, consumer, str(served.base_url)
    consumer.close()
    provider.close()


def offered(node: Node) -> set[str]:
    return {str(s.ref) for s in Exchange(node).catalog().datasets()}


def copied(node: Node) -> set[str]:
    return {d["dataset"] for d in remote_datasets(Exchange(node), None, 10_000)}


def fresh(consumer: Node, provider: Node, url: str) -> Exchange:
    """The consumer's node with no copy of the provider's catalog and no cursor."""
    mine = Exchange(consumer)
    mine.peers.remove("riverside")
    mine.peers.add(url, key(provider))
    return mine


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(page=st.integers(1, COPIES + 3))
def test_any_page_size_copies_the_same_catalog(pair: tuple[Node, Node, str], page: int) -> None:
    provider, consumer, url = pair
    mine = fresh(consumer, provider, url)
    pulled = sync(mine, "riverside", page=page)
    assert pulled["updated"] == len(offered(provider))
    assert copied(consumer) == offered(provider)
    assert sync(mine, "riverside", page=page)["updated"] == 0


def test_a_page_is_signed_and_carries_its_cursor_and_the_present_last(
    pair: tuple[Node, Node, str],
) -> None:
    provider, _, _ = pair
    exchange = Exchange(provider)
    first = catalog_feed(exchange, None, 3)
    assert first["entrepot:more"] is True
    assert "entrepot:present" not in first
    assert first["dcat:dataset"][0]["entrepot:sqlName"] == "riverside_hospitals.outpatient_visits"
    seen = [d["dct:identifier"] for d in first["dcat:dataset"]]
    cursor = first["entrepot:cursor"]
    while True:
        page = catalog_feed(exchange, cursor, 3)
        seen += [d["dct:identifier"] for d in page["dcat:dataset"]]
        cursor = page["entrepot:cursor"]
        if not page["entrepot:more"]:
            break
    assert sorted(seen) == page["entrepot:present"] == sorted(offered(provider))
    with pytest.raises(InvalidInput, match="not a cursor"):
        catalog_feed(exchange, "yesterday", 3)
    with pytest.raises(InvalidInput, match="1 to 1000"):
        catalog_feed(exchange, None, 0)


def test_a_pull_that_fails_halfway_keeps_what_it_read_and_goes_on(
    pair: tuple[Node, Node, str],
) -> None:
    provider, consumer, url = pair
    fresh(consumer, provider, url)
    # The fifth dataset's page is larger than the consumer reads from a peer.
    db = sqlite3.connect(provider.settings.home / "node.db")
    with db:
        (fifth,) = db.execute("SELECT id FROM datasets ORDER BY id LIMIT 1 OFFSET 4").fetchone()
        db.execute(
            "UPDATE datasets SET description = :d WHERE id = :id", {"d": "x" * 40_000, "id": fifth}
        )
    db.close()
    strict = Node.open(
        Settings(home=consumer.settings.home, node_name="capital", peer_response_max_bytes=30_000)
    )
    try:
        with pytest.raises(PeerError, match="more than 30000 bytes"):
            sync(Exchange(strict), "riverside", page=2)
        kept = copied(strict)
        assert len(kept) == 4
        assert kept < offered(provider)
        assert "error" in Exchange(strict).peers.list()[0]["status"]
    finally:
        strict.close()
    # With a larger limit the pull goes on from its cursor: only the rest is read.
    pulled = sync(Exchange(consumer), "riverside", page=2)
    assert pulled["updated"] == len(offered(provider)) - 4
    assert copied(consumer) == offered(provider)


def test_a_withdrawn_dataset_leaves_every_copy_at_the_next_pull(
    pair: tuple[Node, Node, str],
) -> None:
    provider, consumer, url = pair
    mine = fresh(consumer, provider, url)
    sync(mine, "riverside", page=3)
    assert f"{DATASET}-2" in copied(consumer)
    withdraw(provider.settings.home, f"{DATASET}-2")
    pulled = sync(mine, "riverside", page=3)
    assert (pulled["updated"], pulled["removed"]) == (0, 1)
    assert copied(consumer) == offered(provider)
    assert f"{DATASET}-2" not in copied(consumer)
