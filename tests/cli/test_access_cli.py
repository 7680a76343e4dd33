from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from entrepot.cli.app import app
from entrepot.errors import ExitCode
from entrepot.exchange.node import Node
from entrepot.settings import Settings
from marketplace import Clock, Market

DATASET = "riverside-hospitals/outpatient-visits"
# A cheap Argon2id for tokens made by the commands under test.
ENV = {"ENTREPOT_TOKEN_HASH_MEMORY_KIB": "1024"}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    node = Node.init(Settings(home=tmp_path / "node", token_hash_memory_kib=1024))
    Market.on(node, Clock(datetime(2026, 11, 15, 10, 0)))
    node.close()
    return tmp_path / "node"


def run(home: Path, *args: str) -> dict[str, object] | list[object]:
    result = CliRunner().invoke(app, [*args, "--home", str(home), "--json"], env=ENV)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def entrepot(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrepot", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **ENV},
    )


def test_request_grant_show_revoke_through_the_cli(home: Path) -> None:
    asked = run(
        home,
        "access",
        "request",
        DATASET,
        "--as",
        "city-health-bureau",
        "--purpose",
        "public-health-surveillance",
        "--epsilon",
        "3",
        "--until",
        "2099-12-31",
    )
    assert asked["id"] == "REQ-1"  # type: ignore[call-overload]
    inbox = run(home, "access", "list", "--pending", "--as", "riverside-hospitals")
    assert [r["id"] for r in inbox["requests"]] == ["REQ-1"]  # type: ignore[call-overload]
    granted = run(
        home,
        "access",
        "grant",
        "REQ-1",
        "--epsilon",
        "2",
        "--max-queries",
        "100",
        "--price-per-epsilon",
        "50",
        "--as",
        "riverside-hospitals",
    )
    assert granted["id"] == "GRANT-1"  # type: ignore[call-overload]
    assert (granted["epsilon"], granted["max_queries"]) == (2.0, 100)  # type: ignore[call-overload]
    assert granted["price_per_epsilon"] == "50"  # type: ignore[call-overload]
    run(home, "access", "revoke", "GRANT-1", "--reason", "ended", "--as", "riverside-hospitals")
    shown = run(home, "access", "show", "GRANT-1", "--as", "city-health-bureau")
    history = [(h["from"], h["to"], h["actor"], h["reason"]) for h in shown["history"]]  # type: ignore[call-overload]
    assert history == [
        (None, "granted", "org:riverside-hospitals", ""),
        ("granted", "revoked", "org:riverside-hospitals", "ended"),
    ]


def test_export_odrl_writes_an_agreement(home: Path, tmp_path: Path) -> None:
    run(
        home,
        "access",
        "request",
        DATASET,
        "--as",
        "city-health-bureau",
        "--purpose",
        "official-statistics",
        "--epsilon",
        "1",
        "--until",
        "2099-12-31",
    )
    run(home, "access", "grant", "REQ-1", "--as", "riverside-hospitals")
    out = tmp_path / "grant.jsonld"
    result = CliRunner().invoke(
        app, ["access", "export-odrl", "GRANT-1", "-o", str(out), "--home", str(home)]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert document["@type"] == "Agreement"
    assert document["permission"][0]["action"] == "aggregate"


def test_a_consumer_granting_its_own_request_gets_a_clean_refusal(home: Path) -> None:
    run(
        home,
        "access",
        "request",
        DATASET,
        "--as",
        "city-health-bureau",
        "--purpose",
        "public-health-surveillance",
        "--epsilon",
        "1",
        "--until",
        "2099-12-31",
    )
    refused = entrepot(home, "access", "grant", "REQ-1", "--as", "city-health-bureau")
    assert refused.returncode == ExitCode.REFUSED
    assert "only the dataset's provider decides" in " ".join(refused.stderr.split())
    assert "hint:" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_an_unknown_purpose_lists_the_vocabulary(home: Path) -> None:
    refused = entrepot(
        home,
        "access",
        "request",
        DATASET,
        "--as",
        "city-health-bureau",
        "--purpose",
        "curiosity",
        "--epsilon",
        "1",
        "--until",
        "2099-12-31",
        "--json",
    )
    assert refused.returncode == ExitCode.INVALID
    error = json.loads(refused.stdout)["error"]
    assert error["code"] == "invalid_input"
    assert "public-health-surveillance" in error["hint"]
