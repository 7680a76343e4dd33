from __future__ import annotations

from pathlib import Path

import pytest
from tests.vault.cli_runner import run_cli

from entrepot.errors import ExitCode
from entrepot.exchange.node import Node


@pytest.fixture
def home(node: Node) -> str:
    return str(node.home)


def test_add_then_list_providers(
    home: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    added = run_cli(
        capsys,
        monkeypatch,
        "provider",
        "add",
        "riverside-hospitals",
        "--name",
        "Riverside Hospitals",
        "--home",
        home,
        "--json",
    )
    assert added.code == 0, added.stderr
    assert added.json()["slug"] == "riverside-hospitals"
    listed = run_cli(capsys, monkeypatch, "provider", "list", "--home", home, "--json")
    assert [(p["slug"], p["name"], p["datasets"]) for p in listed.json()] == [
        ("riverside-hospitals", "Riverside Hospitals", 0)
    ]
    shown = run_cli(capsys, monkeypatch, "provider", "list", "--home", home)
    assert "Riverside Hospitals" in shown.stdout


def test_a_provider_is_added_once(
    home: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ("provider", "add", "riverside-hospitals", "--name", "Riverside", "--home", home)
    assert run_cli(capsys, monkeypatch, *args).code == 0
    again = run_cli(capsys, monkeypatch, *args)
    assert again.code == ExitCode.CONFLICT
    assert "already exists" in again.errors
    assert "Traceback" not in again.errors


@pytest.mark.parametrize("slug", ["Riverside", "river side", "river--side", "river_side", "x" * 65])
def test_a_bad_slug_is_refused_with_a_hint(
    home: str, slug: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_cli(capsys, monkeypatch, "provider", "add", slug, "--name", "R", "--home", home)
    assert result.code == ExitCode.INVALID
    assert "not a valid slug" in result.errors
    assert "hint:" in result.errors


def test_listing_needs_a_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_cli(capsys, monkeypatch, "provider", "list", "--home", str(tmp_path / "none"))
    assert result.code == ExitCode.NOT_FOUND
    assert "entrepot init" in result.errors
