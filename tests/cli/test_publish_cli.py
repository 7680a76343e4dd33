from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from tests.vault.cli_runner import Cli, Result, run_cli
from tests.vault.visits import HEADER, visit_rows, write_visits_csv

from entrepot.errors import ExitCode
from entrepot.exchange.node import Node
from entrepot.settings import Settings
from entrepot.vault import add_provider
from entrepot.vault.models import Version

REF = "riverside-hospitals/outpatient-visits"


@pytest.fixture
def home(node: Node) -> str:
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
    return str(node.home)


@pytest.fixture
def cli(home: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    def run(*args: str) -> Result:
        return run_cli(capsys, monkeypatch, *args, "--home", home)

    return run


def publish_args(source: Path, *extra: str) -> tuple[str, ...]:
    return (
        "dataset",
        "publish",
        str(source),
        "--provider",
        "riverside-hospitals",
        "--standard",
        "health.visit",
        "--title",
        "Outpatient visits 2025",
        *extra,
    )


def test_publish_twice_adds_a_version(cli: Cli, tmp_path: Path) -> None:
    first = cli(*publish_args(write_visits_csv(tmp_path / "a.csv", 30, seed=1), "--json"))
    assert first.code == 0, first.stderr
    assert (first.json()["dataset"], first.json()["version"], first.json()["rows"]) == (REF, 1, 30)
    second = cli(*publish_args(write_visits_csv(tmp_path / "b.csv", 35, seed=2)))
    assert second.code == 0, second.stderr
    assert f"published {REF} version 2: 35 rows" in second.output
    versions = cli("dataset", "versions", REF, "--json")
    assert [(v["version"], v["rows"]) for v in versions.json()] == [(1, 30), (2, 35)]
    assert len({v["sha256"] for v in versions.json()}) == 2


def test_reject_shows_the_report_and_publishes_nothing(cli: Cli, tmp_path: Path) -> None:
    source = write_visits_csv(tmp_path / "bad.csv", 30, bad=2)
    shown = cli(*publish_args(source))
    assert shown.code == ExitCode.INVALID
    assert "minimum" in shown.output
    assert "cost" in shown.output
    assert "nothing was published" in shown.errors
    assert "--on-error quarantine" in shown.errors
    as_json = cli(*publish_args(source, "--json"))
    assert as_json.code == ExitCode.INVALID
    error = as_json.json()["error"]
    assert error["code"] == "validation_failed"
    assert (error["report"]["rows_total"], error["report"]["rows_invalid"]) == (30, 2)
    assert cli("catalog", "list", "--json").json() == []


def test_quarantine_counts_add_up(cli: Cli, tmp_path: Path, home: str) -> None:
    source = write_visits_csv(tmp_path / "bad.csv", 30, bad=2)
    result = cli(*publish_args(source, "--on-error", "quarantine", "--json"))
    assert result.code == 0, result.stderr
    out = result.json()
    assert (out["rows_total"], out["rows"], out["quarantined"]) == (30, 28, 2)
    assert out["report"]["violations"] == [{"rule": "minimum", "column": "cost", "count": 2}]
    people = cli(*publish_args(source, "--on-error", "quarantine", "--force"))
    assert "quarantined 2 invalid rows" in people.output
    assert "28 + 2 = 30 rows read" in people.output
    assert len(list((Path(home) / "quarantine").rglob("*.parquet"))) == 2


def test_dataset_slug_and_description_can_be_given(cli: Cli, tmp_path: Path) -> None:
    source = write_visits_csv(tmp_path / "a.csv", 10)
    args = publish_args(source, "--dataset", "visits", "--description", "By district", "--json")
    result = cli(*args)
    assert result.code == 0, result.stderr
    assert result.json()["dataset"] == "riverside-hospitals/visits"
    page = cli("catalog", "show", "riverside-hospitals/visits", "--json").json()
    assert page["description"] == "By district"


def test_publish_with_a_mapping_keeps_it_with_the_version(
    cli: Cli, tmp_path: Path, node: Node
) -> None:
    source = tmp_path / "local.csv"
    with source.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow(["VisitNo", *HEADER[1:]])
        writer.writerows(visit_rows(12))
    mapping = tmp_path / "riverside.yaml"
    mapping.write_text('source:\n  delimiter: ";"\ncolumns:\n  visit_id: {from: VisitNo}\n')
    result = cli(*publish_args(source, "--mapping", str(mapping), "--json"))
    assert result.code == 0, result.stderr
    assert result.json()["rows"] == 12
    with node.db.read() as session:
        stored = session.scalars(select(Version.mapping)).all()
    assert stored == [mapping.read_text()]


@pytest.mark.parametrize(
    ("change", "message", "code"),
    [
        ({"provider": "nobody"}, "entrepot provider add nobody", ExitCode.NOT_FOUND),
        ({"standard": "no.such"}, "known standards", ExitCode.NOT_FOUND),
        ({"source": "missing.csv"}, "no file at", ExitCode.NOT_FOUND),
        ({"title": "   "}, "needs a title", ExitCode.INVALID),
    ],
)
def test_bad_arguments_are_explained(
    cli: Cli, tmp_path: Path, change: dict[str, str], message: str, code: ExitCode
) -> None:
    source = write_visits_csv(tmp_path / "a.csv", 5)
    args = [
        "dataset",
        "publish",
        str(tmp_path / change.get("source", source.name)),
        "--provider",
        change.get("provider", "riverside-hospitals"),
        "--standard",
        change.get("standard", "health.visit"),
        "--title",
        change.get("title", "Visits"),
    ]
    result = cli(*args)
    assert result.code == code
    assert message in result.errors
    assert "Traceback" not in result.stderr


def test_the_console_script_reports_invalid_rows_without_a_traceback(
    home: str, tmp_path: Path
) -> None:
    source = write_visits_csv(tmp_path / "bad.csv", 20, bad=1)
    result = subprocess.run(
        [sys.executable, "-m", "entrepot", *publish_args(source), "--home", home],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == ExitCode.INVALID
    assert "error:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list((Path(home) / "vaults").rglob("*.parquet"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (",".join(HEADER).encode() + b"\n", "no data rows"),
        (b"\x00\x01\x02binary\x00" * 100, "binary file"),
    ],
)
def test_unreadable_files_publish_nothing(
    cli: Cli, tmp_path: Path, home: str, content: bytes, message: str
) -> None:
    source = tmp_path / "visits.csv"
    source.write_bytes(content)
    result = cli(*publish_args(source))
    assert result.code == ExitCode.INVALID
    assert message in result.errors
    # Rich may break a long path anywhere: look for the name with all spacing removed.
    assert "visits.csv" in "".join(result.stderr.split())
    assert cli("catalog", "list", "--json").json() == []
    assert not [p for p in (Path(home) / "vaults").rglob("*") if p.is_file()]


