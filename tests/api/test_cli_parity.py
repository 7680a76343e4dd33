"""Odd input gets the same answer from the CLI logged in as from the local node.

Each case runs the real CLI twice over one served world: logged in with a role's
token, and on the node's home acting for the same organization. Both must end with
the same exit code and print the same ``--json`` body, a refusal included, worded by
the library's rule rather than by the HTTP layer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import FastAPI
from tests.api.remote import Served
from tests.vault.cli_runner import Result, run_cli

from entrepot.api import create_app
from entrepot.errors import ExitCode
from entrepot.exchange.accounts import LOCAL, Accounts
from entrepot.exchange.node import Node
from entrepot.settings import Settings

if TYPE_CHECKING:
    from tests.api.conftest import World

Serve = Callable[[FastAPI], AbstractContextManager[httpx.Client]]
Run = Callable[..., Result]
MINE = "riverside-hospitals/outpatient-visits"
# The organization each world account acts for, as `--as` names it on the local node.
ORG = {
    "operator": "exchange-operator",
    "provider": "riverside-hospitals",
    "consumer": "city-health-bureau",
}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, serve: Serve, make_world: Callable[[Node], World]
) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("parity")
    node = Node.init(Settings(home=root / "node", token_hash_memory_kib=1024))
    world = make_world(node)
    with serve(create_app(node)) as client:
        yield Served(str(client.base_url).rstrip("/"), world, root)
    node.close()


@pytest.fixture
def both(
    server: Served, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[[str], tuple[Run, Run]]:
    """``both(who)``: the CLI logged in as ``who``, and on the home as ``who``'s org."""

    def bind(who: str) -> tuple[Run, Run]:
        def remote(*args: str) -> Result:
            monkeypatch.delenv("ENTREPOT_AS", raising=False)
            monkeypatch.setenv("ENTREPOT_CLIENT_CONFIG", str(server.login(who)))
            return run_cli(capsys, monkeypatch, *args)

        def local(*args: str) -> Result:
            monkeypatch.setenv("ENTREPOT_AS", ORG[who])
            monkeypatch.setenv("ENTREPOT_CLIENT_CONFIG", str(server.logins / "logged-out"))
            return run_cli(capsys, monkeypatch, *args, "--home", str(server.node.home))

        return remote, local

    return bind


def same(both: Callable[[str], tuple[Run, Run]], who: str, *args: str) -> tuple[int, Any]:
    """Run ``args`` with --json both ways; the exit code and body, once shown equal."""
    remote_run, local_run = both(who)
    remote, local = remote_run(*args, "--json"), local_run(*args, "--json")
    assert "Traceback" not in remote.stderr + local.stderr
    assert (remote.code, remote.json()) == (local.code, local.json()), remote.stderr
    return remote.code, remote.json()


def refusal(both: Callable[[str], tuple[Run, Run]], who: str, *args: str) -> tuple[int, str]:
    code, body = same(both, who, *args)
    assert code != ExitCode.OK
    return code, body["error"]["message"]


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("catalog", "show", "a/b/c"), ExitCode.INVALID, "'b/c' is not a valid slug"),
        (("catalog", "show", MINE.upper()), ExitCode.INVALID, "is not a valid slug"),
        (("policy", "show", "a b/c"), ExitCode.INVALID, "'a b' is not a valid slug"),
        (("dataset", "versions", "Riverside/x"), ExitCode.INVALID, "is not a valid slug"),
        (("opening", "version", "a/b/c", "1"), ExitCode.INVALID, "'b/c' is not a valid slug"),
        (("opening", "version", "nothing", "1"), ExitCode.INVALID, "not a dataset reference"),
        (("join", "overlap", "", MINE), ExitCode.INVALID, "'' is not a dataset reference"),
        (("join", "overlap", MINE, "Harbor/x"), ExitCode.INVALID, "'Harbor' is not a valid slug"),
    ],
)
def test_a_malformed_dataset_reference_is_refused_by_the_librarys_rule(
    both: Callable[[str], tuple[Run, Run]], args: tuple[str, ...], code: int, words: str
) -> None:
    assert refusal(both, "consumer", *args)[0] == code
    assert words in refusal(both, "consumer", *args)[1]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("standard", "show", ""), "no standard named ''"),
        (("standard", "show", "nope"), "no standard named 'nope'"),
        (("standard", "show", "Health.Visit"), "no standard named 'Health.Visit'"),
        (("standard", "show", "../nowhere"), "no standard file at ../nowhere"),
        (("standard", "codes", ""), "no code list named ''"),
        (("standard", "codes", "SEX"), "no code list named 'SEX'"),
    ],
)
def test_an_unknown_standard_or_code_list_is_not_found_either_way(
    both: Callable[[str], tuple[Run, Run]], args: tuple[str, ...], words: str
) -> None:
    code, message = refusal(both, "consumer", *args)
    assert (code, message) == (ExitCode.NOT_FOUND, words)


@pytest.mark.parametrize(
    "args",
    [
        ("catalog", "export", "--base-url", "not a url"),
        ("catalog", "export", "--base-url", ""),
        ("access", "export-odrl", "GRANT-1", "--base-url", "ftp://exchange.example"),
        ("access", "export-odrl", "1", "--base-url", ""),
    ],
)
def test_a_base_url_that_is_not_http_is_refused_either_way(
    both: Callable[[str], tuple[Run, Run]], args: tuple[str, ...]
) -> None:
    # These commands print their document, not --json: the refusal is on stderr.
    remote_run, local_run = both("consumer")
    remote, local = remote_run(*args), local_run(*args)
    assert (remote.code, remote.errors) == (local.code, local.errors)
    assert remote.code == ExitCode.INVALID
    assert "is not an http:// or https:// URL" in remote.errors
    assert "Traceback" not in remote.stderr + local.stderr


