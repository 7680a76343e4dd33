"""Logged in, the catalog, standard, dataset, provider, policy, audit and receipt commands
call the server; their --json output is the local one for the same node."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi import FastAPI
from tests.api.remote import Served
from tests.vault.cli_runner import Result, run_cli

from entrepot.api import create_app
from entrepot.errors import ExitCode, Forbidden, NotFound, ProofInvalid, ValidationFailed
from entrepot.exchange.node import Node
from entrepot.exchange.policies import Policies
from entrepot.settings import Settings
from entrepot.transparency import (
    DatasetVersion,
    Entry,
    Kind,
    QueryOpening,
    ReceiptFields,
    issue_receipt,
    make_entry,
)
from entrepot.vault import LocalVault, list_providers

if TYPE_CHECKING:
    from tests.api.conftest import World

Serve = Callable[[FastAPI], AbstractContextManager[httpx.Client]]
MINE = "riverside-hospitals/outpatient-visits"
THEIRS = "harbor-clinics/outpatient-visits"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, serve: Serve, make_world: Callable[[Node], World]
) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("remote-data")
    # Pages of 4 items: every remote list below spans several of them.
    node = Node.init(Settings(home=root / "node", token_hash_memory_kib=1024, page_max=4))
    world = make_world(node)
    # A log with entries and a signed head: the library calls above log nothing.
    node.log.append_many(_entries(3))
    with serve(create_app(node)) as client:
        yield Served(str(client.base_url).rstrip("/"), world, root)
    node.close()


Run = Callable[..., Result]


@pytest.fixture
def cli(
    server: Served, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[[str | None], Run]:
    """``cli(who)(*args)``: logged in as ``who``; ``cli(None)`` works on the node's home."""

    def bind(who: str | None) -> Run:
        def run(*args: str) -> Result:
            if who is None:
                monkeypatch.setenv("ENTREPOT_CLIENT_CONFIG", str(server.logins / "logged-out"))
                return run_cli(capsys, monkeypatch, *args, "--home", str(server.node.home))
            monkeypatch.setenv("ENTREPOT_CLIENT_CONFIG", str(server.login(who)))
            return run_cli(capsys, monkeypatch, *args)

        return run

    return bind


READS = [
    ("catalog", "list"),
    ("catalog", "list", "--provider", "harbor-clinics"),
    ("catalog", "search", "visits"),
    ("catalog", "search", "outpatient visits", "--limit", "1"),
    ("catalog", "show", MINE),
    ("standard", "list"),
    ("standard", "show", "health.visit"),
    ("standard", "codes", "region.district"),
    ("provider", "list"),
    ("policy", "show", THEIRS),
    ("dataset", "versions", MINE),
    ("audit", "log", "--kind", "peer"),
    ("audit", "head"),
    ("audit", "prove", "2"),
]


