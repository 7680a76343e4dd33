"""A dataset's policy, and so its ε cap, and its releases are its provider's to change.

An operator's account runs the node, not the provider's data: it is refused by the
rule ``provider_decides`` whichever door it comes through, the CLI on the node's home
(``--as`` the operator), the CLI logged in to the server, or the API. The provider
(``--as`` it, or its account) and the holder of the node's home still decide.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.api.conftest import running
from tests.exchange.logged_world import DATASET, PROVIDER
from tests.exchange.release_world import CONSUMER, released, served_node
from tests.vault.cli_runner import Result, run_cli

from entrepot.api import create_app
from entrepot.client import Remote, save_remote
from entrepot.errors import ExitCode
from entrepot.exchange import Exchange
from entrepot.exchange.accounts import LOCAL
from entrepot.exchange.node import Node
from entrepot.settings import Settings

OPERATOR = "exchange-operator"
LOOSER = "epsilon:\n  per_query: 1.0\n  dataset_cap: 500.0\nlatency_floor_ms: 0\n"


@dataclass
class Served:
    """A live server over a node with release R-1 of :data:`DATASET`, and an operator."""

    node: Node
    exchange: Exchange
    client: httpx.Client
    operator_token: str


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with served_node(tmp_path / "node") as node:
        ex = released(node, tmp_path)
        _, issued = ex.accounts.create(LOCAL, OPERATOR, "operator")
        with running(create_app(node)) as client:
            yield Served(node, ex, client, issued.secret)


Run = Callable[..., Result]


@pytest.fixture
def on_home(
    served: Served,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Run:
    """The CLI on the node's home, logged in nowhere."""

    def run(*args: str) -> Result:
        monkeypatch.setenv("ENTREPOT_CLIENT_CONFIG", str(tmp_path / "logged-out.json"))
        return run_cli(capsys, monkeypatch, *args, "--home", str(served.node.home))

    return run


@pytest.fixture
def logged_in(
    served: Served,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Run:
    """The CLI logged in to the server with the operator's token."""
    config = tmp_path / "operator.json"
    save_remote(
        Remote(str(served.client.base_url), served.operator_token),
        Settings(client_config=config),
    )

    def run(*args: str) -> Result:
        monkeypatch.setenv("ENTREPOT_CLIENT_CONFIG", str(config))
        return run_cli(capsys, monkeypatch, *args)

    return run


def _refused(result: Result) -> dict[str, str]:
    assert result.code == ExitCode.REFUSED, result.stdout + result.stderr
    error: dict[str, str] = result.json()["error"]
    return error


def test_an_operator_sets_no_providers_policy_through_any_door(
    served: Served, on_home: Run, logged_in: Run, tmp_path: Path
) -> None:
    before = served.exchange.policies.get(DATASET)
    policy = tmp_path / "looser.yaml"
    policy.write_text(LOOSER, encoding="utf-8")

    local = _refused(on_home("policy", "set", DATASET, str(policy), "--as", OPERATOR, "--json"))
    remote = _refused(logged_in("policy", "set", DATASET, str(policy), "--json"))
    over_http = served.client.put(
        f"/v1/policies/{DATASET}",
        json={"document": LOOSER},
        headers={"Authorization": f"Bearer {served.operator_token}"},
    )
    assert over_http.status_code == 403
    assert local == remote == over_http.json()["error"]
    assert local["rule"] == "provider_decides"
    assert local["message"] == f"only {PROVIDER}, the provider of {DATASET}, may set its policy"

    after = served.exchange.policies.get(DATASET)
    assert (after.policy.digest, after.set_by) == (before.policy.digest, before.set_by)
    cap = served.exchange.budgets.cap(LOCAL, DATASET)
    assert cap is not None
    assert cap.epsilon_cap == before.policy.dataset_epsilon_cap


def test_the_provider_and_the_homes_holder_set_the_policy(
    served: Served, on_home: Run, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(LOOSER, encoding="utf-8")
    by_provider = on_home("policy", "set", DATASET, str(policy), "--as", PROVIDER, "--json")
    assert by_provider.code == 0, by_provider.stderr
    assert by_provider.json()["set_by"] == f"org:{PROVIDER}"
    by_holder = on_home("policy", "set", DATASET, str(policy), "--json")
    assert by_holder.code == 0, by_holder.stderr
    assert by_holder.json()["set_by"] != f"org:{PROVIDER}"


def test_an_operator_revokes_no_providers_release(
    served: Served, on_home: Run, logged_in: Run
) -> None:
    local = _refused(on_home("release", "revoke", "R-1", "--as", OPERATOR, "--json"))
    assert local["rule"] == "provider_decides"
    assert (
        local["message"] == f"only {PROVIDER}, the provider of {DATASET}, may revoke its releases"
    )
    _refused(logged_in("release", "revoke", "R-1", "--json"))
    over_http = served.client.post(
        "/v1/releases/R-1/revoke",
        json={"reason": "operator's call"},
        headers={"Authorization": f"Bearer {served.operator_token}"},
    )
    assert over_http.status_code == 403
    [release] = served.exchange.releases.shared(served.exchange.actor(CONSUMER))
    assert release.record.state == "active"

    revoked = on_home("release", "revoke", "R-1", "--as", PROVIDER, "--json")
    assert revoked.code == 0, revoked.stderr
    assert revoked.json()["state"] == "revoked"


def test_an_operator_sets_no_providers_cap(served: Served, on_home: Run) -> None:
    before = served.exchange.budgets.cap(LOCAL, DATASET)
    refused = _refused(
        on_home("budget", "set-cap", DATASET, "--epsilon", "500", "--as", OPERATOR, "--json")
    )
    assert refused["rule"] == "provider_decides"
    assert refused["message"] == f"only {PROVIDER}, the provider of {DATASET}, may set its ε cap"
    assert served.exchange.budgets.cap(LOCAL, DATASET) == before
    by_provider = on_home("budget", "set-cap", DATASET, "--epsilon", "7", "--as", PROVIDER)
    assert by_provider.code == 0, by_provider.stderr
    cap = served.exchange.budgets.cap(LOCAL, DATASET)
    assert cap is not None
    assert cap.epsilon_cap == 7.0
