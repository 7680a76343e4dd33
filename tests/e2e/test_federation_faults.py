"""Faults between two `entrepot serve` processes, made by a real proxy on the path.

Node a holds hospital visits; node b's consumer reaches a only through the proxy
(b added a at the proxy's URL). The proxy drops, delays, corrupts and replays
messages, and a is killed while a query is on its way. Each fault is recovered or
ends in an error naming a; a replay is refused by its rule; and afterwards a's
ledger holds exactly what the answered queries cost, and b's holds nothing.
"""

from __future__ import annotations

import json
import subprocess
import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.test_federation import _env
from tests.e2e.test_server import entrepot, server, stop
from tests.exchange.logged_world import DATASET, PROVIDER, seed
from tests.federation.nodes import federation_node
from tests.federation.proxy import fault_proxy

from entrepot.errors import ExitCode

QUERY = "SELECT COUNT(*) AS n FROM a.riverside_hospitals.outpatient_visits"
# Whoever b's consumer is on b, a knows it as this organization of its own.
ON_A = "b-city-desk"


def run(env: dict[str, str], *args: str) -> Any:
    done = entrepot(*args, "--json", env=env)
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(done.stdout)


def refused(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = entrepot(*args, "--json", env=env)
    assert done.returncode != 0, done.stdout
    error: dict[str, Any] = json.loads(done.stdout)["error"]
    return error


def query(env: dict[str, str], epsilon: float = 0.05) -> subprocess.CompletedProcess[str]:
    return entrepot(
        "query", QUERY, "--epsilon", str(epsilon), "--as", "city-desk", "--json", env=env
    )


def spent_on_a(env: dict[str, str]) -> float:
    budgets = run(env, "budget", "--as", ON_A)
    return float(sum(b["epsilon_spent"] for b in budgets))


def test_faults_between_nodes_are_recovered_or_named_and_budgets_stay_exact(
    tmp_path: Path,
) -> None:
    homes = {name: tmp_path / name for name in "ab"}
    env = {name: _env(name, home) for name, home in homes.items()}
    provider = federation_node(tmp_path, "a")
    seed(provider, tmp_path, query=False)
    provider.close()
    federation_node(tmp_path, "b").close()
    run(env["b"], "account", "create", "city-desk", "--role", "consumer")
    keys = {name: run(env[name], "node", "id")["key"] for name in "ab"}
    answered: list[float] = []

    with server(homes["b"], env=env["b"], wait_s=180) as (b_url, _):
        a = server(homes["a"], env=env["a"], wait_s=180)
        a_url, a_process = a.__enter__()
        try:
            with fault_proxy(int(a_url.rsplit(":", 1)[1])) as proxy:
                # A key other than a's: refused, naming the rule, and a is not trusted.
                wrong = refused(env["b"], "peer", "add", proxy.url, "--key", keys["b"][::-1])
                assert wrong["code"] == "peer_error"
                assert wrong["rule"] in ("response_signature", "peer_identity")
                assert run(env["b"], "peer", "list") == []

                run(env["a"], "peer", "add", b_url, "--key", keys["b"])
                assert run(env["b"], "peer", "add", proxy.url, "--key", keys["a"])["name"] == "a"
                until = (date.today() + timedelta(days=30)).isoformat()
                # The access request's answer is lost: b asks again under the same
                # request id, and a answers with the request it made the first time.
                proxy.then("drop-answer")
                asked = run(
                    env["b"],
                    "access", "request", f"a:{DATASET}",
                    "--purpose", "public-health-surveillance",
                    "--epsilon", "3",
                    "--until", until,
                    "--as", "city-desk",
                )  # fmt: skip
                pending = run(env["a"], "access", "list", "--pending", "--as", PROVIDER)
                assert [r["id"] for r in pending["requests"]] == [asked["id"]]
                run(env["a"], "access", "grant", asked["id"], "--as", "riverside-hospitals")

                # Unharmed, then each fault the consumer's node recovers from: a dropped
                # request is sent again; a lost or altered answer is asked again under
                # the same request id, which a answers from what it kept, spending once.
                # Each asks another ε, so that none is an answer a gives again for free.
                faults = ("pass", "drop", "drop-answer", "corrupt-answer", "delay")
                for epsilon, fault in zip((0.1, 0.2, 0.3, 0.4, 0.5), faults, strict=True):
                    proxy.then(fault)
                    done = query(env["b"], epsilon)
                    assert done.returncode == 0, (fault, done.stdout + done.stderr)
                    answer = json.loads(done.stdout)
                    assert answer["node"] == "a"
                    answered.append(answer["epsilon_spent"])
                    assert spent_on_a(env["a"]) == pytest.approx(sum(answered)), fault

                # An altered request is refused by a, by its rule, and spends nothing.
                proxy.then("corrupt-request")
                done = query(env["b"])
                assert done.returncode == ExitCode.REFUSED, done.stdout + done.stderr
                error = json.loads(done.stdout)["error"]
                assert error["rule"] == "envelope_signature"
                assert error["peer"] == "a"

                # A request replayed byte for byte is refused: its nonce was used.
                [first] = [m for f, m in proxy.seen if f == "pass" and b"/query" in m][:1]
                replayed = proxy.replay(first)
                body = json.loads(replayed.partition(b"\r\n\r\n")[2])
                assert body["error"]["rule"] == "envelope_replay"
                assert spent_on_a(env["a"]) == pytest.approx(sum(answered))

                # a dies while a query is on its way to it: b names a, spends nothing.
                proxy.then("hold")
                outcome: list[subprocess.CompletedProcess[str]] = []
                asking = threading.Thread(target=lambda: outcome.append(query(env["b"])))
                asking.start()
                assert proxy.held.wait(180)
                stop(a_process)
                proxy.release()
                asking.join(300)
                [done] = outcome
                assert done.returncode == ExitCode.UNREACHABLE, done.stdout + done.stderr
                error = json.loads(done.stdout)["error"]
                assert error["code"] == "peer_error"
                assert error["peer"] == "a"
                assert "peer a" in error["message"]
        finally:
            a.__exit__(None, None, None)

    # Afterwards: a spent exactly what the answered queries cost; b spent nothing.
    assert answered == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert spent_on_a(env["a"]) == pytest.approx(sum(answered))
    assert run(env["b"], "budget", "--as", "city-desk") == []