@pytest.mark.parametrize("args", READS, ids=[" ".join(a) for a in READS])
def test_json_is_the_same_logged_in_and_local(
    cli: Callable[[str | None], Run],
    args: tuple[str, ...],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    remote = cli("consumer")(*args, "--json")
    assert remote.code == 0, remote.stderr
    # Locally as the same organization (commands that act for nobody ignore it).
    monkeypatch.setenv("ENTREPOT_AS", "city-health-bureau")
    local = cli(None)(*args, "--json")
    assert local.code == 0, local.stderr
    assert remote.json() == local.json()
    assert remote.json()


def test_people_see_the_same_tables_logged_in(cli: Callable[[str | None], Run]) -> None:
    page = cli("consumer")("catalog", "show", MINE)
    for heading in ("Schema", "Versions", "patient_id", "provider only"):
        assert heading in page.output
    assert "Completeness" not in page.output
    assert "Completeness" in cli("provider")("catalog", "show", MINE).output
    assert "dataset_cap: 10.0" in cli("auditor")("policy", "show", MINE).output
    assert "Yunping Old Town" in cli("provider")("standard", "codes", "region.district").output


def test_files_named_on_the_command_line_are_read_here(
    cli: Callable[[str | None], Run], tmp_path: Path
) -> None:
    schema = tmp_path / "mine.json"
    schema.write_text(json.dumps({"name": "mine", "fields": [{"name": "n", "type": "integer"}]}))
    shown = cli("consumer")("standard", "show", str(schema), "--json")
    assert shown.json()["fields"][0]["type"] == "integer"
    args = ("dataset", "publish", str(schema), "--standard", str(schema), "--title", "Mine")
    refused = cli("provider")(*args)
    assert refused.code == ExitCode.INVALID
    assert "entrepot standard list" in refused.errors


def test_remote_lists_follow_every_page(server: Served, cli: Callable[[str | None], Run]) -> None:
    # More providers than one page of the server holds (page_max caps `limit`).
    for number in range(server.node.settings.page_max + 1):
        cli("operator")("provider", "add", f"extra-{number}", "--name", f"Extra {number}")
    remote = cli("consumer")("provider", "list", "--json").json()
    assert len(remote) == len(list_providers(server.node.db))
    assert remote == cli(None)("provider", "list", "--json").json()


def test_catalog_export_names_the_server_or_the_given_base(
    server: Served, cli: Callable[[str | None], Run]
) -> None:
    document = cli("consumer")("catalog", "export").json()
    mine = f"{server.url}/v1/catalog/datasets/{MINE}"
    assert {d["@id"] for d in document["dcat:dataset"]} >= {mine}
    based = cli("consumer")("catalog", "export", "--base-url", "https://x.example")
    assert based.json() == cli(None)("catalog", "export", "--base-url", "https://x.example").json()


def test_a_provider_is_added_by_an_operator_only(
    server: Served, cli: Callable[[str | None], Run]
) -> None:
    added = cli("operator")("provider", "add", "lakeside-care", "--name", "Lakeside", "--json")
    assert added.code == 0, added.stderr
    assert added.json()["slug"] == "lakeside-care"
    assert "lakeside-care" in {p.slug for p in list_providers(server.node.db)}
    again = cli("operator")("provider", "add", "lakeside-care", "--name", "Lakeside")
    assert (again.code, "already exists" in again.errors) == (ExitCode.CONFLICT, True)
    bad = cli("operator")("provider", "add", "Lake Side", "--name", "Lakeside")
    assert (bad.code, "not a valid slug" in bad.errors) == (ExitCode.INVALID, True)
    refused = cli("provider")("provider", "add", "sneaky", "--name", "Sneaky", "--json")
    assert refused.code == ExitCode.REFUSED
    assert refused.json()["error"]["code"] == Forbidden.code
    assert "sneaky" not in {p.slug for p in list_providers(server.node.db)}


def test_publish_uploads_the_file_and_mapping_for_the_tokens_provider(
    server: Served,
    cli: Callable[[str | None], Run],
    tmp_path: Path,
    make_visits: Callable[..., Path],
) -> None:
    source = make_visits(tmp_path / "visits.csv", 40, seed=3)
    text = source.read_text().replace("visit_id,", "VisitNo,", 1).replace(",", ";")
    source.write_text(text)
    mapping = tmp_path / "riverside.yaml"
    mapping.write_text('source:\n  delimiter: ";"\ncolumns:\n  visit_id: {from: VisitNo}\n')
    args = ("dataset", "publish", str(source), "--standard", "health.visit", "--mapping")
    published = cli("provider")(*args, str(mapping), "--title", "Outpatient visits 2026", "--json")
    assert published.code == 0, published.stderr
    out = published.json()
    assert (out["dataset"], out["version"], out["rows"]) == (MINE, 2, 40)
    held = LocalVault.of(server.node).versions(MINE)
    assert [(v.number, v.rows, v.sha256) for v in held][-1] == (2, 40, out["sha256"])
    versions = cli("provider")("dataset", "versions", MINE, "--json").json()
    assert versions[-1]["sha256"] == out["sha256"]
    hidden = cli("consumer")("dataset", "versions", MINE, "--json").json()
    assert [(v["rows"], v["sha256"]) for v in hidden] == [(None, None)] * len(versions)


def test_a_refused_publish_shows_the_report_and_stores_nothing(
    server: Served,
    cli: Callable[[str | None], Run],
    tmp_path: Path,
    make_visits: Callable[..., Path],
) -> None:
    source = make_visits(tmp_path / "bad.csv", 20, seed=4)
    lines = source.read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 2)[0] + ",-5.00,1.00"
    source.write_text("\n".join(lines) + "\n")
    before = len(LocalVault.of(server.node).versions(THEIRS))
    args = ("dataset", "publish", str(source), "--standard", "health.visit", "--title", "Visits")
    shown = cli("other-provider")(*args, "--dataset", "outpatient-visits")
    assert shown.code == ExitCode.INVALID
    assert "minimum" in shown.output
    assert "nothing was published" in shown.errors
    as_json = cli("other-provider")(*args, "--dataset", "outpatient-visits", "--json")
    error = as_json.json()["error"]
    assert error["code"] == ValidationFailed.code
    assert (error["report"]["rows_total"], error["report"]["rows_invalid"]) == (20, 1)
    assert len(LocalVault.of(server.node).versions(THEIRS)) == before
    foreign = cli("other-provider")(*args, "--provider", "riverside-hospitals")
    assert foreign.code == ExitCode.INVALID
    assert "acts for harbor-clinics" in foreign.errors


