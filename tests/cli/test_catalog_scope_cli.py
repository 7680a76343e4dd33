"""`entrepot dataset publish --region --sector` declares a dataset's scope, and
`entrepot catalog search` and `list` filter on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.vault.cli_runner import Cli, Result, run_cli
from tests.vault.visits import write_visits_csv

from entrepot.errors import ExitCode
from entrepot.exchange.node import Node
from entrepot.vault import add_provider

# (dataset, regions, sector) each publish declares.
DECLARED = (
    ("outpatient-visits", ("910000",), "Q"),
    ("clinic-visits", ("920000", "910100"), "Q"),
    ("ward-visits", ("920000",), "H"),
)


@pytest.fixture
def cli(node: Node, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")

    def run(*args: str) -> Result:
        return run_cli(capsys, monkeypatch, *args, "--home", str(node.home))

    return run


def publish(cli: Cli, source: Path, dataset: str, *scope: str) -> Result:
    return cli(
        "dataset",
        "publish",
        str(source),
        "--provider",
        "riverside-hospitals",
        "--standard",
        "health.visit",
        "--title",
        "Visits 2025",
        "--dataset",
        dataset,
        *scope,
        "--json",
    )


@pytest.fixture
def published(cli: Cli, tmp_path: Path) -> Cli:
    source = write_visits_csv(tmp_path / "visits.csv", 30)
    for dataset, regions, sector in DECLARED:
        flags = [arg for code in regions for arg in ("--region", code)]
        result = publish(cli, source, dataset, *flags, "--sector", sector)
        assert result.code == 0, result.stderr
    return cli


def names(result: Result) -> list[str]:
    assert result.code == 0, result.stderr
    return sorted(d["dataset"].partition("/")[2] for d in result.json())


@pytest.mark.parametrize(
    ("filters", "kept"),
    [
        ((), ["clinic-visits", "outpatient-visits", "ward-visits"]),
        (("--region", "920000"), ["clinic-visits", "ward-visits"]),
        (("--region", "910000", "--region", "910100"), ["clinic-visits", "outpatient-visits"]),
        (("--sector", "Q"), ["clinic-visits", "outpatient-visits"]),
        (("--region", "920000", "--sector", "Q"), ["clinic-visits"]),
        (("--region", "930000"), []),
        (("--sector", "K", "--sector", "H"), ["ward-visits"]),
    ],
)
def test_search_and_list_keep_exactly_the_matching_datasets(
    published: Cli, filters: tuple[str, ...], kept: list[str]
) -> None:
    assert names(published("catalog", "search", "visits", *filters, "--json")) == kept
    assert names(published("catalog", "list", *filters, "--json")) == kept


def test_tables_and_the_page_show_the_scope(published: Cli) -> None:
    listed = published("catalog", "search", "visits", "--region", "910100")
    assert "riverside-hospitals/clinic-visits" in listed.output
    assert "920000 910100" in listed.output
    shown = published("catalog", "show", "riverside-hospitals/clinic-visits").output
    assert "regions Qinghe Province (920000), Yunping City (910100)" in shown
    assert "sector Health and social work (Q)" in shown
    assert "nothing matches" in published("catalog", "search", "visits", "--sector", "A").output


def test_an_unknown_code_is_refused_with_where_to_look(cli: Cli, tmp_path: Path) -> None:
    source = write_visits_csv(tmp_path / "visits.csv", 30)
    refused = publish(cli, source, "visits", "--region", "123")
    assert refused.code == ExitCode.INVALID
    error = refused.json()["error"]
    assert "region '123'" in error["message"]
    assert "entrepot standard codes region.province" in error["hint"]
    refused = publish(cli, source, "visits", "--sector", "Health")
    assert refused.code == ExitCode.INVALID
    assert "sector 'Health'" in refused.json()["error"]["message"]
    assert names(cli("catalog", "list", "--json")) == []