def test_a_given_base_url_names_the_documents_either_way(
    both: Callable[[str], tuple[Run, Run]],
) -> None:
    remote_run, local_run = both("consumer")
    args = ("access", "export-odrl", "grant-1", "--base-url", "https://x.example")
    remote, local = remote_run(*args), local_run(*args)
    assert (remote.code, local.code) == (ExitCode.OK, ExitCode.OK), remote.stderr + local.stderr
    assert remote.json() == local.json()
    assert remote.json()["uid"] == "https://x.example/v1/access/grants/GRANT-1/odrl"


@pytest.mark.parametrize(
    ("who", "args", "code", "words"),
    [
        ("consumer", ("access", "show", "abc"), ExitCode.INVALID, "'abc' is not a REQ id"),
        ("consumer", ("access", "show", "7"), ExitCode.NOT_FOUND, "no access request 7"),
        ("consumer", ("access", "show", "grant-x"), ExitCode.INVALID, "'grant-x' is not a GRANT"),
        ("consumer", ("access", "show", "9" * 20), ExitCode.INVALID, "is not a REQ id"),
        ("provider", ("access", "grant", "abc"), ExitCode.INVALID, "'abc' is not a REQ id"),
        ("provider", ("access", "grant", "GRANT-1"), ExitCode.INVALID, "is not a REQ id"),
        ("provider", ("access", "revoke", "REQ-1"), ExitCode.INVALID, "is not a GRANT id"),
        ("provider", ("access", "refuse", "77"), ExitCode.NOT_FOUND, "no access request 77"),
        ("consumer", ("usage", "--month", "2026-13"), ExitCode.INVALID, "is not a month"),
        ("consumer", ("usage", "--month", "2026-1"), ExitCode.INVALID, "is not a month"),
        ("consumer", ("usage", "--month", "9999-12"), ExitCode.INVALID, "is not a month"),
        ("operator", ("usage", "--party", "Bad Party"), ExitCode.NOT_FOUND, "'Bad Party'"),
        ("consumer", ("account", "revoke-token", "xyz"), ExitCode.NOT_FOUND, "no token 'xyz'"),
        ("consumer", ("account", "revoke-token", ""), ExitCode.NOT_FOUND, "no token ''"),
        ("consumer", ("account", "token", "BadName"), ExitCode.NOT_FOUND, "no account"),
    ],
)
def test_an_id_month_or_name_is_read_by_its_service_either_way(
    both: Callable[[str], tuple[Run, Run]],
    who: str,
    args: tuple[str, ...],
    code: int,
    words: str,
) -> None:
    found, message = refusal(both, who, *args)
    assert found == code
    assert words in message


def test_the_same_contract_is_shown_for_each_spelling_of_its_id(
    both: Callable[[str], tuple[Run, Run]],
) -> None:
    for ident in ("1", "req-1", " REQ-1 "):
        assert same(both, "consumer", "access", "show", ident)[1]["id"] == "REQ-1"
    assert same(both, "consumer", "access", "show", " grant-1 ")[1]["id"] == "GRANT-1"


@pytest.mark.parametrize("side", [0, 1], ids=["logged-in", "local"])
def test_a_token_id_copied_in_capitals_is_revoked_either_way(
    server: Served, both: Callable[[str], tuple[Run, Run]], side: int
) -> None:
    accounts = Accounts(server.node.db, server.node.settings, log=server.node.log)
    issued = accounts.issue_token(LOCAL, "consumer")
    revoked = both("consumer")[side]("account", "revoke-token", issued.info.token_id.upper())
    assert revoked.code == ExitCode.OK, revoked.stderr
    [token] = [t for t in accounts.tokens(LOCAL, "consumer") if t.token_id == issued.info.token_id]
    assert token.revoked_at is not None


def test_a_refused_policy_file_is_named_either_way(
    both: Callable[[str], tuple[Run, Run]], tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("epsilon:\n  per_query: -1\n")
    code, message = refusal(both, "provider", "policy", "set", MINE, str(policy))
    assert code == ExitCode.INVALID
    assert message.startswith(f"{policy}: epsilon.per_query")


@pytest.mark.parametrize(
    ("mapping", "code", "words"),
    [
        (None, ExitCode.NOT_FOUND, "no mapping file at"),
        ("columns: [\n", ExitCode.INVALID, "line 2: not valid YAML"),
    ],
)
def test_a_mapping_is_read_and_refused_here_either_way(
    both: Callable[[str], tuple[Run, Run]],
    tmp_path: Path,
    make_visits: Callable[..., Path],
    mapping: str | None,
    code: int,
    words: str,
) -> None:
    source = make_visits(tmp_path / "visits.csv", 5)
    path = tmp_path / "mapping.yaml"
    if mapping is not None:
        path.write_text(mapping)
    args = ("dataset", "publish", str(source), "--standard", "health.visit", "--title", "V")
    remote_run, local_run = both("provider")
    remote = remote_run(*args, "--mapping", str(path), "--json")
    local = local_run(*args, "--mapping", str(path), "--provider", ORG["provider"], "--json")
    assert (remote.code, remote.json()) == (local.code, local.json())
    assert remote.code == code
    assert words in remote.json()["error"]["message"]
    assert str(path) in remote.json()["error"]["message"]
