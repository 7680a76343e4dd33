"""A dataset's region and sector: declared at publish, checked against the code lists,
kept across publishes, and a filter of every catalog list that keeps exactly the
datasets that declared one of the codes asked for."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.exchange.test_catalog import publish

from entrepot.errors import InvalidInput
from entrepot.exchange import Exchange
from entrepot.exchange.catalog import Catalog, Facets
from entrepot.exchange.node import Node
from entrepot.settings import Settings
from entrepot.standards import codelist
from entrepot.standards.scope import MAX_REGIONS, REGION_LISTS
from entrepot.vault import OnError, add_provider

# (provider, title, regions, sector): the scope each dataset declares at publish.
DECLARED = (
    ("riverside-hospitals", "Outpatient visits 2025", ("910000",), "Q"),
    ("riverside-hospitals", "Hospital admissions", ("910100", "910101"), "Q"),
    ("northbank-clinics", "Clinic costs", ("920000",), None),
    ("northbank-clinics", "Pharmacy visits", (), "G"),
    ("northbank-clinics", "Ambulance trips", ("910000", "920000"), "H"),
)
REFS = {
    "Outpatient visits 2025": "riverside-hospitals/outpatient-visits",
    "Hospital admissions": "riverside-hospitals/hospital-admissions",
    "Clinic costs": "northbank-clinics/clinic-costs",
    "Pharmacy visits": "northbank-clinics/pharmacy-visits",
    "Ambulance trips": "northbank-clinics/ambulance-trips",
}


def build(node: Node, tmp_path: Path) -> Catalog:
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
    add_provider(node.db, "northbank-clinics", "Northbank Clinics")
    for provider, title, regions, sector in DECLARED:
        publish(node, tmp_path, provider, title, regions=regions, sector=sector)
    return Exchange(node).catalog()


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    home = tmp_path_factory.mktemp("scope")
    node = Node.init(Settings(home=home / "node"))
    yield build(node, home)
    node.close()


def expected(facets: Facets) -> set[str]:
    """The datasets ``facets`` keep, from what each declared."""
    kept = set()
    for provider, title, regions, sector in DECLARED:
        if (
            (not facets.provider or provider in facets.provider)
            and (not facets.standard or "health.visit" in facets.standard)
            and (not facets.region or set(regions) & set(facets.region))
            and (not facets.sector or sector in facets.sector)
        ):
            kept.add(REFS[title])
    return kept


def test_each_dataset_carries_the_scope_its_provider_declared(catalog: Catalog) -> None:
    page = catalog.show("riverside-hospitals/hospital-admissions")
    assert [r.to_dict() for r in page.summary.regions] == [
        {"code": "910100", "label": "Yunping City", "codelist": "region.city"},
        {"code": "910101", "label": "Yunping Old Town", "codelist": "region.district"},
    ]
    assert page.to_dict()["sector"] == {
        "code": "Q",
        "label": "Health and social work",
        "codelist": "sector",
    }
    costs = catalog.show("northbank-clinics/clinic-costs").to_dict()
    assert (costs["regions"][0]["label"], costs["sector"]) == ("Qinghe Province", None)
    assert catalog.show("northbank-clinics/pharmacy-visits").to_dict()["regions"] == []


codes = st.lists(st.sampled_from(["910000", "910100", "910101", "920000", "930000"]), max_size=3)
sectors = st.lists(st.sampled_from(["Q", "G", "H", "K"]), max_size=2)
providers = st.lists(st.sampled_from(["riverside-hospitals", "northbank-clinics", "x"]), max_size=2)
standards = st.lists(st.sampled_from(["health.visit", "payments.transaction"]), max_size=1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    region=codes,
    sector=sectors,
    provider=providers,
    standard=standards,
    words=st.sampled_from(["visits", "costs", "trips", "hospital"]),
)
def test_a_filter_keeps_exactly_the_matching_datasets(
    catalog: Catalog,
    region: list[str],
    sector: list[str],
    provider: list[str],
    standard: list[str],
    words: str,
) -> None:
    facets = Facets.of(provider=provider, standard=standard, region=region, sector=sector)
    want = expected(facets)
    listed = catalog.datasets(facets=facets)
    assert {str(s.ref) for s in listed} == want
    assert len(listed) == len(want) == catalog.count_datasets(facets=facets)
    assert [str(s.ref) for s in listed] == sorted(str(s.ref) for s in listed)
    # A search keeps the matches of its words among them, ranked as without the filter.
    matches = [str(s.ref) for s in catalog.search(words)]
    found = [str(s.ref) for s in catalog.search(words, facets=facets)]
    assert found == [ref for ref in matches if ref in want]
    assert catalog.count_search(words, facets=facets) == len(found)


def test_a_region_matches_its_own_code_not_the_places_inside_it(catalog: Catalog) -> None:
    lanshan = {str(s.ref) for s in catalog.datasets(facets=Facets.of(region=["910000"]))}
    assert lanshan == {
        "riverside-hospitals/outpatient-visits",
        "northbank-clinics/ambulance-trips",
    }


@pytest.mark.parametrize(
    ("regions", "sector", "named"),
    [
        (("999999",), None, "region '999999'"),
        (("910000", "Q"), None, "region 'Q'"),
        ((), "Z", "sector 'Z'"),
        ((), "910000", "sector '910000'"),
    ],
)
def test_an_unknown_code_refuses_the_publish_before_anything_is_written(
    node: Node, tmp_path: Path, regions: tuple[str, ...], sector: str | None, named: str
) -> None:
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
    with pytest.raises(InvalidInput) as refused:
        publish(node, tmp_path, "riverside-hospitals", "Visits", regions=regions, sector=sector)
    assert named in refused.value.message
    assert Exchange(node).catalog().datasets() == []


def test_more_regions_than_the_limit_are_refused(node: Node, tmp_path: Path) -> None:
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
    places = tuple(code for name in REGION_LISTS for code in codelist(name).codes)
    assert len(places) > MAX_REGIONS
    with pytest.raises(InvalidInput, match=f"at most {MAX_REGIONS} regions"):
        publish(node, tmp_path, "riverside-hospitals", "Visits", regions=places)


def test_a_publish_without_a_scope_keeps_it_and_one_with_a_scope_replaces_it(
    node: Node, tmp_path: Path
) -> None:
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
    catalog = Exchange(node).catalog()
    ref = "riverside-hospitals/visits"
    publish(node, tmp_path, "riverside-hospitals", "Visits 2024", regions=("910000",), sector="Q")
    publish(
        node, tmp_path, "riverside-hospitals", "Visits 2025", bad=1, on_error=OnError.QUARANTINE
    )
    kept = catalog.show(ref).to_dict()
    assert ([r["code"] for r in kept["regions"]], kept["sector"]["code"]) == (["910000"], "Q")
    publish(
        node,
        tmp_path,
        "riverside-hospitals",
        "Visits 2026",
        regions=("920000", "910000"),
        sector="H",
        bad=2,
        on_error=OnError.QUARANTINE,
    )
    replaced = catalog.show(ref).to_dict()
    assert [r["code"] for r in replaced["regions"]] == ["920000", "910000"]
    assert replaced["sector"]["code"] == "H"


def test_search_with_facets_on_sqlite_and_postgresql(any_node: Node, tmp_path: Path) -> None:
    catalog = build(any_node, tmp_path)
    health = Facets.of(sector=["Q"])
    assert {str(s.ref) for s in catalog.search("visits admissions", facets=health)} == {
        "riverside-hospitals/hospital-admissions"
    }
    found = catalog.search("visits", facets=health)
    assert {str(s.ref) for s in found} == {
        "riverside-hospitals/outpatient-visits",
        "riverside-hospitals/hospital-admissions",
    }
    assert catalog.count_search("visits", facets=health) == 2
    assert catalog.search("visits", facets=Facets.of(region=["930000"])) == []
    assert catalog.count_search("visits", facets=Facets.of(region=["930000"])) == 0
