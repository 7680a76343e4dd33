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
    rendered = cli("release", "show", "R-1", "--as", CONSUMER)
    assert rendered.code == 0, rendered.stderr
    assert "prosecutor risk" in rendered.output
    assert "information loss" not in rendered.output
    assert cli("release", "list", "--as", MARKETER).output == "no releases"
    revoked = cli("release", "revoke", "R-1", "--reason", "study closed", "--as", PROVIDER)
    assert revoked.code == 0, revoked.stderr
    assert (
        cli("release", "list", "--revoked", "--as", CONSUMER, "--json").json()[0]["state"]
        == "revoked"
    )
    shown_to_provider = cli("release", "show", "R-1", "--as", PROVIDER)
    assert f"revoked by org:{PROVIDER} at " in shown_to_provider.output
    assert "study closed" in shown_to_provider.output
    shown_to_consumer = cli("release", "show", "R-1", "--as", CONSUMER)
    assert "revoked by" in shown_to_consumer.output
    assert "study closed" not in shown_to_consumer.output
    logged = cli("audit", "log", "--json")
    [entry] = [e for e in logged.json() if e["kind"] == "release"][-1:]
    assert (entry["outcome"], entry["release"]) == ("revoked", "R-1")
    assert "study closed" not in logged.output


def test_a_consumer_lists_no_release_made_under_a_grant_that_ended(cli: Cli) -> None:
    assert cli("release", "create", DATASET, "--for", CONSUMER, "--as", PROVIDER).code == 0
    listed = cli("access", "list", "--as", CONSUMER, "--json").json()["grants"]
    [held] = [g for g in listed if g["dataset"] == DATASET and g["state"] == "granted"]
    assert cli("access", "revoke", held["id"], "--as", PROVIDER).code == 0
    assert cli("release", "list", "--as", CONSUMER).output == "no releases"
    refused = cli("release", "show", "R-1", "--as", CONSUMER)
    assert refused.code != 0
    assert "no release R-1" in refused.errors
    assert "R-1" in cli("release", "list", "--as", PROVIDER).output


def test_a_refusal_is_one_message_naming_the_rule(cli: Cli) -> None:
    refused = cli("release", "create", DATASET, "--for", MARKETER, "--as", PROVIDER)
    assert refused.code == 3
    assert "purpose_rows" in refused.errors
    assert "Traceback" not in refused.stderr
    low = cli("release", "create", DATASET, "--k", "2", "--for", CONSUMER, "--as", PROVIDER)
    assert "k_floor" in low.errors
    named = ("--pseudonym", "district", "--for", CONSUMER, "--as", PROVIDER)
    assert "pseudonym_column" in cli("release", "create", DATASET, *named).errors


def test_criteria_no_generalization_meets_are_refused_by_rule_and_charge_nothing(
    cli: Cli,
) -> None:
    asked = ("--k", "1000000", "--for", CONSUMER, "--as", PROVIDER)
    refused = cli("release", "create", DATASET, *asked)
    assert refused.code == 3, refused.stderr
    assert "suppression_limit" in refused.errors
    assert "k = 1000000" in refused.errors
    assert "Traceback" not in refused.stderr
    assert cli("release", "list", "--as", PROVIDER).output == "no releases"
    [budget] = [
        b for b in cli("budget", "--as", CONSUMER, "--json").json() if b["dataset"] == DATASET
    ]
    assert budget["queries_used"] == 0
    made = cli("release", "create", DATASET, "--k", "5", "--for", CONSUMER, "--as", PROVIDER)
    assert made.code == 0, made.stderr


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
    # The token's expiry, in ISO 8601: a profile without one reads as never expiring.
    newest = cli("account", "list", "--tokens", "--as", CONSUMER, "--json").json()[-1]
    assert profile["expirationTime"].endswith("Z")
    assert profile["expirationTime"][:23] == newest["expires_at"][:23]  # to the millisecond
    refused = cli("share", "profile", "--as", PROVIDER)
    assert refused.code == 3, refused.stderr
    assert "a provider account has no releases to read" in refused.errors


@pytest.mark.parametrize(
    ("command", "option", "value"),
    [
        ("plan", "--t", "nan"),
        ("create", "--t", "-0.5"),
        ("create", "--max-suppression", "nan"),
        ("plan", "--max-suppression", "-inf"),
        ("create", "--k", "0"),
        ("synth", "--epsilon", "1e-320"),
        ("synth", "--epsilon", "nan"),
        ("synth", "--rows", "0"),
    ],
)
def test_a_number_outside_its_range_is_refused_before_anything_is_read(
    cli: Cli, command: str, option: str, value: str
) -> None:
    needed = ["--epsilon", "1"] if command == "synth" and option != "--epsilon" else []
    asked = (*needed, option, value, "--for", CONSUMER, "--as", PROVIDER)
    refused = cli("release", command, DATASET, *asked)
    assert refused.code == 2, refused.stderr
    assert f"Invalid value for '{option}'" in refused.errors
    assert "Traceback" not in refused.stderr
    assert "internal error" not in refused.stderr
    assert cli("release", "list", "--as", PROVIDER).output == "no releases"
    [budget] = [
        b for b in cli("budget", "--as", CONSUMER, "--json").json() if b["dataset"] == DATASET
    ]
    assert (budget["epsilon_spent"], budget["queries_used"]) == (0.0, 0)


@pytest.mark.parametrize("release", ["R-\u00b2", f"R-{'9' * 5000}"])
def test_a_release_name_that_is_no_number_is_one_error(cli: Cli, release: str) -> None:
    for asked in (("show", release), ("revoke", release, "--as", PROVIDER)):
        refused = cli("release", *asked)
        assert refused.code == 5, refused.stderr
        assert "is not a release" in refused.errors
        assert "Traceback" not in refused.stderr
