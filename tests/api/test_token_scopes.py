"""A share profile's token is a sharing token: it reads released tables over Delta
Sharing, with the official client, and is refused everywhere else, while an account
token keeps working everywhere; both served by a real server on loopback."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from tests.api.conftest import running
from tests.api.delta_client import read
from tests.exchange.release_world import CONSUMER, released, served_node
from tests.portal.pages import sign_in
from typer.testing import CliRunner

from entrepot.api import create_app
from entrepot.cli.app import app as cli
from entrepot.client import Remote, save_remote
from entrepot.client.http import HttpClient
from entrepot.errors import Forbidden
from entrepot.exchange import Exchange
from entrepot.exchange.accounts import LOCAL
from entrepot.exchange.node import Node
from entrepot.settings import Settings

TABLE = "riverside-hospitals.outpatient-visits.anonymized-1"
TABLES = "/delta-sharing/shares/riverside-hospitals/schemas/outpatient-visits/tables"
SQL = "SELECT district, COUNT(*) AS n FROM riverside_hospitals.outpatient_visits GROUP BY district"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    with served_node(tmp_path / "node") as opened:
        yield opened


@pytest.fixture
def world(node: Node, tmp_path: Path) -> Exchange:
    return released(node, tmp_path)


@pytest.fixture
def served(world: Exchange, node: Node) -> Iterator[httpx.Client]:
    with running(create_app(node)) as api:
        yield api


@pytest.fixture
def account_token(world: Exchange) -> str:
    """A token of the consumer's account, as `entrepot account token` issues it."""
    return world.accounts.issue_token(LOCAL, CONSUMER).secret


def _profile(api: httpx.Client, account_token: str, path: Path) -> tuple[Path, str]:
    """The consumer's share profile, asked for over HTTP with its account token."""
    with HttpClient(str(api.base_url), account_token) as client:
        body = client.share_profile()
    path.write_text(json.dumps(body), encoding="utf-8")
    return path, str(body["bearerToken"])


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _refused_by_scope(answer: httpx.Response) -> bool:
    """A 403 that names the rule and tells nothing else."""
    if answer.status_code != 403:
        return False
    error = answer.json()["error"]
    assert set(error) == {"code", "message", "hint", "rule"}, error
    assert "sharing token" in error["message"]
    assert "account token" in error["hint"]
    assert not {CONSUMER, "consumer"} & set(re.findall(r"[a-z-]+", json.dumps(error)))
    return bool(error["rule"] == "token_scope")


@contextmanager
def _browser(api: httpx.Client) -> Iterator[httpx.Client]:
    """A browser's visits to the portal: its own cookies, redirects not followed."""
    with httpx.Client(base_url=api.base_url, follow_redirects=False, timeout=30) as browser:
        yield browser


def test_a_profiles_token_reads_a_shared_table_with_the_official_client(
    world: Exchange, served: httpx.Client, account_token: str, tmp_path: Path
) -> None:
    profile, sharing_token = _profile(served, account_token, tmp_path / "bureau.share")
    found = read(profile, TABLE)
    [release] = world.releases.all(world.actor(CONSUMER))
    assert found.get("tables") == [TABLE], found
    assert found.get("rows") == release.record.rows, found
    # It asks for the files' pre-signed URLs, which are read without any token.
    asked = served.post(f"{TABLES}/anonymized-1/query", headers=_bearer(sharing_token), json={})
    assert asked.status_code == 200
    url = json.loads(next(line for line in asked.text.splitlines() if '"file"' in line))
    assert served.get(url["file"]["url"]).content[:4] == b"PAR1"


def test_a_profiles_token_is_refused_everywhere_else_and_spends_nothing(
    node: Node, served: httpx.Client, account_token: str, tmp_path: Path
) -> None:
    _, sharing_token = _profile(served, account_token, tmp_path / "bureau.share")
    queries = len(list(node.log.search(kind="query", limit=100)))
    budget = served.get("/v1/budgets", headers=_bearer(account_token)).json()
    for method, path, body in (
        ("POST", "/v1/queries", {"sql": SQL, "epsilon": 0.5}),
        ("POST", f"/v1/accounts/{CONSUMER}/tokens", None),
        ("POST", "/v1/sharing/profile", None),
        ("GET", "/v1/me", None),
        ("GET", "/v1/tokens", None),
        ("GET", "/v1/releases", None),
    ):
        answer = served.request(method, path, headers=_bearer(sharing_token), json=body)
        assert _refused_by_scope(answer), (method, path, answer.text)
    assert len(list(node.log.search(kind="query", limit=100))) == queries
    assert served.get("/v1/budgets", headers=_bearer(account_token)).json() == budget
    with _browser(served) as browser:
        signed = sign_in(browser, sharing_token)
        assert signed.status_code == 403
        assert '<code class="rule">token_scope</code>' in signed.text
        assert CONSUMER not in signed.text
        assert browser.get("/query").headers["location"].startswith("/signin")


