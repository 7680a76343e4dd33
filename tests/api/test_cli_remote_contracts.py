"""The CLI logged in to a real server: contracts, accounts, budgets, usage and queries.

One module-scoped uvicorn server over a seeded world. Commands run as real
processes (``python -m entrepot``) with a login file of their own; the test then
reads what the server's node holds. Read commands print the same ``--json`` logged
in as they do on the local node for the same party.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import FastAPI
from tests.api.remote import Served, entrepot
from typer.testing import CliRunner, Result

from entrepot.api import create_app
from entrepot.cli.app import app
from entrepot.errors import ExitCode, Forbidden, NotFound
from entrepot.exchange.accounts import LOCAL, Accounts, Actor
from entrepot.exchange.budgets import Budgets
from entrepot.exchange.contracts import Contracts, GrantInfo
from entrepot.exchange.node import Node
from entrepot.settings import Settings
from entrepot.transparency import verify_receipt

if TYPE_CHECKING:
    from tests.api.conftest import World

Serve = Callable[[FastAPI], AbstractContextManager[httpx.Client]]
DATASET = "riverside-hospitals/outpatient-visits"
OTHER_DATASET = "harbor-clinics/outpatient-visits"
MONTH = date.today().strftime("%Y-%m")
UNTIL = (date.today() + timedelta(days=90)).isoformat()
SQL = "SELECT district, COUNT(*) AS n FROM riverside_hospitals.outpatient_visits GROUP BY district"
# The organization each world account acts for, as `--as` names it on the local node.
ORG = {
    "operator": "exchange-operator",
    "provider": "riverside-hospitals",
    "other-provider": "harbor-clinics",
    "consumer": "city-health-bureau",
}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, serve: Serve, make_world: Callable[[Node], World]
) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("remote-cli")
    # Pages of two items: every list the CLI prints spans pages, which it must follow.
    node = Node.init(Settings(home=root / "node", token_hash_memory_kib=1024, page_max=2))
    world = make_world(node)
    (root / "logins").mkdir()
    with serve(create_app(node)) as client:
        yield Served(str(client.base_url).rstrip("/"), world, root / "logins")
    node.close()


def ok(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.lstrip().startswith(("{", "[")) else None


def refused(result: subprocess.CompletedProcess[str], code: ExitCode) -> str:
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return " ".join(result.stderr.split())


def run(config: Path, *args: str) -> Result:
    """The same CLI through Typer's runner in this process (cheaper than a new one)."""
    return CliRunner().invoke(app, list(args), env={"ENTREPOT_CLIENT_CONFIG": str(config)})


