"""Who reads the exact figures of a version's content: its provider and operators only."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.vault.visits import HEADER, visit_rows

from entrepot.exchange import Exchange
from entrepot.exchange.accounts import LOCAL, Accounts, Actor
from entrepot.exchange.catalog import CONTENT_FIGURES, publish_version, sees_content
from entrepot.exchange.node import Node
from entrepot.settings import Settings
from entrepot.standards import get
from entrepot.vault import OnError, PublishRequest, add_provider

PROVIDER = "riverside-hospitals"
# Keys of a page or a summary that change with every publish, whatever the rows.
_TIMES = ("created_at", "updated_at")


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue().encode()


def _publish(node: Node, dataset: str, data: bytes) -> None:
    request = PublishRequest(
        provider=PROVIDER,
        standard=get("health.visit"),
        title="Outpatient visits",
        dataset=dataset,
        on_error=OnError.QUARANTINE,
        filename="visits.csv",
    )
    publish_version(node, request, io.BytesIO(data))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, dict[str, Actor]]]:
    """A node, the dataset's provider, another provider, a consumer and an auditor."""
    node = Node.init(Settings(home=tmp_path_factory.mktemp("figures") / "node"))
    add_provider(node.db, PROVIDER, "Riverside Hospitals")
    add_provider(node.db, "harbor-clinics", "Harbor Clinics")
    accounts = Accounts(node.db, node.settings, log=node.log)
    accounts.create(LOCAL, "city-health-bureau", "consumer")
    accounts.create(LOCAL, "public-auditor", "auditor")
    accounts.create(LOCAL, "exchange-operator", "operator")
    actors = {
        slug: accounts.actor(slug)
        for slug in (
            PROVIDER,
            "harbor-clinics",
            "city-health-bureau",
            "public-auditor",
            "exchange-operator",
        )
    }
    yield node, actors
    node.close()


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        (PROVIDER, True),
        ("exchange-operator", True),
        ("harbor-clinics", False),
        ("city-health-bureau", False),
        ("public-auditor", False),
    ],
)
def test_only_the_provider_and_operators_see_the_content(
    world: tuple[Node, dict[str, Actor]], who: str, sees: bool
) -> None:
    _, actors = world
    provider_id = actors[PROVIDER].provider_id
    assert provider_id is not None
    assert sees_content(actors[who], provider_id) is sees
    assert sees_content(LOCAL, provider_id)
    assert not sees_content(None, provider_id)


def test_a_non_owner_gets_every_content_figure_absent_not_zero(
    world: tuple[Node, dict[str, Actor]],
) -> None:
    node, actors = world
    rows = visit_rows(30, bad=2, seed=5)
    _publish(node, "absent", _csv(rows))
    ref = f"{PROVIDER}/absent"
    for who in ("harbor-clinics", "city-health-bureau", "public-auditor"):
        catalog = Exchange(node).catalog(actors[who])
        page = catalog.show(ref).to_dict()
        assert page["rows"] is None
        assert page["quality"] is None
        (version,) = page["versions"]
        assert {key: version[key] for key in CONTENT_FIGURES} == dict.fromkeys(CONTENT_FIGURES)
        assert [v.to_dict() for v in catalog.versions(ref)] == page["versions"]
        listed = [s for s in catalog.datasets() if str(s.ref) == ref]
        assert [s.rows for s in listed] == [None]
    owned = Exchange(node).catalog(actors[PROVIDER]).show(ref).to_dict()
    assert (owned["rows"], owned["versions"][0]["rows_rejected"]) == (28, 2)
    assert owned["quality"]["validation"]["rows_invalid"] == 2


def _without_one_unit(rows: list[list[str]], index: int) -> list[list[str]]:
    unit = rows[index][1]
    return [row for row in rows if row[1] != unit]


def _public(page: dict[str, Any]) -> dict[str, Any]:
    """A page without what differs between any two publishes: numbers, times, and the
    rows-per-unit bound and its level, fresh releases with differential privacy at each
    publish (their ε is charged; they are never the same figures by construction)."""
    out = {k: v for k, v in page.items() if k not in (*_TIMES, "latest_version", "versions")}
    drawn = (*_TIMES, "version", "unit_bound", "unit_level")
    out["newest"] = {k: v for k, v in page["versions"][-1].items() if k not in drawn}
    return out


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size=st.integers(min_value=4, max_value=60), seed=st.integers(0, 1000), data=st.data())
def test_two_versions_one_unit_apart_give_a_non_owner_the_same_page(
    world: tuple[Node, dict[str, Actor]], size: int, seed: int, data: st.DataObject
) -> None:
    node, actors = world
    rows = visit_rows(size, bad=seed % 3, seed=seed)
    index = data.draw(st.integers(0, len(rows) - 1))
    dataset = f"neighbours-{size}-{seed}-{index}"
    ref = f"{PROVIDER}/{dataset}"
    consumer = Exchange(node).catalog(actors["city-health-bureau"])
    _publish(node, dataset, _csv(rows))
    before = consumer.show(ref).to_dict()
    _publish(node, dataset, _csv(_without_one_unit(rows, index)))
    after = consumer.show(ref).to_dict()
    assert _public(before) == _public(after)
    assert after["latest_version"] == before["latest_version"] + 1
    # The provider does tell them apart.
    owned = Exchange(node).catalog(actors[PROVIDER]).show(ref).to_dict()
    first, second = (v["rows"] + v["rows_rejected"] for v in owned["versions"])
    assert second < first == len(rows)
