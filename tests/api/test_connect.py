"""`entrepot.connect`: a server's URL and a node's home give one interface and one answer."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

import entrepot
from entrepot.errors import InvalidInput, Unauthorized

if TYPE_CHECKING:
    from tests.api.conftest import World

DATASET = "riverside-hospitals/outpatient-visits"
SQL = (
    "SELECT district, COUNT(*) AS visits FROM riverside_hospitals.outpatient_visits "
    "GROUP BY district"
)


def _reads(ex: entrepot.Connection) -> list[object]:
    return [
        ex.me(),
        ex.catalog_datasets(),
        ex.catalog_search("visits"),
        ex.catalog_show(DATASET),
        ex.dataset_versions(DATASET),
        ex.standards(),
        ex.policy(DATASET),
        sorted(ex.purposes(), key=lambda p: p["id"]),
        ex.access_requests(),
        ex.access_grants(),
        ex.access_show("GRANT-1"),
        ex.client.budgets(),
    ]


def test_a_url_and_a_home_answer_every_read_alike(world: World, api: httpx.Client) -> None:
    url = str(api.base_url)
    with entrepot.connect(url, token=world.tokens["consumer"]) as remote:
        over_http = _reads(remote)
    with entrepot.connect(world.node.home, consumer="city-health-bureau") as local:
        in_process = _reads(local)
    # The token names an account; the local actor is its organization.
    over_http[0] = {**over_http[0], "account": None}  # type: ignore[dict-item]
    in_process[0] = {**in_process[0], "role": "consumer"}  # type: ignore[dict-item]
    assert over_http == in_process


def test_a_query_over_http_comes_back_as_frames_with_a_short_repr(
    world: World, api: httpx.Client
) -> None:
    with entrepot.connect(str(api.base_url), token=world.tokens["consumer"]) as ex:
        result = ex.query(SQL, epsilon=0.5)
        left = {b.dataset: b.epsilon_left for b in ex.budgets()}
    frame = result.to_pandas()
    assert list(frame.columns) == ["district", "visits", "visits_lo", "visits_hi"]
    assert result.to_arrow().num_rows == len(frame) > 0
    assert left[DATASET] == pytest.approx(result.epsilon_left)
    text = repr(result)
    assert len(text) < 300
    assert f"log entry {result.log_index}" in text
    assert "P-" not in text


def test_a_url_needs_a_token_and_a_bad_one_is_refused(
    world: World, api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENTREPOT_TOKEN", raising=False)
    with pytest.raises(InvalidInput, match="needs an API token"):
        entrepot.connect(str(api.base_url))
    with (
        entrepot.connect(str(api.base_url), token="ent_000000000000_" + "y" * 43) as stranger,
        pytest.raises(Unauthorized),
    ):
        stranger.catalog_datasets()