def test_an_account_token_still_works_everywhere_the_sharing_routes_included(
    served: httpx.Client, account_token: str
) -> None:
    headers = _bearer(account_token)
    answered = served.post("/v1/queries", headers=headers, json={"sql": SQL, "epsilon": 0.5})
    assert answered.status_code == 200, answered.text
    minted = served.post(f"/v1/accounts/{CONSUMER}/tokens", headers=headers)
    assert minted.status_code == 201
    assert minted.json()["info"]["scope"] == "full"
    assert served.get("/v1/me", headers=headers).json()["account"] == CONSUMER
    assert served.post(f"{TABLES}/anonymized-1/query", headers=headers, json={}).status_code == 200
    with _browser(served) as browser:
        signed = sign_in(browser, account_token)
        assert signed.status_code == 303
        assert browser.get("/query").status_code == 200


def test_every_operation_but_delta_sharing_refuses_a_sharing_token(
    served: httpx.Client, account_token: str, tmp_path: Path
) -> None:
    _, sharing_token = _profile(served, account_token, tmp_path / "bureau.share")
    document = served.get("/openapi.json").json()
    operations = [
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if operation.get("security") == [{"HTTPBearer": []}]
    ]
    sharing = [(m, p) for m, p in operations if p.startswith("/delta-sharing/")]
    others = [(m, p) for m, p in operations if not p.startswith("/delta-sharing/")]
    assert len(sharing) >= 10
    assert len(others) >= 40
    for method, path in others:
        answer = served.request(method, path, headers=_bearer(sharing_token))
        assert answer.status_code == 403, (method, path, answer.status_code)
        if method != "HEAD":
            assert _refused_by_scope(answer), (method, path, answer.text)
    for method, path in sharing:
        answer = served.request(method, path, headers=_bearer(sharing_token))
        assert answer.status_code not in (401, 403), (method, path, answer.text)


def test_tokens_are_listed_with_their_scope_and_a_sharing_token_is_revoked_like_any(
    served: httpx.Client, account_token: str, tmp_path: Path
) -> None:
    profile, sharing_token = _profile(served, account_token, tmp_path / "bureau.share")
    listed = served.get(f"/v1/accounts/{CONSUMER}/tokens", headers=_bearer(account_token))
    scopes = {t["token_id"]: t["scope"] for t in listed.json()["items"]}
    sharing_id = sharing_token.split("_")[1]
    assert scopes.pop(sharing_id) == "sharing"
    assert set(scopes.values()) == {"full"}
    # The CLI, logged in with the account token, shows the scope of each.
    account = _login(served, account_token, tmp_path / "account.json")
    shown = CliRunner().invoke(cli, ["account", "list", "--tokens", "--json"], env=account)
    assert shown.exit_code == 0, shown.output
    assert {t["token_id"]: t["scope"] for t in json.loads(shown.stdout)}[sharing_id] == "sharing"
    table = CliRunner().invoke(cli, ["account", "list", "--tokens"], env=account)
    [row] = [line for line in table.stdout.splitlines() if sharing_id in line]
    assert "sharing" in row
    # Logged in with the sharing token, the CLI is refused, naming the rule.
    sharer = _login(served, sharing_token, tmp_path / "sharing.json")
    refused = CliRunner().invoke(cli, ["account", "list", "--tokens"], env=sharer)
    assert isinstance(refused.exception, Forbidden)
    assert refused.exception.details == {"rule": "token_scope"}
    revoked = CliRunner().invoke(
        cli, ["account", "revoke-token", sharing_id, "--json"], env=account
    )
    assert revoked.exit_code == 0, revoked.output
    assert json.loads(revoked.stdout)["scope"] == "sharing"
    gone = read(profile, TABLE)
    assert gone["error"]["status"] == 401, gone


def _login(api: httpx.Client, token: str, path: Path) -> dict[str, str]:
    """The environment of a CLI logged in to ``api`` with ``token``."""
    save_remote(Remote(str(api.base_url), token), Settings(client_config=path))
    return {"ENTREPOT_CLIENT_CONFIG": str(path)}
