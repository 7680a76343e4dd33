from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import update
from tests.vault.visits import write_visits_csv

from entrepot.errors import InvalidInput, LimitExceeded, NotFound
from entrepot.exchange import Exchange
from entrepot.exchange.accounts import LOCAL
from entrepot.exchange.catalog import Catalog, DatasetSummary, search_terms
from entrepot.exchange.node import Node
from entrepot.schemas.catalog import DatasetOut, DatasetPageOut, VersionOut
from entrepot.settings import Settings
from entrepot.standards import get
from entrepot.standards.scope import region, sector
from entrepot.vault import DatasetRef, LocalVault, OnError, PublishRequest, add_provider
from entrepot.vault.models import Provider

VISITS = get("health.visit")


def publish(
    node: Node, tmp_path: Path, provider: str, title: str, description: str = "", **kw: object
) -> None:
    source = write_visits_csv(tmp_path / f"{provider}-{title}.csv", 40, bad=int(kw.pop("bad", 0)))
    request = PublishRequest(
        provider=provider,
        standard=VISITS,
        title=title,
        description=description,
        filename=source.name,
        **kw,  # type: ignore[arg-type]
    )
    with source.open("rb") as data:
        LocalVault.of(node).publish(request, data)


def build(node: Node, tmp_path: Path) -> Catalog:
    """Three datasets where the word "visits" sits in the title, description or columns."""
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
    add_provider(node.db, "northbank-clinics", "Northbank Clinics")
    publish(node, tmp_path, "riverside-hospitals", "Outpatient visits 2025", "Visits by district")
    publish(
        node,
        tmp_path,
        "riverside-hospitals",
        "Hospital admissions",
        "Admissions, with the outpatient visits that led to them",
    )
    publish(node, tmp_path, "northbank-clinics", "Clinic costs", "What care cost, per case")
    return Exchange(node).catalog()


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    """The three datasets, shared by the tests that only read them."""
    home = tmp_path_factory.mktemp("catalog")
    node = Node.init(Settings(home=home / "node"))
    yield build(node, home)
    node.close()


def refs(found: list) -> list[str]:  # type: ignore[type-arg]
    return [str(s.ref) for s in found]


def test_search_ranks_title_over_description_over_columns(catalog: Catalog) -> None:
    found = catalog.search("visits")
    assert refs(found) == [
        "riverside-hospitals/outpatient-visits",
        "riverside-hospitals/hospital-admissions",
        "northbank-clinics/clinic-costs",
    ]
    scores = [s.score for s in found]
    assert scores == sorted(scores, reverse=True)


def test_every_word_must_match(catalog: Catalog) -> None:
    assert refs(catalog.search("visits district")) == [
        "riverside-hospitals/outpatient-visits",
        "riverside-hospitals/hospital-admissions",
        "northbank-clinics/clinic-costs",
    ]
    assert refs(catalog.search("admissions northbank")) == []
    assert refs(catalog.search("northbank costs")) == ["northbank-clinics/clinic-costs"]


def test_search_covers_provider_standard_and_column_descriptions(catalog: Catalog) -> None:
    assert len(catalog.search("Riverside")) == 2
    assert len(catalog.search("health.visit")) == 3
    assert len(catalog.search("ICD-10 chapter")) == 3  # a column's description
    assert refs(catalog.search("dist")) != []  # words match as prefixes


def test_search_follows_a_renamed_provider(node: Node, tmp_path: Path) -> None:
    catalog = build(node, tmp_path)
    with node.db.write() as session:
        session.execute(
            update(Provider)
            .where(Provider.slug == "northbank-clinics")
            .values(name="Harbourside Care")
        )
    assert refs(catalog.search("harbourside")) == ["northbank-clinics/clinic-costs"]
    assert catalog.search("northbank clinics costs") != []  # the slug still matches


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '"visits',
        "*",
        "visits*",
        "NEAR(",
        "NEAR(visits district",
        "visits OR",
        "AND",
        "NOT",
        "title:visits",
        "^visits",
        "-visits",
        "(",
        ")",
        "'; DROP TABLE datasets; --",
        "\x00",
        "",
        "   ",
    ],
)
def test_hostile_search_text_never_errors(catalog: Catalog, query: str) -> None:
    catalog.search(query)
    assert len(catalog.datasets()) == 3


@settings(max_examples=60)
@given(st.text(max_size=60))
def test_any_search_text_is_searched_for_never_parsed(catalog: Catalog, query: str) -> None:
    found = catalog.search(query)
    if not search_terms(query):
        assert found == []


def test_a_search_asking_too_much_names_the_setting(catalog: Catalog) -> None:
    capped = Catalog(catalog.db, max_results=2)
    assert len(capped.search("visits", limit=2)) == 2
    with pytest.raises(LimitExceeded) as caught:
        capped.search("visits", limit=3)
    assert caught.value.setting == "catalog_max_results"


def test_search_terms_keep_only_words() -> None:
    assert search_terms('NEAR("visits" dist*) 门诊') == ["near", "visits", "dist", "门诊"]