def test_verify_removes_leftovers_and_catches_tampering(
    cli: Cli, tmp_path: Path, home: str
) -> None:
    assert cli(*publish_args(write_visits_csv(tmp_path / "a.csv", 10))).code == 0
    folder = Path(home) / "vaults" / "riverside-hospitals" / "outpatient-visits"
    (folder / "2.parquet").write_bytes(b"unclaimed")
    clean = cli("dataset", "verify", "--json")
    assert clean.code == 0
    assert clean.json() == {
        "removed": ["vaults/riverside-hospitals/outpatient-visits/2.parquet"],
        "problems": [],
    }
    published = folder / "1.parquet"
    published.write_bytes(published.read_bytes()[:-1] + b"\x00")
    tampered = cli("dataset", "verify")
    assert tampered.code == ExitCode.VERIFY_FAILED
    assert "SHA-256 does not match" in tampered.output


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_verify_names_a_version_whose_quarantined_rows_are_gone(
    cli: Cli, tmp_path: Path, home: str, damage: str
) -> None:
    source = write_visits_csv(tmp_path / "a.csv", 20, bad=3)
    assert cli(*publish_args(source, "--on-error", "quarantine")).code == 0
    kept = Path(home) / "quarantine" / "riverside-hospitals" / "outpatient-visits" / "1.parquet"
    if damage == "delete":
        kept.unlink()
    else:
        # Valid Parquet, with one rejected row fewer than the catalog counts.
        table = pq.read_table(kept)
        pq.write_table(table.slice(1), kept)
    found = cli("dataset", "verify", "--json")
    assert found.code == ExitCode.VERIFY_FAILED
    [problem] = found.json()["problems"]
    assert problem["message"].startswith(f"version 1 of {REF}: its quarantined rows")
    assert "quarantine/riverside-hospitals/outpatient-visits/1.parquet" in problem["message"]


