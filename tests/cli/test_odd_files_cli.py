"""`entrepot dataset validate` and `publish` on odd files and mappings: a precise error
and nothing stored, or the rows exactly as written."""

from __future__ import annotations

import io
import os
from pathlib import Path

import duckdb
import pytest
from sqlalchemy import select
from tests.vault.cli_runner import Cli, Result, run_cli

from entrepot.errors import ExitCode, ValidationFailed
from entrepot.exchange.node import Node
from entrepot.standards import get
from entrepot.vault import LocalVault, OnError, PublishRequest, add_provider
from entrepot.vault.models import Version

HEADER = "visit_id,patient_id,visit_date,district,sex,age_band,diagnosis_group,cost,duration_hours"
REF = "riverside-hospitals/outpatient-visits"


def _rows(count: int) -> str:
    return "".join(f"V{i},P-0001,2025-03-01,910101,1,25-34,X,1,1.5\n" for i in range(count))


@pytest.fixture
def home(node: Node) -> str:
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
    return str(node.home)


@pytest.fixture
def cli(home: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    def run(*args: str) -> Result:
        return run_cli(capsys, monkeypatch, *args, "--home", home)

    return run


def _publish(cli: Cli, source: Path, *extra: str) -> Result:
    return cli(
        "dataset",
        "publish",
        str(source),
        "--provider",
        "riverside-hospitals",
        "--standard",
        "health.visit",
        "--title",
        "Outpatient visits 2025",
        "--on-error",
        "quarantine",
        *extra,
    )


def _left_behind(home: str) -> list[Path]:
    return [
        p for p in Path(home).rglob("*") if p.name.startswith(".tmp-") or p.suffix == ".parquet"
    ]


def test_mixed_line_endings_are_named_with_their_line(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "mixed.csv"
    source.write_bytes(f"{HEADER}\r\n".encode() + _rows(40).encode())
    result = cli("dataset", "validate", str(source), "--standard", "health.visit")
    assert result.code == ExitCode.INVALID
    assert f"{source}, line 2: this line ends with LF where the lines before end with CRLF" in (
        result.errors
    )
    assert "one kind of line ending" in result.errors
    assert "Traceback" not in result.errors + result.output


def test_a_nul_byte_deep_in_the_file_is_quarantined_with_its_reason(
    cli: Cli, tmp_path: Path
) -> None:
    source = tmp_path / "nul.csv"
    source.write_bytes(
        f"{HEADER}\n{_rows(3000)}".encode() + b"V9\x00,P-0001,2025-03-01,910101,1,25-34,X,1,1.5\n"
    )
    result = _publish(cli, source, "--json")
    assert result.code == 0, result.errors
    report = result.json()["report"]
    assert (report["rows_total"], report["rows_invalid"]) == (3001, 1)
    assert [(r["line"], r["reasons"]) for r in report["rows"]] == [(3002, ["type:visit_id"])]


def test_unquoted_codes_in_a_mapping_are_published_as_written(
    cli: Cli, tmp_path: Path, node: Node
) -> None:
    source = tmp_path / "local.csv"
    source.write_text(
        "vid,pid,visit_date,qx,sex,age_band,diagnosis_group,cost,duration_hours\n"
        "V1,P-0001,2025-03-01,0101,1,25-34,X,1,1.5\n"
        "V2,P-0002,2025-03-02,0102,2,25-34,X,2,1.5\n"
    )
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "columns:\n  visit_id: vid\n  patient_id: pid\n"
        "  district: {from: qx, codes: {0101: 910101, 0102: 910102}}\n"
    )
    result = _publish(cli, source, "--mapping", str(mapping), "--json")
    assert result.code == 0, result.stderr
    assert (result.json()["rows"], result.json()["quarantined"]) == (2, 0)
    with node.db.read() as session:
        stored = session.scalars(select(Version.path)).one()
    rows = duckdb.connect().execute(
        f"SELECT district FROM '{node.home / stored}' ORDER BY visit_id"
    )
    assert rows.fetchall() == [("910101",), ("910102",)]


def test_a_date_format_duckdb_cannot_read_names_the_key(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "v.csv"
    source.write_text(f"{HEADER}\n{_rows(3)}")
    mapping = tmp_path / "m.yaml"
    mapping.write_text("columns:\n  visit_date: {from: visit_date, date_format: '%Y-%Q'}\n")
    result = _publish(cli, source, "--mapping", str(mapping))
    assert result.code == ExitCode.INVALID
    assert f"{mapping}: columns.visit_date.date_format: '%Y-%Q' is not a date format" in (
        result.errors
    )


def test_a_mapping_that_is_a_pipe_is_refused_without_waiting(
    cli: Cli, tmp_path: Path, home: str
) -> None:
    source = tmp_path / "v.csv"
    source.write_text(f"{HEADER}\n{_rows(3)}")
    pipe = tmp_path / "m.yaml"
    os.mkfifo(pipe)  # no writer: reading it would wait for ever
    result = _publish(cli, source, "--mapping", str(pipe))
    assert result.code == ExitCode.INVALID
    assert "cannot be read as a mapping (not a regular file)" in result.errors
    assert _left_behind(home) == []


def test_a_streamed_upload_is_reported_under_the_name_it_was_sent_with(
    node: Node, home: str
) -> None:
    # A stream is spooled under a temporary name, which reports must not show.
    vault = LocalVault.of(node)
    data = f"{HEADER}\n{_rows(3)}V9,P-0001,2025-03-01,910101,1,25-34,X,-5,1.5\n".encode()

    def request(on_error: OnError) -> PublishRequest:
        return PublishRequest(
            provider="riverside-hospitals",
            standard=get("health.visit"),
            title="Outpatient visits 2025",
            on_error=on_error,
            filename="visits-march.csv",
        )

    with pytest.raises(ValidationFailed) as refused:
        vault.publish(request(OnError.REJECT), io.BytesIO(data))
    assert refused.value.details["report"]["source"] == "visits-march.csv"
    published = vault.publish(request(OnError.QUARANTINE), io.BytesIO(data))
    assert published.report["source"] == "visits-march.csv"
    with node.db.read() as session:
        kept = session.scalars(select(Version.report)).one()
    assert kept["source"] == "visits-march.csv"
