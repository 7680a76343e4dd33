from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from tests.api.conftest import World


@pytest.fixture
def client(world: World, api: httpx.Client) -> httpx.Client:
    return api


def test_me_names_the_account_behind_the_token(world: World, client: httpx.Client) -> None:
    response = client.get("/v1/me", headers=world.auth("consumer"))
    assert response.status_code == 200
    assert response.json() == {
        "account": "consumer",
        "role": "consumer",
        "org": "city-health-bureau",
    }


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer not-a-token",
        "Basic dXNlcjpwYXNz",
        "Bearer ent_000000000000_" + "a" * 43,
    ],
)
def test_missing_or_bad_token_is_401_with_the_one_shape(
    client: httpx.Client, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = client.get("/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"


def test_error_bodies_never_echo_the_token(world: World, client: httpx.Client) -> None:
    token = world.tokens["consumer"]
    broken = token[:-1] + ("A" if token[-1] != "A" else "B")
    response = client.get("/v1/me", headers={"Authorization": f"Bearer {broken}"})
    assert response.status_code == 401
    assert broken not in response.text
    assert broken[4:16] not in response.text


def test_operator_creates_an_account_whose_token_works(world: World, client: httpx.Client) -> None:
    created = client.post(
        "/v1/accounts",
        json={"name": "new-bureau", "role": "consumer"},
        headers=world.auth("operator"),
    )
    assert created.status_code == 201
    token = created.json()["token"]["token"]
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["account"] == "new-bureau"
    _, logged = world.node.log.search(kind="account")[-1]
    assert logged["org"] == "new-bureau"
    assert token not in str(logged)


@pytest.mark.parametrize("who", ["provider", "consumer", "auditor"])
def test_only_operators_create_accounts(world: World, client: httpx.Client, who: str) -> None:
    response = client.post(
        "/v1/accounts", json={"name": "sneaky", "role": "operator"}, headers=world.auth(who)
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_revoked_token_is_refused(world: World, client: httpx.Client) -> None:
    operator = world.auth("operator")
    issued = client.post("/v1/accounts/consumer/tokens", headers=operator).json()
    fresh = {"Authorization": f"Bearer {issued['token']}"}
    assert client.get("/v1/me", headers=fresh).status_code == 200
    token_id = issued["info"]["token_id"]
    revoked = client.post(f"/v1/tokens/{token_id}/revoke", headers=operator)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert client.get("/v1/me", headers=fresh).status_code == 401


def test_a_tenant_cannot_see_or_revoke_another_tenants_tokens(
    world: World, client: httpx.Client
) -> None:
    tokens = client.get("/v1/accounts/consumer/tokens", headers=world.auth("operator")).json()
    token_id = tokens["items"][0]["token_id"]
    rival = world.auth("other-consumer")
    assert client.get("/v1/accounts/consumer/tokens", headers=rival).status_code == 404
    assert client.post(f"/v1/tokens/{token_id}/revoke", headers=rival).status_code == 404
    assert client.get("/v1/me", headers=world.auth("consumer")).status_code == 200


def test_account_list_is_paged_and_scoped(world: World, client: httpx.Client) -> None:
    everyone = client.get("/v1/accounts", params={"limit": 2}, headers=world.auth("operator"))
    page = everyone.json()
    assert page["total"] == 6
    assert len(page["items"]) == 2
    assert page["next_offset"] == 2
    own = client.get("/v1/accounts", headers=world.auth("consumer")).json()
    assert [a["name"] for a in own["items"]] == ["consumer"]
