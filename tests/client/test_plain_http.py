"""A token goes over plain http:// only to this machine, unless plain HTTP is allowed by
name: the CLI's login, a stored login and the Python client refuse alike, before any
byte is sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.vault.cli_runner import run_cli

from entrepot import connect
from entrepot.client import Remote, save_remote
from entrepot.errors import ExitCode, InvalidInput
from entrepot.settings import Settings

ELSEWHERE = [
    "http://192.0.2.10:8000",
    "http://exchange.example:8000/",
    "http://127.0.0.1.example:8000",
    "http://localhost.example",
    "http://127.0.0.1@exchange.example",
    "http://[2001:db8::1]:8000",
]
HERE = ["http://127.0.0.1:8000", "http://127.8.9.1", "http://localhost:8000", "http://[::1]:80"]


@pytest.mark.parametrize("url", ELSEWHERE)
def test_the_python_client_refuses_plain_http_to_another_machine(url: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        connect(url, token="a-token", settings=Settings(allow_plain_http=False))
    assert refused.value.details["setting"] == "allow_plain_http"
    assert "unencrypted" in refused.value.message
    assert "ENTREPOT_ALLOW_PLAIN_HTTP" in (refused.value.hint or "")


@pytest.mark.parametrize("url", [*HERE, "https://exchange.example", "https://192.0.2.10:8443"])
def test_https_and_this_machine_need_no_permission(url: str) -> None:
    with connect(url, token="a-token", settings=Settings(allow_plain_http=False)):
        pass


def test_plain_http_elsewhere_is_allowed_by_name() -> None:
    with connect(ELSEWHERE[0], token="a-token", settings=Settings(allow_plain_http=True)):
        pass


def test_login_and_a_stored_login_refuse_plain_http_to_another_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "remote.json"
    monkeypatch.setenv("ENTREPOT_CLIENT_CONFIG", str(config))
    monkeypatch.delenv("ENTREPOT_ALLOW_PLAIN_HTTP", raising=False)
    login = run_cli(capsys, monkeypatch, "login", ELSEWHERE[1], "--token", "a-token", "--json")
    assert login.code == ExitCode.INVALID
    assert login.json()["error"]["setting"] == "allow_plain_http"
    assert not config.exists()
    # a login stored before: every command refuses to send its token there
    save_remote(Remote(ELSEWHERE[1], "a-token"), Settings(client_config=config))
    whoami = run_cli(capsys, monkeypatch, "whoami", "--json")
    assert whoami.code == ExitCode.INVALID
    assert "unencrypted" in whoami.json()["error"]["message"]
