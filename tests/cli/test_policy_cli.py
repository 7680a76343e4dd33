"""A policy file round-trips: `policy init`, `policy show` and `policy show --json`
each print a file that `policy set` reads back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.vault.cli_runner import Cli, Result, run_cli
from tests.vault.visits import write_visits_csv

from entrepot import standards
from entrepot.exchange.node import Node
from entrepot.privacy.policy import default_policy
from entrepot.vault import add_provider

REF = "riverside-hospitals/outpatient-visits"


@pytest.fixture
def cli(
    node: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Cli:
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")

    def run(*args: str) -> Result:
        return run_cli(capsys, monkeypatch, *args, "--home", str(node.home))

    source = write_visits_csv(tmp_path / "visits.csv", 40)
    published = run(
        *("dataset", "publish", str(source), "--provider", "riverside-hospitals"),
        *("--standard", "health.visit", "--title", "Outpatient visits 2025"),
    )
    assert published.code == 0, published.stderr
    return run


def _set(cli: Cli, path: Path) -> dict[str, Any]:
    done = cli("policy", "set", REF, str(path), "--as", "riverside-hospitals", "--json")
    assert done.code == 0, done.stdout + done.stderr
    return dict(done.json())


def test_init_prints_every_default_key_commented_out(cli: Cli, tmp_path: Path) -> None:
    text = cli("policy", "init", REF).stdout
    assert all(line.startswith("#") for line in text.splitlines() if line)
    uncommented = "\n".join(line.removeprefix("# ") for line in text.splitlines()[6:])
    shown = yaml.safe_load("\n".join(line.split("  # ")[0] for line in uncommented.splitlines()))
    assert shown == {
        **default_policy(standards.get("health.visit")).to_dict(),
        "delta_cap": None,
    }
    # As printed, every key commented out: setting it sets the defaults.
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    assert _set(cli, path)["policy"] == cli("policy", "show", REF, "--json").json()["policy"]


def test_an_edited_init_file_sets_the_change(cli: Cli, tmp_path: Path) -> None:
    text = cli("policy", "init", REF).stdout
    edited = "\n".join(
        "threshold: 5.0" if line.startswith("# threshold:") else line for line in text.splitlines()
    )
    path = tmp_path / "policy.yaml"
    path.write_text(edited + "\n")
    assert _set(cli, path)["policy"]["threshold"] == 5.0


def test_show_redirected_to_a_file_sets_again(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(cli("policy", "show", REF).stdout)
    assert path.read_text().startswith(f"# The analysis policy of {REF}")
    before = cli("policy", "show", REF, "--json").json()
    after = _set(cli, path)
    assert (after["policy"], after["digest"]) == (before["policy"], before["digest"])


def test_show_as_json_sets_again(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    shown = cli("policy", "show", REF, "--json").json()
    shown["policy"]["epsilon"]["per_query"] = 0.75
    path.write_text(json.dumps(shown))
    after = _set(cli, path)
    assert after["policy"]["epsilon"]["per_query"] == 0.75
    assert after["policy"]["delta"] == shown["policy"]["delta"]
