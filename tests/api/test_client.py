"""`entrepot login` / `logout` and the client the CLI uses against a server."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from tests.api.remote import entrepot

from entrepot.client import HttpClient as Client
from entrepot.client import current, load_remote
from entrepot.errors import BudgetExhausted, ExitCode, NotFound, PeerError, Unauthorized
from entrepot.settings import Settings

if TYPE_CHECKING:
    from tests.api.conftest import World


@pytest.fixture
def url(world: World, api: httpx.Client) -> str:
    return str(api.base_url)


def test_login_stores_url_and_token_privately_and_never_prints_it(
    world: World, url: str, tmp_path: Path
) -> None:
    config = tmp_path / "cfg" / "remote.json"
    token = world.tokens["consumer"]
    result = entrepot(config, "login", url, "--token", token)
    assert result.returncode == 0, result.stderr
    assert "consumer" in result.stdout
    assert token not in result.stdout + result.stderr
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    remote = load_remote(Settings(client_config=config))
    assert remote is not None
    assert remote.url == url.rstrip("/")
    assert remote.token == token
    assert token not in repr(remote)
    out = entrepot(config, "logout")
    assert out.returncode == 0
    assert not config.exists()


def test_login_with_a_bad_token_fails_in_one_paragraph_and_stores_nothing(
    url: str, tmp_path: Path
) -> None:
    config = tmp_path / "remote.json"
    result = entrepot(config, "login", url, "--token", "ent_000000000000_" + "x" * 43)
    assert result.returncode == ExitCode.REFUSED
    assert "not valid" in result.stderr
    assert "Traceback" not in result.stderr
    assert not config.exists()


def test_current_is_none_until_logged_in(tmp_path: Path) -> None:
    assert current(Settings(client_config=tmp_path / "none.json")) is None


def test_server_errors_come_back_as_the_same_error_class(world: World, url: str) -> None:
    with Client(url, world.tokens["consumer"]) as client:
        assert client.get("/v1/me")["account"] == "consumer"
        with pytest.raises(NotFound) as missing:
            client.get("/v1/access/grants/GRANT-2")
        assert missing.value.hint
        sql = "SELECT sex, COUNT(*) AS n FROM riverside_hospitals.outpatient_visits GROUP BY sex"
        for i in range(5):  # the grant holds 5 ε: this leaves 0.01
            client.post("/v1/queries", {"sql": sql, "epsilon": 1.0 - i * 1e-3})
        with pytest.raises(BudgetExhausted) as spent:
            client.post("/v1/queries", {"sql": sql, "epsilon": 0.5})
        assert spent.value.budget in ("grant", "dataset")
    with Client(url, "ent_000000000000_" + "y" * 43) as stranger, pytest.raises(Unauthorized):
        stranger.get("/v1/me")


def test_unreachable_server_is_a_peer_error_with_a_hint() -> None:
    with Client("http://127.0.0.1:9", "t", timeout_s=2) as client, pytest.raises(PeerError) as e:
        client.get("/v1/me")
    assert "logout" in e.value.hint
