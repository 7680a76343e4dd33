"""Odd receipts, heads and exports given to `entrepot receipt` and `entrepot audit`:
each is refused naming what failed, never with an internal error, never as valid."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.api.conftest import running
from typer.testing import CliRunner

from entrepot.cli.app import app
from entrepot.errors import EntrepotError, ExitCode
from entrepot.exchange.node import Node
from entrepot.settings import Settings
from entrepot.transparency import (
    DatasetVersion,
    QueryOpening,
    ReceiptFields,
    issue_receipt,
    make_entry,
)

DEEP = "[" * 100_000 + "]" * 100_000


def entrepot(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "entrepot", *args], capture_output=True, text=True, check=False
    )


def refused(result: subprocess.CompletedProcess[str], code: ExitCode, words: str) -> None:
    assert result.returncode == code, result.stderr
    assert words in result.stderr
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr


@pytest.fixture(scope="module")
def node_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("odd") / "node"
    node = Node.init(Settings(home=home, log_head_every_entries=2))
    fields = ReceiptFields.build(
        "query",
        opening=QueryOpening.fresh("SELECT COUNT(*) FROM visits"),
        answer=b'{"count": 42}',
        epsilon=0.5,
        datasets=[DatasetVersion("riverside/visits", "1", "ab" * 32)],
    )
    for number in range(3):
        node.log.append(fields.entry("acme", purpose=f"planning {number}"))
    index = node.log.append(fields.entry("acme", purpose="planning"))
    receipt = issue_receipt(node.log, index, fields)
    (home / "receipt.json").write_bytes(receipt.to_bytes())
    node.close()
    return home


@pytest.fixture
def receipt(node_home: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((node_home / "receipt.json").read_text())
    return loaded


def write(path: Path, body: Any) -> Path:
    # json.dumps escapes a lone surrogate, so any value written reads back as it was.
    path.write_text(json.dumps(body), encoding="utf-8")
    return path


def test_the_untouched_receipt_verifies(node_home: Path) -> None:
    result = entrepot(
        "receipt", "verify", str(node_home / "receipt.json"), "--home", str(node_home)
    )
    assert result.returncode == 0, result.stderr


def test_a_deeply_nested_receipt_is_refused_as_a_receipt(node_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text(DEEP)
    result = entrepot("receipt", "verify", str(path), "--home", str(node_home))
    refused(result, ExitCode.VERIFY_FAILED, "nested too deeply")
    witnessed = entrepot("receipt", "witness", str(path), "--home", str(node_home))
    refused(witnessed, ExitCode.INVALID, "is not JSON")


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("kind", [], "is not an entrepot.opening/1"),
        ("kind", {"query": 1}, "is not an entrepot.opening/1"),
        ("query_text", "\ud800", "query_text is not valid Unicode text"),
        ("nonce", "\ud800" * 64, "nonce is not"),
    ],
)
def test_an_odd_opening_is_refused_naming_the_opening(
    node_home: Path, receipt: dict[str, Any], tmp_path: Path, field: str, value: Any, words: str
) -> None:
    receipt["opening"][field] = value
    path = write(tmp_path / "receipt.json", receipt)
    result = entrepot("receipt", "verify", str(path), "--home", str(node_home))
    refused(result, ExitCode.VERIFY_FAILED, words)


def test_an_opening_nested_too_deeply_is_refused(
    node_home: Path, receipt: dict[str, Any], tmp_path: Path
) -> None:
    receipt["opening"] = DEEP
    path = write(tmp_path / "receipt.json", receipt)
    result = entrepot("receipt", "verify", str(path), "--home", str(node_home))
    refused(result, ExitCode.VERIFY_FAILED, "opening is nested too deeply")


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for position, item in enumerate(value):
            found += _paths(item, (*prefix, position))
    return found


ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(["", "\ud800", "é✓\u202e", "zz" * 32, "AB" * 32, "0" * 63, "0" * 129]),
    st.text(max_size=20),
    st.recursive(
        st.none() | st.integers(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(max_size=3), inner),
        max_leaves=8,
    ),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_field_of_a_receipt_changed_fails_verification_naming_a_part(
    node_home: Path, receipt: dict[str, Any], data: st.DataObject
) -> None:
    body = copy.deepcopy(receipt)
    path = data.draw(st.sampled_from(_paths(body)))
    target = body
    for key in path[:-1]:
        target = target[key]
    original = target[path[-1]]
    removed = data.draw(st.booleans())
    value = None if removed else data.draw(ODD)
    if removed:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    file = node_home.parent / "mutated.json"
    write(file, body)
    result = CliRunner().invoke(
        app, ["receipt", "verify", str(file), "--home", str(node_home), "--json"]
    )
    if result.exit_code == 0:
        # Only the opening is outside the signature, and a receipt may drop it.
        dropped_opening = removed and path == ("opening",)
        same = not removed and value == original and type(value) is type(original)
        assert dropped_opening or same, (path, value)
    else:
        assert isinstance(result.exception, EntrepotError), (path, value, result.exception)


@pytest.fixture
def export(node_home: Path, tmp_path: Path) -> Path:
    directory = tmp_path / "copy"
    result = entrepot("audit", "export", str(directory), "--home", str(node_home))
    assert result.returncode == 0, result.stderr
    return directory


def verify_export(directory: Path) -> subprocess.CompletedProcess[str]:
    return entrepot(
        "audit", "verify-export", str(directory), "--node-key", str(directory / "node.pub")
    )


def _edit_first_entry(directory: Path) -> None:
    entries = directory / "entries.jsonl"
    lines = entries.read_text().splitlines(keepends=True)
    lines[0] = lines[0].replace("acme", "acmx")
    entries.write_text("".join(lines))


def test_an_export_without_its_heads_does_not_verify(export: Path) -> None:
    assert verify_export(export).returncode == 0
    _edit_first_entry(export)
    (export / "heads.jsonl").unlink()
    refused(verify_export(export), ExitCode.NOT_FOUND, "holds no file heads.jsonl")
    (export / "heads.jsonl").write_text("")
    refused(verify_export(export), ExitCode.VERIFY_FAILED, "holds no signed tree head")


@pytest.mark.parametrize("name", ["entries.jsonl", "heads.jsonl"])
def test_an_export_file_that_is_a_folder_is_named(export: Path, name: str) -> None:
    (export / name).unlink()
    (export / name).mkdir()
    refused(verify_export(export), ExitCode.NOT_FOUND, f"holds no file {name}")


@pytest.mark.parametrize(
    ("name", "what"), [("entries.jsonl", "log entry"), ("heads.jsonl", "tree head")]
)
def test_a_deeply_nested_line_in_an_export_is_refused(export: Path, name: str, what: str) -> None:
    with (export / name).open("a") as out:
        out.write(DEEP + "\n")
    result = verify_export(export)
    refused(result, ExitCode.VERIFY_FAILED, "nested too deeply")
    assert what in result.stderr


def test_a_deeply_nested_earlier_head_is_refused(node_home: Path, tmp_path: Path) -> None:
    head = tmp_path / "head.json"
    head.write_text('{"size":' * 50_000)
    result = entrepot("audit", "verify", "--from-head", str(head), "--home", str(node_home))
    refused(result, ExitCode.VERIFY_FAILED, "nested too deeply to be a tree head")


@pytest.mark.parametrize(
    "proof", [{"consistency": None}, {"nodes": []}, ["00" * 32], {"consistency": "ab"}]
)
def test_a_served_consistency_proof_of_the_wrong_form_fails_verification(
    node_home: Path, tmp_path: Path, proof: Any
) -> None:
    """Logged in, `receipt verify` checks what the server sends; a proof of the wrong
    form is a failed consistency check, not an internal error."""
    home = tmp_path / "node"
    shutil.copytree(node_home, home)
    node = Node.open(Settings(home=home))
    for number in range(5):
        node.log.append(make_entry("peer", "operator", action="test", n=number))
    latest = node.log.sign_head().to_json()
    node.close()
    server = FastAPI()
    server.get("/v1/audit/head")(lambda: latest)
    server.get("/v1/audit/proofs/consistency")(lambda: proof)
    with running(server) as client:
        login = tmp_path / "login.json"
        login.write_text(json.dumps({"url": str(client.base_url).rstrip("/"), "token": "t"}))
        result = subprocess.run(
            [sys.executable, "-m", "entrepot", "receipt", "verify", str(home / "receipt.json")],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "ENTREPOT_CLIENT_CONFIG": str(login)},
        )
    refused(result, ExitCode.VERIFY_FAILED, "consistency proof")
