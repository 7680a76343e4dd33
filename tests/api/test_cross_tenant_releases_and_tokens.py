"""Cross-tenant reach of releases, token revocation and usage over HTTP.

``tests/api/test_authorization.py`` holds the matrix of contracts, budgets and
accounts; this file adds what it leaves out: a release made for one consumer, read,
revoked or planned by another consumer or another provider, a token revoked by
another organization, and another party's usage as CSV. Each must answer exactly
as for an object that does not exist, so that no answer tells which ones do.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pytest
from tests.api.conftest import running
from tests.exchange.logged_world import DATASET, PROVIDER
from tests.exchange.release_world import CONSUMER, OUTSIDER, released, served_node

from entrepot.api import create_app
from entrepot.exchange.accounts import LOCAL, token_id_of
from entrepot.vault import add_provider

RIVAL = "harbor-clinics"
MONTH = date.today().strftime("%Y-%m")


@dataclass
class Served:
    """A live server over a node with release R-1 made for ``CONSUMER``."""

    client: httpx.Client
    tokens: dict[str, str]

    def call(self, who: str, method: str, path: str, body: object = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.request(method, path, json=body, headers=headers)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with served_node(tmp_path / "node") as node:
        ex = released(node, tmp_path)
        add_provider(node.db, RIVAL, "Harbor Clinics")
        tokens = {}
        for org, role in (
            (CONSUMER, "consumer"),
            (OUTSIDER, "consumer"),
            (PROVIDER, "provider"),
            (RIVAL, "provider"),
        ):
            tokens[org] = ex.accounts.create(LOCAL, f"{org}-api", role, org=org)[1].secret
        tokens["auditor"] = ex.accounts.create(LOCAL, "auditor", "auditor")[1].secret
        with running(create_app(node)) as client:
            yield Served(client, tokens)


def _refusal(response: httpx.Response, ident: str) -> tuple[int, str, str]:
    """The status, code and message of a refusal, its id made a placeholder."""
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"].replace(ident, "<id>")


def test_only_the_consumer_and_the_provider_of_a_release_see_it(served: Served) -> None:
    def listed(who: str) -> list[str]:
        return [r["release"] for r in served.call(who, "GET", "/v1/releases").json()["items"]]

    assert listed(CONSUMER) == listed(PROVIDER) == ["R-1"]
    assert listed(OUTSIDER) == listed(RIVAL) == listed("auditor") == []


@pytest.mark.parametrize("who", [OUTSIDER, RIVAL, "auditor"])
def test_another_tenants_release_reads_as_one_that_does_not_exist(served: Served, who: str) -> None:
    theirs = served.call(who, "GET", "/v1/releases/R-1")
    missing = served.call(who, "GET", "/v1/releases/R-999")
    assert _refusal(theirs, "R-1") == _refusal(missing, "R-999")
    assert theirs.status_code == 404


def test_another_provider_neither_revokes_nor_plans_a_release_on_the_dataset(
    served: Served,
) -> None:
    theirs = served.call(RIVAL, "POST", "/v1/releases/R-1/revoke", {"reason": "mine now"})
    missing = served.call(RIVAL, "POST", "/v1/releases/R-999/revoke", {"reason": "mine now"})
    assert _refusal(theirs, "R-1") == _refusal(missing, "R-999")
    assert theirs.status_code == 404
    for path in ("/v1/releases/plan", "/v1/releases"):
        made = served.call(RIVAL, "POST", path, {"dataset": DATASET, "consumer": CONSUMER})
        assert made.status_code == 404, made.text
    # R-1 is untouched: its consumer still has it, active.
    [release] = served.call(CONSUMER, "GET", "/v1/releases").json()["items"]
    assert release["state"] == "active"


def test_a_token_of_another_organization_is_revoked_by_no_one_but_it(served: Served) -> None:
    victim = token_id_of(served.tokens[CONSUMER])
    assert victim is not None
    theirs = served.call(OUTSIDER, "POST", f"/v1/tokens/{victim}/revoke")
    missing = served.call(OUTSIDER, "POST", "/v1/tokens/000000000000/revoke")
    assert _refusal(theirs, victim) == _refusal(missing, "000000000000")
    assert theirs.status_code == 404
    assert served.call(CONSUMER, "GET", "/v1/me").status_code == 200


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_another_partys_usage_reads_as_an_unknown_party(served: Served, fmt: str) -> None:
    def usage(who: str, party: str) -> httpx.Response:
        return served.call(who, "GET", f"/v1/usage?month={MONTH}&party={party}&format={fmt}")

    for who, other in ((OUTSIDER, CONSUMER), (RIVAL, PROVIDER), (PROVIDER, CONSUMER)):
        theirs, missing = usage(who, other), usage(who, "no-such-party")
        assert _refusal(theirs, other) == _refusal(missing, "no-such-party")
        assert theirs.status_code == 404
