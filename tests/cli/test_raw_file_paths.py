"""What a raw file's path may be: a regular file named directly, and quoted sparingly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.vault.cli_runner import run_cli
from tests.vault.visits import write_visits_csv

from entrepot.errors import ExitCode
from entrepot.exchange.node import Node
from entrepot.vault import add_provider
from entrepot.vault.models import Version

SECRET = "root:x:0:0:the-secret-first-line:/root:/bin/bash"


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "private" / "passwd"
    path.parent.mkdir()
    path.write_text(SECRET + "\nmore:secret:lines\n")
    return path


def validate(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, source: Path
) -> tuple[int, str]:
    result = run_cli(
        capsys, monkeypatch, "dataset", "validate", str(source), "--standard", "health.visit"
    )
    return result.code, result.errors


def test_a_symbolic_link_is_refused_and_its_target_never_read(
    tmp_path: Path,
    secret: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    link = tmp_path / "visits.csv"
    link.symlink_to(secret)
    code, errors = validate(capsys, monkeypatch, link)
    assert code == ExitCode.INVALID
    assert "is a symbolic link, not a regular file" in errors
    assert "secret" not in errors


def test_a_link_to_a_valid_table_is_refused_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = write_visits_csv(tmp_path / "real.csv", 5)
    link = tmp_path / "visits.csv"
    link.symlink_to(real)
    assert validate(capsys, monkeypatch, real)[0] == 0
    code, errors = validate(capsys, monkeypatch, link)
    assert code == ExitCode.INVALID
    assert "symbolic link" in errors


@pytest.mark.timeout(30)
def test_a_pipe_is_refused_without_waiting_for_a_writer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo = tmp_path / "visits.csv"
    os.mkfifo(fifo)
    code, errors = validate(capsys, monkeypatch, fifo)
    assert code == ExitCode.INVALID
    assert "is a pipe, socket or device, not a regular file" in errors


def test_a_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, errors = validate(capsys, monkeypatch, tmp_path)
    assert code == ExitCode.INVALID
    assert "is a directory, not a regular file" in errors


def test_a_file_that_is_no_table_is_quoted_only_in_short_escaped_excerpts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    long_name = "k" * 30 + "\x1b]0;title\x07" + "s" * 200
    source = tmp_path / "keys.csv"
    source.write_text(",".join([long_name, *(f"c{i}" for i in range(40))]) + "\n1\n")
    code, errors = validate(capsys, monkeypatch, source)
    assert code == ExitCode.INVALID
    assert "k" * 30 + "\\x1b]0;" in errors
    assert "s" * 40 not in errors
    # The long name and c0 to c10: twelve names of 41.
    assert "c10 and 29 more" in errors
    assert "c11" not in errors
    assert "\x1b" not in errors


def test_a_publish_through_a_link_publishes_nothing(
    node: Node,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
    link = tmp_path / "visits.csv"
    link.symlink_to(write_visits_csv(tmp_path / "real.csv", 5))
    result = run_cli(
        capsys,
        monkeypatch,
        "dataset",
        "publish",
        str(link),
        "--provider",
        "riverside-hospitals",
        "--standard",
        "health.visit",
        "--title",
        "Outpatient visits 2025",
        "--home",
        str(node.home),
    )
    assert result.code == ExitCode.INVALID
    assert "symbolic link" in result.errors
    with node.db.read() as session:
        assert session.scalars(select(Version.id)).all() == []
