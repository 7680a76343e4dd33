"""`entrepot release` and `entrepot share profile` on a local node."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.exchange.logged_world import DATASET, PROVIDER
from tests.exchange.release_world import CONSUMER, MARKETER, seed
from tests.vault.cli_runner import Cli, Result, run_cli

from entrepot.exchange.node import Node
from entrepot.settings import Settings


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    # Argon2id at 1 MiB: the same code path, without seconds spent per token.
    opened = Node.init(Settings(home=tmp_path / "node", token_hash_memory_kib=1024))
    yield opened
    opened.close()


@pytest.fixture
def cli(
    node: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Cli:
    seed(node, tmp_path)

    def run(*args: str) -> Result:
        return run_cli(capsys, monkeypatch, *args, "--home", str(node.home))

    return run


def test_plan_shows_the_generalization_and_risk_and_makes_nothing(cli: Cli, node: Node) -> None:
    planned = cli(
        "release", "plan", DATASET, "--k", "5", "--l", "2", "--for", CONSUMER, "--as", PROVIDER
    )
    assert planned.code == 0, planned.stderr
    assert "Generalization" in planned.output
    assert "prosecutor risk: highest" in planned.output
    assert not (node.home / "releases").exists()
    as_json = cli("release", "plan", DATASET, "--for", CONSUMER, "--as", PROVIDER, "--json")
    assert as_json.json()["report"]["model"]["k"] == 5
    linked = cli(
        "release", "plan", DATASET, "--pseudonym", "patient_id", "--for", CONSUMER, "--as", PROVIDER
    )
    assert linked.code == 0, linked.stderr
    assert "pseudonyms: patient_id (linking each unit's rows)" in linked.output


def test_create_list_show_revoke(cli: Cli) -> None:
    made = cli(
        "release", "create", DATASET, "--k", "5", "--for", CONSUMER, "--as", PROVIDER, "--json"
    )
    assert made.code == 0, made.stderr
    body = made.json()
    assert body["release"] == "R-1"
    assert body["receipt"]["log"]["index"] == body["log_index"]
    listed = cli("release", "list", "--as", CONSUMER)
    assert "R-1" in listed.output
    assert "riverside-hospitals.outpatient-visits.anonymized-1" in listed.output
    shown = cli("release", "show", "R-1", "--as", CONSUMER, "--json").json()
    assert "rows_in" not in shown["report"]
    assert cli("release", "list", "--as", MARKETER).output == "no releases"
    revoked = cli("release", "revoke", "R-1", "--reason", "done", "--as", PROVIDER)
    assert revoked.code == 0, revoked.stderr
    assert (
        cli("release", "list", "--revoked", "--as", CONSUMER, "--json").json()[0]["state"]
        == "revoked"
    )


def test_a_refusal_is_one_message_naming_the_rule(cli: Cli) -> None:
    refused = cli("release", "create", DATASET, "--for", MARKETER, "--as", PROVIDER)
    assert refused.code == 3
    assert "purpose_rows" in refused.errors
    assert "Traceback" not in refused.stderr
    low = cli("release", "create", DATASET, "--k", "2", "--for", CONSUMER, "--as", PROVIDER)
    assert "k_floor" in low.errors
    named = ("--pseudonym", "district", "--for", CONSUMER, "--as", PROVIDER)
    assert "pseudonym_column" in cli("release", "create", DATASET, *named).errors


def test_synth_spends_epsilon(cli: Cli) -> None:
    made = cli(
        "release",
        "synth",
        DATASET,
        "--epsilon",
        "1",
        "--rows",
        "200",
        "--for",
        CONSUMER,
        "--as",
        PROVIDER,
        "--json",
    )
    assert made.code == 0, made.stderr
    assert made.json()["epsilon"] == 1.0
    assert made.json()["rows"] == 200


def test_share_profile_prints_a_version_1_profile(cli: Cli) -> None:
    printed = cli("share", "profile", "--as", CONSUMER)
    assert printed.code == 0, printed.stderr
    import json

    profile = json.loads(printed.stdout)
    assert profile["shareCredentialsVersion"] == 1
    assert profile["endpoint"].endswith("/delta-sharing")
    assert len(profile["bearerToken"]) > 20