def test_other_rejected_rows_beside_the_same_valid_rows_make_a_version_that_keeps_them(
    cli: Cli, tmp_path: Path, home: str
) -> None:
    valid = [",".join(row) for row in visit_rows(10, seed=3)]
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text(
        "\n".join([",".join(HEADER), *valid, "X1,P-00001,2025-01-01,910101,1,00-04,I,-1,1"]) + "\n"
    )
    second.write_text(
        "\n".join([",".join(HEADER), *valid, "X2,P-00002,2025-02-02,910102,2,05-14,II,1,99"]) + "\n"
    )
    args = ("--on-error", "quarantine", "--json")
    assert cli(*publish_args(first, *args)).json()["version"] == 1
    again = cli(*publish_args(second, *args)).json()
    # As many rows rejected, but not the same ones: they are kept, in a version of their own.
    assert again["version"] == 2
    folder = Path(home) / "quarantine" / "riverside-hospitals" / "outpatient-visits"
    kept = pq.read_table(folder / "2.parquet").to_pylist()
    assert [(r["visit_id"], r["reasons"]) for r in kept] == [("X2", ["maximum:duration_hours"])]
    # The very same file again gives back the version it made.
    assert cli(*publish_args(second, *args)).json()["version"] == 2


def test_a_published_version_is_written_to_the_transparency_log(
    cli: Cli, tmp_path: Path, home: str
) -> None:
    source = write_visits_csv(tmp_path / "a.csv", 20, bad=1)
    out = cli(*publish_args(source, "--on-error", "quarantine", "--json")).json()
    refused = cli(*publish_args(write_visits_csv(tmp_path / "bad.csv", 5, bad=1)))
    assert refused.code == ExitCode.INVALID
    node = Node.open(Settings(home=Path(home)))
    try:
        logged = node.log.search(kind="dataset_version")
    finally:
        node.close()
    assert len(logged) == 1  # the refused publish left no entry
    (_, entry) = logged[0]
    assert entry["actor"] == "org:riverside-hospitals"
    assert entry["dataset"] == REF
    assert entry["version"] == 1
    # The log is public: a keyed commitment, not the file's hash, and no row count.
    assert entry["content_commitment"] != out["sha256"]
    assert not {"sha256", "rows", "rows_rejected"} & set(entry)


def test_the_same_rows_again_return_the_version_they_made(cli: Cli, tmp_path: Path) -> None:
    source = write_visits_csv(tmp_path / "a.csv", 30, seed=1)
    first = cli(*publish_args(source, "--json")).json()
    retried = cli(*publish_args(source, "--json"))
    assert retried.code == 0, retried.stderr
    assert (retried.json()["version"], retried.json()["sha256"]) == (1, first["sha256"])
    assert [v["version"] for v in cli("dataset", "versions", REF, "--json").json()] == [1]
    forced = cli(*publish_args(source, "--force", "--json")).json()
    assert (forced["version"], forced["sha256"]) == (2, first["sha256"])
