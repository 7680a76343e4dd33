"""Three nodes as users run them: `entrepot serve` processes with their own homes.

Node a holds hospital visits, node c payments, node b's consumer asks for them. The
three peer each other by key, b searches every catalog, asks a for access, a's
provider grants it, b's consumer queries a's data, and c verifies a's receipt
offline, first as a signed it, then with the cosignatures b and c later gave a's
checkpoint as its witnesses. Then b's consumer joins a's visits with c's payments:
a and c each grant it, a matches, and each holder spends and signs for its own
dataset.
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path

from tests.e2e.test_server import entrepot, server
from tests.exchange.join_world import PAYMENTS
from tests.exchange.logged_world import DATASET, POLICY, PROVIDER, seed
from tests.federation.join_nodes import PAYMENT_ROWS, payment_rows, publish

from entrepot.errors import ExitCode
from entrepot.exchange import Exchange
from entrepot.exchange.node import Node
from entrepot.settings import Settings

JOIN = (
    "SELECT COUNT(*) AS pairs FROM a.riverside_hospitals.outpatient_visits v "
    "JOIN c.acme_pay.transactions t ON v.patient_id = t.person_id"
)


def _env(name: str, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "ENTREPOT_HOME": str(home),
        "ENTREPOT_NODE_NAME": name,
        "ENTREPOT_API_QUERY_WORKERS": "0",
        "ENTREPOT_TOKEN_HASH_MEMORY_KIB": "1024",
    }


def run(env: dict[str, str], *args: str) -> object:
    done = entrepot(*args, "--json", env=env)
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(done.stdout)


def test_three_nodes_search_request_query_and_verify_across(tmp_path: Path) -> None:
    homes = {name: tmp_path / name for name in "abc"}
    env = {name: _env(name, home) for name, home in homes.items()}
    provider = Node.init(Settings(home=homes["a"], token_hash_memory_kib=1024))
    seed(provider, tmp_path, query=False)
    visits = Exchange(provider)
    joinable = POLICY + f"join_with: [c:{PAYMENTS}]\n"
    visits.policies.set(visits.actor(PROVIDER), DATASET, joinable, where="test")
    provider.close()
    payer = Node.init(Settings(home=homes["c"], token_hash_memory_kib=1024))
    publish(payer, "acme-pay", "payments.transaction", "Transactions", payment_rows(PAYMENT_ROWS))
    payments = Exchange(payer)
    joinable = POLICY + f"join_with: [a:{DATASET}]\n"
    payments.policies.set(payments.actor("acme-pay"), PAYMENTS, joinable, where="test")
    payer.close()
    assert entrepot("init", env=env["b"]).returncode == 0
    run(env["b"], "account", "create", "city-desk", "--role", "consumer")
    keys = {name: run(env[name], "node", "id")["key"] for name in "abc"}  # type: ignore[index]
    with ExitStack() as stack:
        urls = {name: stack.enter_context(server(homes[name], env=env[name]))[0] for name in "abc"}
        for me, them in ("ab", "ba", "ac", "ca", "bc", "cb"):
            added = run(env[me], "peer", "add", urls[them], "--key", keys[them])
            assert added["name"] == them  # type: ignore[index]

        found = run(env["b"], "catalog", "search", "visits", "--federated")
        assert [(f["node"], f["dataset"]) for f in found] == [("a", DATASET)]  # type: ignore[attr-defined]
        health = run(env["b"], "peer", "list")
        assert {p["name"]: p["status"] for p in health} == {"a": "ok", "c": "ok"}  # type: ignore[attr-defined]

        until = (date.today() + timedelta(days=30)).isoformat()
        asked = run(
            env["b"],
            "access", "request", f"a:{DATASET}",
            "--purpose", "public-health-surveillance",
            "--epsilon", "1",
            "--until", until,
            "--action", "aggregate-query",
            "--action", "private-join",
            "--as", "city-desk",
        )  # fmt: skip
        assert asked["node"] == "a"  # type: ignore[index]
        run(env["a"], "access", "grant", asked["id"], "--as", PROVIDER)  # type: ignore[index]
        asked = run(
            env["b"],
            "access", "request", f"c:{PAYMENTS}",
            "--purpose", "public-health-surveillance",
            "--epsilon", "1",
            "--until", until,
            "--action", "private-join",
            "--as", "city-desk",
        )  # fmt: skip
        run(env["c"], "access", "grant", asked["id"], "--as", "acme-pay")  # type: ignore[index]
        # b keeps a read-only copy of its consumer's grants on a and c, read from them.
        listed = run(env["b"], "access", "list", "--as", "city-desk")
        copies = {(c["node"], c["state"]) for c in listed["remote"]}  # type: ignore[index]
        assert copies == {("a", "granted"), ("c", "granted")}
        assert listed["grants"] == []  # type: ignore[index]

        receipt = tmp_path / "r.json"
        answered = run(
            env["b"],
            "query", "SELECT COUNT(*) AS n FROM a.riverside_hospitals.outpatient_visits",
            "--epsilon", "0.5",
            "--as", "city-desk",
            "--receipt", str(receipt),
        )  # fmt: skip
        assert answered["epsilon_spent"] == 0.5  # type: ignore[index]
        # b's consumer has no grant of its own on b, nor any ledger there.
        assert run(env["b"], "budget", "--as", "city-desk") == []

        # The answer came with a's checkpoint signed by a alone: it verifies as it is.
        alone = run(env["c"], "receipt", "verify", str(receipt), "--peer", "a")
        assert alone["ok"] is True  # type: ignore[index]
        assert alone["cosigned_by"] == []  # type: ignore[index]
        # a's peers cosign it off the answer's path; the receipt then takes the
        # checkpoint they cosigned, and c checks its own cosignature and b's.
        witnessed = run(env["c"], "receipt", "witness", str(receipt), "--peer", "a")
        assert {w["node"] for w in witnessed["cosigned_by"]} == {"b", "c"}  # type: ignore[index]
        checked = run(env["c"], "receipt", "verify", str(receipt), "--peer", "a")
        assert checked["ok"] is True  # type: ignore[index]
        cosigned = {w["node"] for w in checked["cosigned_by"]}  # type: ignore[index]
        assert cosigned == {"b", "c"}
        # Anyone else checks c's cosignature with c's witness key alone.
        witness = run(env["c"], "node", "id")["witness_vkey"]  # type: ignore[index]
        offline = run(
            env["b"],
            "receipt",
            "verify",
            str(receipt),
            "--node-key",
            keys["a"],
            "--witness",
            witness,
        )
        assert [w["witness"] for w in offline["cosigned_by"]] == [witness.split("+")[0]]  # type: ignore[index]
        # c also pulls a's checkpoint now and cosigns it: a's log extends what c saw.
        pulled = run(env["c"], "peer", "witness", "a")
        assert pulled[0]["old"] > 0  # type: ignore[index]
        assert pulled[0]["size"] >= pulled[0]["old"]  # type: ignore[index]
        forged = json.loads(receipt.read_text())
        forged["statement"]["epsilon"] = "0.1"
        receipt.write_text(json.dumps(forged))
        refused = entrepot("receipt", "verify", str(receipt), "--peer", "a", env=env["c"])
        assert refused.returncode == ExitCode.VERIFY_FAILED

        # A join of a's visits with c's payments: a leads and matches, each holder
        # spends and signs for its own dataset, and b keeps no ledger of its own.
        joined = run(env["b"], "query", JOIN, "--epsilon", "0.5", "--as", "city-desk")
        assert joined["node"] == "a"  # type: ignore[index]
        assert joined["epsilon_spent"] == 1.0  # type: ignore[index]
        receipts = {r["node"]: r["receipt"] for r in joined["receipts"]}  # type: ignore[index]
        assert set(receipts) == {"a", "c"}
        for holder, signed in receipts.items():
            receipt.write_text(json.dumps(signed))
            checked = run(env["b"], "receipt", "verify", str(receipt), "--peer", holder)
            assert checked["ok"] is True  # type: ignore[index]
        assert run(env["b"], "budget", "--as", "city-desk") == []
        for holder, org in (("a", "b-city-desk"), ("c", "b-city-desk")):
            left = run(env[holder], "budget", "--as", org)
            assert [b["epsilon_spent"] for b in left] == ([1.0] if holder == "a" else [0.5])  # type: ignore[index]
