from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.vault.cli_runner import Cli, Result, run_cli
from tests.vault.visits import write_visits_csv

from entrepot.errors import ExitCode
from entrepot.exchange.node import Node
from entrepot.settings import Settings
from entrepot.standards import get
from entrepot.vault import LocalVault, OnError, PublishRequest, add_provider

REF = "riverside-hospitals/outpatient-visits"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A node with one dataset of two versions, the second with 3 quarantined rows."""
    root = tmp_path_factory.mktemp("catalog-cli")
    node = Node.init(Settings(home=root / "node"))
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
    vault = LocalVault.of(node)
    for number, bad in ((1, 0), (2, 3)):
        source = write_visits_csv(root / f"{number}.csv", 40, bad=bad, seed=number)
        request = PublishRequest(
            provider="riverside-hospitals",
            standard=get("health.visit"),
            title=f"Outpatient visits {2024 + number}",
            description="Outpatient visits by district",
            on_error=OnError.QUARANTINE,
            filename=source.name,
        )
        with source.open("rb") as data:
            vault.publish(request, data)
    node.close()
    return root / "node"


@pytest.fixture
def cli(home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    def run(*args: str) -> Result:
        return run_cli(capsys, monkeypatch, *args, "--home", str(home))

    return run


def test_search_finds_the_dataset(cli: Cli) -> None:
    found = cli("catalog", "search", "visits district", "--json").json()
    assert [(d["dataset"], d["latest_version"], d["rows"]) for d in found] == [(REF, 2, 37)]
    assert found[0]["sql_name"] == "riverside_hospitals.outpatient_visits"
    shown = cli("catalog", "search", "visits district")
    assert REF in shown.output
    assert "nothing matches" in cli("catalog", "search", "payments").output


@pytest.mark.parametrize("query", ['"', "NEAR(", "*", 'visits" OR "x', ""])
def test_hostile_search_text_is_not_an_error(cli: Cli, query: str) -> None:
    result = cli("catalog", "search", query, "--json")
    assert result.code == 0, result.stderr
    assert isinstance(result.json(), list)


def test_list(cli: Cli) -> None:
    assert [d["dataset"] for d in cli("catalog", "list", "--json").json()] == [REF]
    assert cli("catalog", "list", "--provider", "nobody", "--json").json() == []
    assert "Outpatient visits" in cli("catalog", "list").output


def test_show_gives_schema_versions_and_quality(cli: Cli) -> None:
    page = cli("catalog", "show", REF, "--json").json()
    assert page["standard"]["name"] == "health.visit"
    assert page["standard"]["privacy_unit"] == "patient_id"
    assert {c["name"]: c["role"] for c in page["schema"]}["district"] == "dimension"
    assert [(v["version"], v["rows"], v["rows_rejected"]) for v in page["versions"]] == [
        (1, 40, 0),
        (2, 37, 3),
    ]
    assert all(len(v["sha256"]) == 64 for v in page["versions"])
    assert page["quality"]["completeness"]["duration_hours"] < 1
    assert page["quality"]["validation"]["violations"] == [
        {"rule": "minimum", "column": "cost", "count": 3}
    ]
    assert "rows" not in page["quality"]["validation"]
    people = cli("catalog", "show", REF)
    for heading in ("Schema", "Versions", "Completeness", "Validation"):
        assert heading in people.output
    assert "-5.00" not in people.stdout
    assert "-5.00" not in json.dumps(page)


def test_show_an_unknown_dataset(cli: Cli) -> None:
    missing = cli("catalog", "show", "riverside-hospitals/nothing")
    assert missing.code == ExitCode.NOT_FOUND
    assert "catalog search" in missing.errors
    malformed = cli("catalog", "show", "nothing")
    assert malformed.code == ExitCode.INVALID
    assert "<provider>/<dataset>" in malformed.errors


def test_export_dcat(cli: Cli, tmp_path: Path) -> None:
    document = cli("catalog", "export", "--format", "dcat").json()
    assert document["@type"] == "dcat:Catalog"
    (dataset,) = document["dcat:dataset"]
    assert dataset["@id"] == f"http://127.0.0.1:8000/v1/catalog/datasets/{REF}"
    assert dataset["dcat:version"] == "2"
    target = tmp_path / "catalog.jsonld"
    written = cli("catalog", "export", "--base-url", "https://x.example", "--output", str(target))
    assert written.code == 0
    assert json.loads(target.read_text())["@id"] == "https://x.example/v1/catalog/dcat"
    assert cli("catalog", "export", "--format", "csv").code == ExitCode.USAGE
