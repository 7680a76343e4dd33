from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from entrepot.cli.app import app
from entrepot.errors import ExitCode, Unauthorized
from entrepot.exchange.accounts import Accounts
from entrepot.exchange.node import Node
from entrepot.settings import Settings

ENV = {"ENTREPOT_TOKEN_HASH_MEMORY_KIB": "1024"}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    Node.init(Settings(home=tmp_path / "node")).close()
    return tmp_path / "node"


def invoke(home: Path, *args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--home", str(home)], env=ENV)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_create_prints_the_token_once_and_list_never_shows_it(home: Path) -> None:
    created = json.loads(
        invoke(home, "account", "create", "city-health-bureau", "--role", "consumer", "--json")
    )
    secret = created["token"]
    assert secret.startswith("ent_")
    listed = invoke(home, "account", "list", "--json") + invoke(
        home, "account", "list", "--tokens", "--json"
    )
    assert secret not in listed
    assert created["token_id"] in listed
    node = Node.open(Settings(home=home))
    try:
        accounts = Accounts(node.db, node.settings, log=node.log)
        assert accounts.authenticate(secret).org_slug == "city-health-bureau"
        invoke(home, "account", "revoke-token", created["token_id"])
        with pytest.raises(Unauthorized):
            accounts.authenticate(secret)
    finally:
        node.close()


def test_a_human_sees_the_token_and_a_warning(home: Path) -> None:
    out = invoke(home, "account", "create", "harbour-statistics", "--role", "consumer")
    assert "shown once" in out
    assert "ent_" in out


def test_a_provider_account_needs_its_provider_first(home: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "entrepot",
            "account",
            "create",
            "riverside-admin",
            "--role",
            "provider",
            "--org",
            "riverside-hospitals",
            "--home",
            str(home),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **ENV},
    )
    assert result.returncode == ExitCode.NOT_FOUND
    assert "entrepot provider add riverside-hospitals" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
