"""A catalog page over other nodes pulls each peer's feed once, facets ticked or not,
and its facets still keep this node's datasets and the peer's alike. The peer counts
the feed requests it answers (its /metrics, read with an auditor's token)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from tests.api.conftest import running
from tests.exchange.test_catalog import publish
from tests.federation.nodes import federation_node
from tests.portal.pages import Signed

from entrepot.api import create_app
from entrepot.exchange import Exchange
from entrepot.exchange.actors import LOCAL
from entrepot.vault import add_provider

FEED = 'route="/federation/v1/catalog"'


@dataclass
class Federation:
    consumer: Signed
    peer: httpx.Client
    auditor: str

    def feed_requests(self) -> float:
        """How many requests for its catalog feed the peer has answered."""
        metrics = self.peer.get("/metrics", headers={"Authorization": f"Bearer {self.auditor}"})
        assert metrics.status_code == 200, metrics.text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.text.splitlines()
            if line.startswith("entrepot_http_requests_total{") and FEED in line
        )


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    """This node and its peer, served and trusting each other, each with one dataset
    about visits: this node's of region 910000, the peer's of region 920000."""
    home = tmp_path_factory.mktemp("federated-search")
    mine, theirs = federation_node(home, "capital"), federation_node(home, "harbour")
    add_provider(mine.db, "riverside-hospitals", "Riverside Hospitals")
    publish(mine, home, "riverside-hospitals", "Outpatient visits", regions=("910000",))
    add_provider(theirs.db, "harbour-clinics", "Harbour Clinics")
    publish(theirs, home, "harbour-clinics", "Ferry visits", regions=("920000",))
    _, consumer = Exchange(mine).accounts.create(LOCAL, "city-desk", "consumer")
    _, auditor = Exchange(theirs).accounts.create(LOCAL, "peer-auditor", "auditor")
    with running(create_app(theirs)) as peer, running(create_app(mine)) as own:
        Exchange(mine).peers.add(str(peer.base_url), bytes(theirs.verify_key).hex())
        Exchange(theirs).peers.add(str(own.base_url), bytes(mine.verify_key).hex())
        signed = Signed(str(own.base_url), consumer.secret)
        try:
            yield Federation(signed, peer, auditor.secret)
        finally:
            signed.http.close()
    mine.close()
    theirs.close()


@pytest.mark.parametrize(
    ("facets", "titles"),
    [
        ({}, ["Outpatient visits", "Ferry visits"]),
        ({"region": "920000"}, ["Ferry visits"]),
        ({"region": ["910000", "920000"], "provider": "harbour-clinics"}, ["Ferry visits"]),
        ({"region": "910000"}, ["Outpatient visits"]),
    ],
)
def test_a_search_over_other_nodes_pulls_each_peers_feed_once(
    federation: Federation, facets: dict[str, str | list[str]], titles: list[str]
) -> None:
    before = federation.feed_requests()
    page = federation.consumer.http.get("/", params={"q": "visits", "nodes": "all", **facets})
    assert page.status_code == 200, page.text[:500]
    assert federation.feed_requests() - before == 1
    cards = page.text.split('<li class="card">')[1:]
    assert len(cards) == len(titles)
    for card, title in zip(cards, titles, strict=True):
        assert title in card
