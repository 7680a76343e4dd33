"""A missing value in a column a release keeps as it is leaves as missing: whether one
person's value is missing never decides whether a release is made or fails."""

from __future__ import annotations

import copy
import csv
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from tests.exchange.logged_world import DATASET, PROVIDER
from tests.exchange.release_world import CONSUMER, POLICY, grant
from tests.vault.visits import HEADER, write_visits_csv

from entrepot.exchange import Exchange
from entrepot.exchange.accounts import LOCAL
from entrepot.exchange.catalog import publish_version
from entrepot.exchange.node import Node
from entrepot.exchange.release import ReleaseSpec
from entrepot.settings import Settings
from entrepot.standards import get
from entrepot.standards.schema import Standard, parse_standard
from entrepot.vault import OnError, PublishRequest, add_provider

# A dimension a provider's own standard leaves optional, released as a sensitive column.
OPTIONAL = "diagnosis_group"


def _standard() -> Standard:
    document = copy.deepcopy(get("health.visit").document)
    for raw in document["fields"]:
        if raw["name"] == OPTIONAL:
            raw["constraints"]["required"] = False
    return parse_standard(document, "a provider's standard")


def _publish(node: Node, source: Path) -> None:
    """Publish ``source`` as a version of the dataset, under the provider's standard."""
    with source.open("rb") as data:
        publish_version(
            node,
            PublishRequest(
                provider=PROVIDER,
                standard=_standard(),
                title="Outpatient visits 2025",
                dataset="outpatient-visits",
                on_error=OnError.QUARANTINE,
                filename=source.name,
            ),
            data,
        )


@pytest.fixture
def ex(tmp_path: Path) -> Iterator[Exchange]:
    node = Node.init(Settings(home=tmp_path / "node", token_hash_memory_kib=1024))
    add_provider(node.db, PROVIDER, "Riverside Hospitals")
    source = write_visits_csv(tmp_path / "visits.csv", 600)
    _publish(node, source)
    exchange = Exchange(node)
    exchange.accounts.create(LOCAL, CONSUMER, "consumer")
    exchange.policies.set(exchange.actor(PROVIDER), DATASET, POLICY, where="test")
    grant(exchange, CONSUMER, "public-health-surveillance")
    yield exchange
    node.close()


def _publish_missing(ex: Exchange, tmp_path: Path, rows: range) -> None:
    """The same visits again, with no diagnosis on ``rows``."""
    source = write_visits_csv(tmp_path / "again.csv", 600)
    with source.open(newline="", encoding="utf-8") as read:
        table = list(csv.reader(read))
    column = HEADER.index(OPTIONAL)
    for row in rows:
        table[1 + row][column] = ""
    with source.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(table)
    _publish(ex.node, source)


@pytest.mark.parametrize("missing", [range(1), range(0, 600, 7)])
def test_a_missing_value_in_a_released_column_is_released_as_missing(
    ex: Exchange, tmp_path: Path, missing: range
) -> None:
    spec = ReleaseSpec(k=5, l=2)
    ex.releases.create(ex.actor(PROVIDER), DATASET, CONSUMER, spec)
    _publish_missing(ex, tmp_path, missing)
    made = ex.releases.create(ex.actor(PROVIDER), DATASET, CONSUMER, spec)
    [(_, entry)] = ex.node.log.search(kind="release", limit=1)
    assert entry["outcome"] == "answered"
    rows = pq.read_table(ex.node.home / "releases" / f"{made.record.name}.parquet")
    values = rows.column(OPTIONAL).to_pylist()
    released = made.to_dict()["report"]["rows_released"]
    assert len(values) == released
    # Every missing diagnosis kept is released as missing, and nothing else is.
    assert 0 < values.count(None) <= len(missing)
    assert all(value is None or isinstance(value, str) for value in values)
