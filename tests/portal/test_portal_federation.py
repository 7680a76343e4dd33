"""The federation in the portal: the operator's page with the node's identity and its
peers' health, other nodes' datasets in the catalog marked by their node (the facets
keep them by the catalog's one rule), and what a consumer may not see."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from tests.e2e.test_server import ENTREPOT, free_port, stop, wait_healthy
from tests.exchange.test_catalog import publish
from tests.portal.conftest import CONSUMER

from entrepot.client.local import LocalClient
from entrepot.exchange import Exchange, Node
from entrepot.settings import Settings
from entrepot.vault import add_provider

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PEER = "harbour"
REMOTE = "harbour-clinics/ferry-visits"


def _key(home: Path) -> str:
    node = Node.open(Settings(home=home))
    try:
        return bytes(node.verify_key).hex()
    finally:
        node.close()


@pytest.fixture(scope="module")
def peer(served: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second node, served as its own process, holding one dataset of region 920000,
    and the demo's node and it trusting each other by key; the demo node's name."""
    folder = tmp_path_factory.mktemp("peer")
    home = folder / "harbour"
    node = Node.init(Settings(home=home, node_name=PEER, token_hash_memory_kib=1024))
    try:
        add_provider(node.db, "harbour-clinics", "Harbour Clinics")
        publish(node, folder, "harbour-clinics", "Ferry visits", regions=("920000",), sector="Q")
    finally:
        node.close()
    port = free_port()
    env = {**os.environ, "ENTREPOT_NODE_NAME": PEER}
    with (folder / "serve.log").open("w") as out:
        process = subprocess.Popen(
            [*ENTREPOT, "serve", "--home", str(home), "--port", str(port), "--query-workers", "1"],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        demo_key = _key(served.home)
        theirs = Node.open(Settings(home=home, node_name=PEER))
        try:
            Exchange(theirs).peers.add(served.url, demo_key)
        finally:
            theirs.close()
        mine = Node.open(Settings(home=served.home))
        try:
            exchange = Exchange(mine)
            exchange.peers.add(url, _key(home))
            # The demo's consumer asks the peer for access: the grant lives there.
            LocalClient(exchange, exchange.actor(CONSUMER)).request_access(
                f"{PEER}:{REMOTE}",
                purpose="public-health-surveillance",
                epsilon=1.0,
                until=date.today() + timedelta(days=30),
            )
        finally:
            mine.close()
        yield f"node-{demo_key[:8]}"
    finally:
        stop(process)


def test_an_operator_sees_the_nodes_identity_and_its_peers_health(person: Any, peer: str) -> None:
    operator = person("node-operator")
    operator.go("/")
    operator.page.get_by_role("link", name="Federation").click()
    page = operator.page
    expect(page.get_by_role("heading", name="Federation", level=1)).to_be_visible()
    expect(page.locator("main")).to_contain_text(peer)
    expect(page.locator("tr.peer")).to_have_count(1)
    row = page.locator("tr.peer")
    expect(row).to_contain_text(PEER)
    # A search over other nodes pulls the peer's feed: its last sync and health follow.
    operator.go("/?q=visits&nodes=all")
    operator.go("/federation")
    expect(page.locator("tr.peer")).to_contain_text("ok")
    expect(page.locator("tr.peer")).not_to_contain_text("never")
    operator.shot("federation-operator")


def test_a_consumer_finds_other_nodes_datasets_marked_by_node_and_kept_by_facets(
    person: Any, peer: str
) -> None:
    consumer = person(CONSUMER)
    consumer.go("/?q=visits")
    page = consumer.page
    expect(page.locator(".card", has_text="Ferry visits")).to_have_count(0)
    page.get_by_label("Other nodes' datasets too").check()
    page.get_by_role("button", name="Search").click()
    page.wait_for_load_state()
    remote = page.locator(".card", has_text="Ferry visits")
    expect(remote).to_have_count(1)
    expect(remote).to_contain_text(f"on node {PEER}")
    expect(remote).to_contain_text(f"{PEER}:{REMOTE}")
    expect(remote.get_by_role("link")).to_have_count(0)  # its page lives on its node
    expect(page.locator(".card", has_text=f"on this node, {peer}").first).to_be_visible()
    # The region facet keeps the peer's dataset by the code its feed declared.
    consumer.go("/?q=visits&nodes=all&region=920000")
    cards = page.locator(".card")
    expect(cards.filter(has_text="Ferry visits")).to_have_count(1)
    assert cards.count() == cards.filter(has_text="Qinghe Province").count()
    consumer.go("/?q=visits&nodes=all&sector=K")
    expect(page.locator(".card")).to_have_count(0)
    consumer.shot("federated-catalog")


def test_a_consumers_requests_on_other_nodes_are_shown_marked_by_node(
    person: Any, peer: str
) -> None:
    consumer = person(CONSUMER)
    consumer.go("/query")
    page = consumer.page
    expect(page.get_by_role("heading", name="On other nodes")).to_be_visible()
    row = page.locator("tr.remote-grant")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(PEER)
    expect(row).to_contain_text(f"{PEER}:{REMOTE}")
    expect(row).to_contain_text("requested")
    expect(row).to_contain_text("just now")
    consumer.shot("remote-grants")


def test_a_consumer_may_not_open_the_federation_page(person: Any, peer: str) -> None:
    consumer = person(CONSUMER)
    answer = consumer.go("/federation")
    assert answer.status == 403
    expect(consumer.page.get_by_role("link", name="Federation")).to_have_count(0)
