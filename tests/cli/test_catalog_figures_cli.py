"""The local CLI acting `--as` an organization shows what that organization may see."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.vault.cli_runner import Cli, Result, run_cli
from tests.vault.visits import write_visits_csv

from entrepot.exchange.accounts import LOCAL, Accounts
from entrepot.exchange.node import Node
from entrepot.settings import Settings
from entrepot.standards import get
from entrepot.vault import LocalVault, OnError, PublishRequest, add_provider

REF = "riverside-hospitals/outpatient-visits"
FIGURES = ("rows", "rows_rejected", "size_bytes", "sha256", "quality")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One dataset with 3 quarantined rows, a consumer and a second provider."""
    root = tmp_path_factory.mktemp("catalog-figures-cli")
    node = Node.init(Settings(home=root / "node"))
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
    add_provider(node.db, "harbor-clinics", "Harbor Clinics")
    Accounts(node.db, node.settings, log=node.log).create(LOCAL, "city-health-bureau", "consumer")
    source = write_visits_csv(root / "visits.csv", 40, bad=3)
    request = PublishRequest(
        provider="riverside-hospitals",
        standard=get("health.visit"),
        title="Outpatient visits 2025",
        on_error=OnError.QUARANTINE,
        filename=source.name,
    )
    with source.open("rb") as data:
        LocalVault.of(node).publish(request, data)
    node.close()
    return root / "node"


@pytest.fixture
def cli(home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    def run(*args: str) -> Result:
        return run_cli(capsys, monkeypatch, *args, "--home", str(home))

    return run


@pytest.mark.parametrize("org", ["city-health-bureau", "harbor-clinics"])
def test_a_non_owner_reads_no_figure_in_json(cli: Cli, org: str) -> None:
    page = cli("catalog", "show", REF, "--as", org, "--json").json()
    assert (page["rows"], page["quality"]) == (None, None)
    versions = cli("dataset", "versions", REF, "--as", org, "--json").json()
    assert versions == page["versions"]
    for version in versions:
        assert {key: version[key] for key in FIGURES} == dict.fromkeys(FIGURES)
    for command in (("list",), ("search", "visits")):
        (summary,) = cli("catalog", *command, "--as", org, "--json").json()
        assert summary["rows"] is None


def test_a_non_owner_sees_no_figure_in_the_tables(cli: Cli) -> None:
    owner = cli("catalog", "show", REF, "--as", "riverside-hospitals")
    sha256 = cli("dataset", "versions", REF, "--json").json()[0]["sha256"]
    assert sha256 in owner.output
    for heading in ("Completeness", "Validation", "rejected", "37"):
        assert heading in owner.output
    page = cli("catalog", "show", REF, "--as", "city-health-bureau")
    versions = cli("dataset", "versions", REF, "--as", "city-health-bureau")
    for shown in (page, versions):
        assert shown.code == 0, shown.stderr
        assert "Outpatient visits 2025" in shown.output
        assert "shown to the dataset's provider only" in shown.output
        for hidden in ("Completeness", "Validation", "rejected", "bytes", sha256[:16]):
            assert hidden not in shown.output
    listed = cli("catalog", "list", "--as", "city-health-bureau")
    assert " 37 " not in listed.output


def test_the_owner_and_the_nodes_holder_read_the_same_figures(cli: Cli) -> None:
    owner = cli("catalog", "show", REF, "--as", "riverside-hospitals", "--json").json()
    holder = cli("catalog", "show", REF, "--json").json()
    assert owner == holder
    assert (owner["rows"], owner["versions"][0]["rows_rejected"]) == (37, 3)
    assert owner["quality"]["validation"]["rows_invalid"] == 3