def in_process(config: Path, *args: str) -> str:
    """What the CLI prints, logged in with ``config`` (or logged out without the file)."""
    result = run(config, *args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def grant_on_server(node: Node, ref: str) -> GrantInfo:
    info = Contracts(node.db, node.settings, log=node.log).show(LOCAL, ref)
    assert isinstance(info, GrantInfo)
    return info


def test_a_contract_is_requested_granted_and_revoked_over_the_server(server: Served) -> None:
    consumer, provider = server.login("consumer"), server.login("other-provider")
    asked = ok(
        entrepot(
            consumer,
            *("access", "request", OTHER_DATASET, "--purpose", "public-health-surveillance"),
            *("--epsilon", "1.5", "--until", UNTIL, "--note", "flu season", "--json"),
        )
    )
    assert (asked["state"], asked["consumer"], asked["note"]) == (
        "requested",
        "city-health-bureau",
        "flu season",
    )
    inbox = json.loads(in_process(provider, "access", "list", "--pending", "--json"))
    assert [r["id"] for r in inbox["requests"]] == [asked["id"]]
    assert inbox["grants"] == []
    # Another provider may not decide on it, and learns nothing about it.
    message = refused(
        entrepot(server.login("provider"), "access", "grant", asked["id"]), ExitCode.NOT_FOUND
    )
    assert f"no access request {asked['id']}" in message
    granted = json.loads(
        in_process(
            provider,
            *("access", "grant", asked["id"].lower(), "--epsilon", "1"),
            *("--max-queries", "20", "--price-per-epsilon", "50", "--json"),
        )
    )
    held = grant_on_server(server.node, granted["id"])
    assert (held.state, held.epsilon, held.max_queries, held.price_per_epsilon) == (
        "granted",
        1.0,
        20,
        Decimal(50),
    )
    assert "org:harbor-clinics" in in_process(consumer, "access", "show", granted["id"])
    revoked = in_process(provider, "access", "revoke", granted["id"], "--reason", "season over")
    assert f"revoked {granted['id']}" in revoked
    after = grant_on_server(server.node, granted["id"])
    assert after.state == "revoked"
    assert after.history[-1].reason == "season over"
    assert after.history[-1].actor == "org:harbor-clinics"


def test_a_provider_refuses_a_request_over_the_server(server: Served) -> None:
    contracts = Contracts(server.node.db, server.node.settings, log=server.node.log)
    asked = contracts.request(
        actor(server.node, "rival-analytics"),
        DATASET,
        purpose="public-health-surveillance",
        epsilon=1,
        until=date.today() + timedelta(days=30),
    )
    out = in_process(
        server.login("provider"), "access", "refuse", asked.ref, "--reason", "outside our mandate"
    )
    assert f"refused {asked.ref}" in out
    held = contracts.show(LOCAL, asked.ref)
    assert held.state == "refused"
    assert held.history[-1].reason == "outside our mandate"


def actor(node: Node, org: str) -> Actor:
    return Accounts(node.db, node.settings, log=node.log).actor(org)


READS: list[tuple[str, tuple[str, ...]]] = [
    ("consumer", ("access", "list")),
    ("consumer", ("access", "show", "GRANT-1")),
    ("consumer", ("access", "show", "REQ-1")),
    ("consumer", ("access", "show", "1")),
    ("consumer", ("access", "purposes")),
    ("consumer", ("budget",)),
    ("consumer", ("usage", "--month", MONTH)),
    ("consumer", ("account", "list")),
    ("consumer", ("account", "list", "--tokens")),
    ("provider", ("access", "list", "--pending")),
    ("provider", ("budget", "--closed")),
    ("provider", ("usage", "--month", MONTH)),
    ("operator", ("account", "list")),
    ("operator", ("access", "list")),
    ("operator", ("budget",)),
]


@pytest.mark.parametrize(("who", "args"), READS, ids=[f"{w} {' '.join(a)}" for w, a in READS])
def test_json_is_the_same_logged_in_and_on_the_local_node(
    server: Served, tmp_path: Path, who: str, args: tuple[str, ...]
) -> None:
    remote = in_process(server.login(who), *args, "--json")
    local = in_process(
        tmp_path / "logged-out.json",
        *args,
        *("--home", str(server.node.home), "--as", ORG[who], "--json"),
    )
    assert json.loads(remote) == json.loads(local)
    assert remote == local


def test_odrl_and_csv_are_the_same_logged_in_and_on_the_local_node(
    server: Served, tmp_path: Path
) -> None:
    local = ("--home", str(server.node.home), "--as", ORG["consumer"])
    logged_out = tmp_path / "logged-out.json"
    # Named by one address: by default each door names where it reached the node.
    odrl = ("access", "export-odrl", "1", "--base-url", "https://exchange.example")
    csv = ("usage", "--month", MONTH, "--format", "csv")
    for args in (odrl, csv):
        assert in_process(server.login("consumer"), *args) == in_process(logged_out, *args, *local)
    assert json.loads(in_process(server.login("consumer"), *odrl))["@type"] == "Agreement"
    assert in_process(server.login("consumer"), *csv).startswith("grant,")


def test_a_query_over_the_server_answers_spends_and_signs(server: Served, tmp_path: Path) -> None:
    consumer = server.login("consumer")
    receipt = tmp_path / "receipt.json"
    before = consumer_budget(server.node)
    shown = entrepot(consumer, "query", SQL, "--epsilon", "0.5", "--receipt", str(receipt))
    assert shown.returncode == 0, shown.stderr
    assert "district" in shown.stdout
    assert "95% interval" in shown.stdout
    assert "ε spent 0.5 · ε left" in shown.stdout
    assert "receipt: log entry" in shown.stdout
    assert consumer_budget(server.node) == pytest.approx(before + 0.5)
    checked = verify_receipt(receipt.read_bytes(), server.node.verify_key)
    assert checked.statement["kind"] == "query"
    # The same question again, as JSON: the earlier answer, and nothing more is spent.
    again = json.loads(in_process(consumer, "query", SQL, "--epsilon", "0.5", "--json"))
    assert (again["repeated"], again["epsilon_spent"]) == (True, 0.0)
    assert again["answer"]["keys"] == ["district"]
    assert consumer_budget(server.node) == pytest.approx(before + 0.5)
    local = json.loads(
        in_process(
            tmp_path / "logged-out.json",
            *("query", SQL, "--epsilon", "0.5", "--json"),
            *("--home", str(server.node.home), "--as", ORG["consumer"]),
        )
    )
    # Locally the same consumer gets the same (repeated) answer in the same shape.
    assert local.keys() == again.keys()
    assert local["answer"] == again["answer"]


def consumer_budget(node: Node) -> float:
    visible = Budgets(node.db).visible(actor(node, ORG["consumer"]))
    [budget] = [b for b in visible if b.dataset == DATASET]
    return budget.epsilon_spent


def test_only_the_provider_sets_its_dataset_cap_over_the_server(server: Served) -> None:
    provider = server.login("provider")
    cap = json.loads(in_process(provider, "budget", "set-cap", DATASET, "--epsilon", "7", "--json"))
    assert (cap["dataset"], cap["epsilon_cap"]) == (DATASET, 7.0)
    on_server = Budgets(server.node.db).cap(LOCAL, DATASET)
    assert on_server is not None
    assert on_server.epsilon_cap == 7.0
    message = refused(
        entrepot(server.login("consumer"), "budget", "set-cap", DATASET, "--epsilon", "70"),
        ExitCode.REFUSED,
    )
    assert "may not call this endpoint" in message
    other = run(server.login("other-provider"), "budget", "set-cap", DATASET, "--epsilon", "70")
    assert isinstance(other.exception, NotFound)
    assert f"no dataset {DATASET} in the catalog" in other.exception.message
    assert Budgets(server.node.db).cap(LOCAL, DATASET) == on_server


def test_accounts_and_tokens_over_the_server(server: Served) -> None:
    created = json.loads(
        in_process(
            server.login("operator"),
            *("account", "create", "field-analyst", "--role", "consumer"),
            *("--org", "city-health-bureau", "--json"),
        )
    )
    assert (created["account"], created["role"], created["org"]) == (
        "field-analyst",
        "consumer",
        "city-health-bureau",
    )
    secret = created["token"]
    me = httpx.get(f"{server.url}/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.json()["account"] == "field-analyst"
    # The organization's own consumer account lists and revokes the colleague's token.
    consumer = server.login("consumer")
    listed = in_process(consumer, "account", "list", "--tokens")
    assert created["token_id"] in listed
    assert secret not in listed
    revoked = json.loads(
        in_process(consumer, "account", "revoke-token", created["token_id"], "--json")
    )
    assert revoked["revoked_at"] is not None
    me = httpx.get(f"{server.url}/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 401
    # A consumer account may not create accounts: refused by the server, in one paragraph.
    sneaky = run(consumer, "account", "create", "sneaky", "--role", "operator")
    assert isinstance(sneaky.exception, Forbidden)
    assert "may not call this endpoint" in sneaky.exception.message


def test_whoami_names_the_tokens_account_or_the_local_node(server: Served, tmp_path: Path) -> None:
    shown = entrepot(server.login("consumer"), "whoami")
    assert shown.returncode == 0, shown.stderr
    assert " ".join(shown.stdout.split()) == (
        f"consumer (consumer of city-health-bureau) on {server.url}"
    )
    local = in_process(tmp_path / "logged-out.json", "whoami", "--home", str(server.node.home))
    assert " ".join(local.split()) == f"local node at {server.node.home.resolve()}"
    as_org = json.loads(
        in_process(
            tmp_path / "logged-out.json",
            *("whoami", "--home", str(server.node.home), "--as", "riverside-hospitals", "--json"),
        )
    )
    assert (as_org["server"], as_org["role"], as_org["org"]) == (None, "provider", ORG["provider"])
