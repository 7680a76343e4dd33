"""A federated search kept to the catalog's facets: the peer's feed carries each
dataset's region and sector codes, and the one rule of the catalog keeps exactly the
matching datasets, this node's and its peer's alike."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.api.conftest import running
from tests.exchange.test_catalog import publish
from tests.federation.nodes import federation_node as _node

from entrepot.api import create_app
from entrepot.client.http import HttpClient
from entrepot.client.local import LocalClient
from entrepot.exchange import Exchange
from entrepot.exchange.actors import LOCAL
from entrepot.exchange.catalog import Facets
from entrepot.vault import add_provider

# (node, provider, title, regions, sector): the scope each dataset declares at publish.
DECLARED = (
    ("riverside", "riverside-hospitals", "Outpatient visits 2025", ("910000",), "Q"),
    ("riverside", "riverside-hospitals", "Hospital admissions", ("910100", "910101"), "Q"),
    ("capital", "northbank-clinics", "Clinic costs", ("920000",), None),
    ("capital", "northbank-clinics", "Pharmacy visits", (), "G"),
    ("riverside", "northbank-clinics", "Ambulance trips", ("910000", "920000"), "H"),
)
SLUGS = {
    "Outpatient visits 2025": "outpatient-visits",
    "Hospital admissions": "hospital-admissions",
    "Clinic costs": "clinic-costs",
    "Pharmacy visits": "pharmacy-visits",
    "Ambulance trips": "ambulance-trips",
}

Found = tuple[str, str]  # (node, provider/dataset)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalClient, HttpClient]]:
    home = tmp_path_factory.mktemp("federated-facets")
    riverside, capital = _node(home, "riverside"), _node(home, "capital")
    for node in (riverside, capital):
        add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
        add_provider(node.db, "northbank-clinics", "Northbank Clinics")
    built = {"riverside": riverside, "capital": capital}
    for name, provider, title, regions, sector in DECLARED:
        publish(built[name], home, provider, title, regions=regions, sector=sector)
    mine, theirs = Exchange(capital), Exchange(riverside)
    _, token = mine.accounts.create(LOCAL, "city-desk", "consumer")
    with running(create_app(riverside)) as served, running(create_app(capital)) as own:
        mine.peers.add(str(served.base_url), bytes(riverside.verify_key).hex())
        theirs.peers.add(str(own.base_url), bytes(capital.verify_key).hex())
        with HttpClient(str(own.base_url), token.secret, timeout_s=120) as logged_in:
            yield LocalClient(mine, LOCAL), logged_in
    riverside.close()
    capital.close()


def expected(facets: Facets) -> set[Found]:
    """The datasets ``facets`` keep on both nodes, from what each declared."""
    kept = set()
    for node, provider, title, regions, sector in DECLARED:
        if (
            (not facets.provider or provider in facets.provider)
            and (not facets.standard or "health.visit" in facets.standard)
            and (not facets.region or set(regions) & set(facets.region))
            and (not facets.sector or sector in facets.sector)
        ):
            kept.add((node, f"{provider}/{SLUGS[title]}"))
    return kept


def found(results: list[dict[str, object]]) -> list[Found]:
    return [(str(r["node"]), str(r["dataset"])) for r in results]


def test_a_peers_datasets_carry_their_region_and_sector(
    nodes: tuple[LocalClient, HttpClient],
) -> None:
    local, _ = nodes
    every = local.catalog_search_federated("visit", 20)
    assert {f for f in found(every)} == expected(Facets())
    [trips] = [r for r in every if r["dataset"] == "northbank-clinics/ambulance-trips"]
    assert trips["node"] == "riverside"
    assert [r["code"] for r in trips["regions"]] == ["910000", "920000"]
    assert trips["sector"]["code"] == "H"
    assert trips["rows"] is None


codes = st.lists(st.sampled_from(["910000", "910100", "910101", "920000", "930000"]), max_size=3)
sectors = st.lists(st.sampled_from(["Q", "G", "H", "K"]), max_size=2)
providers = st.lists(st.sampled_from(["riverside-hospitals", "northbank-clinics", "x"]), max_size=2)
standards = st.lists(st.sampled_from(["health.visit", "payments.transaction"]), max_size=1)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    region=codes,
    sector=sectors,
    provider=providers,
    standard=standards,
    words=st.sampled_from(["visit", "costs", "trips", "hospital"]),
)
def test_a_federated_filter_keeps_exactly_the_matching_datasets_on_every_node(
    nodes: tuple[LocalClient, HttpClient],
    region: list[str],
    sector: list[str],
    provider: list[str],
    standard: list[str],
    words: str,
) -> None:
    local, logged_in = nodes
    facets = Facets.of(provider=provider, standard=standard, region=region, sector=sector)
    asked = {"provider": provider, "standard": standard, "region": region, "sector": sector}
    everything = found(local.catalog_search_federated("visit", 20, **asked))
    assert set(everything) == expected(facets)
    assert len(everything) == len(set(everything))
    # Within a search's words: its matches without the filter, in their order, kept.
    matches = found(local.catalog_search_federated(words, 20))
    want = [m for m in matches if m in expected(facets)]
    assert found(local.catalog_search_federated(words, 20, **asked)) == want
    # The API and the HTTP client apply the same filter.
    assert found(logged_in.catalog_search_federated(words, 20, **asked)) == want
