"""`entrepot join overlap` with odd arguments: a refusal with its rule and exit code, no
traceback, nothing spent, and every refusal of a named dataset in the log."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.exchange.join_world import CONSUMER, PAYMENTS, VISITS, JoinWorld
from typer.testing import CliRunner

from entrepot.cli.app import app
from entrepot.errors import ExitCode
from entrepot.exchange.node import Node
from entrepot.settings import Settings


@pytest.fixture
def world(tmp_path: Path) -> Iterator[JoinWorld]:
    made = JoinWorld(tmp_path / "node")
    made.publish(
        [("AB0001", "910101", "I"), ("AB0002", "910102", "I")],
        [("AB0001", "910101", 3.0), ("AB0008", "910101", 1.0)],
    )
    made.close()
    return made


def _overlap(
    world: JoinWorld, left: str, right: str, *options: str
) -> subprocess.CompletedProcess[str]:
    args = ["join", "overlap", left, right, "--home", str(world.home), "--as", CONSUMER]
    return subprocess.run(
        [sys.executable, "-m", "entrepot", *args, *options, "--json"],
        capture_output=True,
        text=True,
        check=False,
    )


def _spent(world: JoinWorld) -> list[float]:
    budgets = CliRunner().invoke(
        app, ["budget", "--home", str(world.home), "--as", CONSUMER, "--json"]
    )
    assert budgets.exit_code == 0, budgets.output
    return [b["epsilon_spent"] for b in json.loads(budgets.stdout)]


def _joins(world: JoinWorld) -> list[dict[str, Any]]:
    node = Node.open(Settings(home=world.home, token_hash_memory_kib=1024))
    try:
        return [e for _, e in node.log.entries() if e.get("kind") == "join"]
    finally:
        node.close()


def test_an_unknown_dataset_is_not_found_and_the_probe_is_logged(world: JoinWorld) -> None:
    missing = _overlap(world, VISITS, "acme-pay/nothing", "-e", "0.5")
    assert missing.returncode == ExitCode.NOT_FOUND, missing.stderr
    assert "Traceback" not in missing.stderr
    assert json.loads(missing.stdout)["error"]["rule"] == "unknown_dataset"
    [entry] = _joins(world)
    assert entry["outcome"] == "refused"
    assert entry["datasets"] == [VISITS, "acme-pay/nothing"]
    assert not any(_spent(world))
    # The log lists the refusal beside answers, which name their datasets with versions.
    for options in ((), ("--dataset", "acme-pay/nothing")):
        listed = CliRunner().invoke(
            app, ["audit", "log", "--home", str(world.home), "--json", *options]
        )
        assert listed.exit_code == 0, listed.output
        [refused] = [e for e in json.loads(listed.stdout) if e["kind"] == "join"]
        assert refused["outcome"] == "refused"
    shown = CliRunner().invoke(app, ["audit", "log", "--home", str(world.home), "--kind", "join"])
    assert shown.exit_code == 0, shown.output
    assert "acme-pay/nothing" in shown.stdout


@pytest.mark.parametrize(
    ("epsilon", "code"),
    [
        ("0", ExitCode.INVALID),
        ("1e-320", ExitCode.INVALID),
        ("inf", ExitCode.INVALID),
        ("nan", ExitCode.USAGE),
        ("-1", ExitCode.USAGE),
        ("1e9", ExitCode.REFUSED),
    ],
)
def test_an_epsilon_out_of_bounds_is_refused_and_spends_nothing(
    world: JoinWorld, epsilon: str, code: ExitCode
) -> None:
    refused = _overlap(world, VISITS, PAYMENTS, "-e", epsilon)
    assert refused.returncode == code, refused.stderr
    assert "Traceback" not in refused.stderr
    assert not any(_spent(world))


def test_the_same_dataset_on_both_sides_is_a_self_join(world: JoinWorld) -> None:
    refused = _overlap(world, PAYMENTS, PAYMENTS, "-e", "0.5")
    assert refused.returncode == ExitCode.REFUSED, refused.stderr
    assert json.loads(refused.stdout)["error"]["rule"] == "self_join"
    assert not any(_spent(world))