def test_policy_is_set_by_the_datasets_provider_only(
    server: Served, cli: Callable[[str | None], Run], tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("epsilon:\n  per_query: 0.4\n  dataset_cap: 6\nthreshold: 12\n")
    mine = cli("other-provider")("policy", "set", THEIRS, str(policy), "--json")
    assert mine.code == 0, mine.stderr
    held = Policies(server.node).get(THEIRS)
    assert (held.explicit, held.set_by) == (True, "org:harbor-clinics")
    assert mine.json()["digest"] == held.policy.digest
    assert cli("consumer")("policy", "show", THEIRS, "--json").json() == mine.json()
    theirs = cli("other-provider")("policy", "set", MINE, str(policy), "--json")
    assert theirs.code == ExitCode.NOT_FOUND
    assert theirs.json()["error"]["code"] == NotFound.code
    assert not Policies(server.node).get(MINE).explicit
    as_ = cli("other-provider")("policy", "set", THEIRS, str(policy), "--as", "harbor-clinics")
    assert (as_.code, "drop --as" in as_.errors) == (ExitCode.INVALID, True)


def test_audit_verify_checks_the_servers_log_on_the_client(
    server: Served, cli: Callable[[str | None], Run], tmp_path: Path
) -> None:
    auditor = cli("auditor")
    saved = tmp_path / "head.json"
    saved.write_text(auditor("audit", "head", "--new", "--json").stdout)
    server.node.log.append_many(_entries(3))  # the log grows after the saved head
    auditor("audit", "head", "--new")
    checked = auditor("audit", "verify", "--from-head", str(saved), "--full", "--json")
    assert checked.code == 0, checked.stderr
    out = checked.json()
    key = bytes(server.node.log.verify_key).hex()
    assert out["key"] == key
    assert out["consistency"]["size1"] + 3 == out["consistency"]["size2"]
    assert out["check"]["entries"] == server.node.log.size
    latest = server.node.log.latest_head()
    assert latest is not None
    assert out["check"]["root"] == latest.root.hex()
    copy = tmp_path / "copy"
    exported = auditor("audit", "export", str(copy), "--json")
    assert exported.json()["entries"] == server.node.log.size
    offline = cli("consumer")("audit", "verify-export", str(copy), "--node-key", key, "--json")
    assert offline.json()["entries"] == server.node.log.size
    refused = cli("consumer")("audit", "verify", "--full", "--json")
    assert refused.json()["error"]["code"] == Forbidden.code
    forged = json.loads(saved.read_text()) | {"size": 1}
    saved.write_text(json.dumps(forged))
    assert (
        cli("consumer")("audit", "verify", "--from-head", str(saved)).code == ExitCode.VERIFY_FAILED
    )


def _entries(count: int) -> list[Entry]:
    return [make_entry(Kind.PEER, "local", action="test", number=n) for n in range(count)]


def test_receipt_verify_logged_in_checks_the_receipt_is_still_in_the_log(
    server: Served, cli: Callable[[str | None], Run], tmp_path: Path
) -> None:
    fields = ReceiptFields.build(
        "query",
        opening=QueryOpening.fresh("SELECT COUNT(*) FROM riverside_hospitals.outpatient_visits"),
        answer=b'{"count": 42}',
        epsilon=0.25,
        datasets=[DatasetVersion(MINE, "1", "ab" * 32)],
    )
    index = server.node.log.append(fields.entry("city-health-bureau", purpose="planning"))
    receipt = tmp_path / "receipt.json"
    receipt.write_bytes(issue_receipt(server.node.log, index, fields).to_bytes())
    server.node.log.append_many(_entries(2))
    server.node.log.sign_head()
    checked = cli("consumer")("receipt", "verify", str(receipt), "--json")
    assert checked.code == 0, checked.stderr
    out = checked.json()
    assert out["log_index"] == index
    assert out["server"]["size2"] == server.node.log.size
    assert out["server"]["size1"] < out["server"]["size2"]
    offline = cli(None)("receipt", "verify", str(receipt), "--json").json()
    assert {k: v for k, v in out.items() if k != "server"} == offline


def test_a_server_that_rewrote_an_entry_fails_verification(
    node: Node,
    world: World,
    api: httpx.Client,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node.log.append_many(_entries(4))
    node.log.sign_head()
    key = bytes(node.log.verify_key).hex()
    # Entry 2 now says 7: every signed head that covers it no longer matches.
    _rewrite_first(node.home / "log" / "entries.bin", b'"number":2', b'"number":7')
    config = tmp_path / "remote.json"
    config.write_text(json.dumps({"url": str(api.base_url), "token": world.tokens["auditor"]}))
    monkeypatch.setenv("ENTREPOT_CLIENT_CONFIG", str(config))
    result = run_cli(capsys, monkeypatch, "audit", "verify", "--node-key", key, "--json")
    assert result.code == ExitCode.VERIFY_FAILED
    error = result.json()["error"]
    assert (error["code"], error["part"]) == (ProofInvalid.code, "log entries")


def _rewrite_first(path: Path, old: bytes, new: bytes) -> None:
    """Change the first record holding ``old``, with a valid checksum: a deliberate rewrite."""
    data = bytearray(path.read_bytes())
    header = struct.Struct(">II")
    position = 0
    while position < len(data):
        length, _crc = header.unpack_from(data, position)
        start = position + header.size
        record = bytes(data[start : start + length])
        if old in record:
            changed = record.replace(old, new, 1)
            header.pack_into(data, position, length, zlib.crc32(changed))
            data[start : start + length] = changed
            path.write_bytes(bytes(data))
            return
        position = start + length
    raise AssertionError(f"no record holds {old!r}")


def test_a_logged_in_command_does_not_load_the_analytical_stack(server: Served) -> None:
    """The whole CLI, every noun registered: the library loads only on the local path."""
    program = (
        "import sys\n"
        "from entrepot.cli.app import app\n"
        "for args in sys.argv[1:]:\n"
        "    app(args=args.split('|'), standalone_mode=False)\n"
        "heavy = ('duckdb', 'pandas', 'pyarrow', 'opendp', 'sqlalchemy', 'entrepot.exchange')\n"
        "print('LOADED=' + ','.join(m for m in heavy if m in sys.modules))\n"
    )
    commands = [
        f"catalog|show|{MINE}|--json",
        "standard|show|health.visit|--json",
        "provider|list|--json",
        f"policy|show|{MINE}|--json",
        f"dataset|versions|{MINE}|--json",
        "audit|log|--json",
        "access|list|--json",
        "budget|--json",
        "usage|--json",
        "whoami",
    ]
    env = {**os.environ, "ENTREPOT_CLIENT_CONFIG": str(server.login("consumer"))}
    result = subprocess.run(
        [sys.executable, "-c", program, *commands],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f'"dataset": "{MINE}"' in result.stdout
    assert result.stdout.rstrip().endswith("LOADED=")


def test_the_console_script_logged_in_reports_errors_without_a_traceback(
    server: Served,
) -> None:
    env = {**os.environ, "ENTREPOT_CLIENT_CONFIG": str(server.login("consumer"))}
    result = subprocess.run(
        [sys.executable, "-m", "entrepot", "catalog", "show", "riverside-hospitals/nothing"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == ExitCode.NOT_FOUND
    assert "no dataset" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "asked",
    [
        ("query", "--epsilon", "inf", f"SELECT COUNT(*) FROM {THEIRS.replace('/', '.')}"),
        ("access", "grant", "REQ-1", "--epsilon", "nan"),
    ],
)
def test_a_number_json_cannot_carry_is_refused_before_it_is_sent(
    cli: Callable[[str | None], Run], asked: tuple[str, ...]
) -> None:
    remote = cli("consumer")(*asked)
    assert remote.code == ExitCode.INVALID, remote.stderr
    assert "epsilon is" in remote.errors
    assert "not a finite number" in remote.errors
    assert "internal error" not in remote.stderr