def test_list_and_show(catalog: Catalog) -> None:
    assert refs(catalog.datasets(provider="northbank-clinics")) == [
        "northbank-clinics/clinic-costs"
    ]
    page = catalog.show("riverside-hospitals/outpatient-visits")
    assert page.summary.title == "Outpatient visits"
    assert page.summary.ref.sql_name == "riverside_hospitals.outpatient_visits"
    roles = {c["name"]: c["role"] for c in page.schema()}
    assert roles["patient_id"] == "identifier"
    assert roles["cost"] == "measure"
    cost = next(c for c in page.schema() if c["name"] == "cost")
    assert cost["bounds"] == [0.0, 5000.0]
    assert [v.content for v in page.versions] == [None]
    assert page.quality is None
    owned = Catalog(catalog.db, viewer=LOCAL, max_results=catalog.max_results).show(
        "riverside-hospitals/outpatient-visits"
    )
    assert [v.content.rows for v in owned.versions if v.content] == [40]
    assert owned.quality is not None
    assert owned.quality["validation"]["rows_valid"] == 40
    with pytest.raises(NotFound, match="catalog"):
        catalog.show("riverside-hospitals/nothing")
    with pytest.raises(InvalidInput):
        catalog.show("not a reference")


def test_show_never_contains_row_values(node: Node, tmp_path: Path) -> None:
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
    publish(
        node,
        tmp_path,
        "riverside-hospitals",
        "Outpatient visits",
        bad=4,
        on_error=OnError.QUARANTINE,
    )
    vault = LocalVault.of(node)
    stored = [
        pq.read_table(
            node.home / "vaults" / "riverside-hospitals" / "outpatient-visits" / "1.parquet"
        ),
        pq.read_table(
            node.home / "quarantine" / "riverside-hospitals" / "outpatient-visits" / "1.parquet"
        ),
    ]
    values = {
        str(value)
        for table in stored
        for name in ("visit_id", "patient_id", "visit_date", "cost")
        for value in table.column(name).to_pylist()
        if value is not None
    }
    assert "-5.00" in values  # the rejected rows are among the values looked for
    page = json.dumps(
        Exchange(node).catalog(LOCAL).show("riverside-hospitals/outpatient-visits").to_dict()
    )
    versions = json.dumps(
        [v.to_dict() for v in vault.versions("riverside-hospitals/outpatient-visits")]
    )
    for text in (page, versions):
        leaked = sorted(v for v in values if v in text)
        assert leaked == []


def test_publish_and_search_on_sqlite_and_postgresql(any_node: Node, tmp_path: Path) -> None:
    catalog = build(any_node, tmp_path)
    assert refs(catalog.search("visits")) == [
        "riverside-hospitals/outpatient-visits",
        "riverside-hospitals/hospital-admissions",
        "northbank-clinics/clinic-costs",
    ]
    assert refs(catalog.search("northbank costs")) == ["northbank-clinics/clinic-costs"]
    assert len(catalog.search("ICD-10 chapter")) == 3
    for query in ('"', "NEAR(", "*", "visits & !district", "a:*", "'; --"):
        catalog.search(query)
    with any_node.db.write() as session:
        session.execute(
            update(Provider)
            .where(Provider.slug == "northbank-clinics")
            .values(name="Harbourside Care")
        )
    assert refs(catalog.search("harbourside")) == ["northbank-clinics/clinic-costs"]
    vault = LocalVault.of(any_node)
    assert vault.check() == []
    assert [v.number for v in vault.versions("riverside-hospitals/outpatient-visits")] == [1]


@given(
    score=st.none() | st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    rows=st.none() | st.integers(min_value=0, max_value=10**12),
    latest=st.none() | st.integers(min_value=1, max_value=999),
    micro=st.sampled_from([0, 1, 884281]),
    regions=st.sampled_from([(), ("910000",), ("910000", "920000")]),
    sector_code=st.sampled_from([None, "Q", "K"]),
)
def test_a_summary_s_body_is_the_api_model_s_dump(
    score: float | None,
    rows: int | None,
    latest: int | None,
    micro: int,
    regions: tuple[str, ...],
    sector_code: str | None,
) -> None:
    summary = DatasetSummary(
        ref=DatasetRef("riverside-hospitals", "outpatient-visits"),
        title="Outpatient visits",
        description="Visits by district",
        provider="Riverside Hospitals",
        standard="health.visits",
        versions=0 if latest is None else latest,
        latest=latest,
        rows=rows,
        updated_at=datetime(2026, 12, 6, 3, 31, 49, micro, tzinfo=UTC),
        score=score,
        regions=tuple(region(code) for code in regions),
        sector=None if sector_code is None else sector(sector_code),
    )
    body = summary.to_body()
    assert body == DatasetOut.of(summary).model_dump(mode="json")
    assert json.dumps(body) == json.dumps(DatasetOut.of(summary).model_dump(mode="json"))


@pytest.mark.parametrize("owner", [False, True])
def test_a_page_s_body_is_the_api_model_s_dump(catalog: Catalog, owner: bool) -> None:
    viewer = LOCAL if owner else None
    reader = Catalog(catalog.db, viewer=viewer, max_results=catalog.max_results)
    pages = reader.pages()
    assert pages
    for page in pages:
        body = page.to_body()
        dumped = DatasetPageOut.model_validate(page.to_dict()).model_dump(
            mode="json", by_alias=True
        )
        assert json.dumps(body) == json.dumps(dumped)
        assert body == reader.show(page.summary.ref).to_body()
        for version in reader.versions(page.summary.ref):
            assert json.dumps(version.to_body()) == json.dumps(
                VersionOut.model_validate(version.to_dict()).model_dump(mode="json")
            )
