"""Openings over HTTP: each goes to whom it belongs, and verifies offline with the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from typer.testing import CliRunner

from entrepot.cli.app import app
from entrepot.errors import Forbidden, ProofInvalid

if TYPE_CHECKING:
    from tests.api.conftest import World

DATASET = "riverside-hospitals/outpatient-visits"
SQL = (
    "SELECT district, COUNT(*) AS visits FROM riverside_hospitals.outpatient_visits "
    "GROUP BY district"
)


def _cli(*args: str) -> dict[str, object]:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    loaded: dict[str, object] = json.loads(result.stdout)
    return loaded


def test_the_asker_opens_its_query_and_no_other_consumer_can(
    world: World, api: httpx.Client, tmp_path: Path
) -> None:
    answer = api.post(
        "/v1/queries", json={"sql": SQL, "epsilon": 0.5}, headers=world.auth("consumer")
    )
    assert answer.status_code == 200, answer.text
    receipt = answer.json()["receipt"]
    index = receipt["log"]["index"]
    assert receipt["opening"]["query_text"] == SQL
    assert SQL not in receipt["log"]["entry"]
    url = f"/v1/openings/queries/{index}"
    for who in ("consumer", "auditor", "operator"):
        opened = api.get(url, headers=world.auth(who))
        assert opened.status_code == 200, opened.text
        assert opened.json() == receipt["opening"]
    for who in ("other-consumer", "provider"):
        refused = api.get(url, headers=world.auth(who))
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == Forbidden.code
    # An auditor checks the opening against the public entry, with no node.
    opening = tmp_path / "opening.json"
    opening.write_text(json.dumps(api.get(url, headers=world.auth("auditor")).json()))
    entry = tmp_path / "entry.json"
    proof = api.get(f"/v1/audit/proofs/inclusion/{index}", headers=world.auth("auditor"))
    entry.write_text(json.dumps(proof.json()))
    checked = _cli("opening", "verify", str(opening), "--entry", str(entry))
    assert checked["commitment"] == json.loads(receipt["log"]["entry"])["query_commitment"]


def test_the_provider_opens_a_version_for_an_auditor_who_checks_the_receipt(
    world: World, api: httpx.Client, tmp_path: Path
) -> None:
    answer = api.post(
        "/v1/queries", json={"sql": SQL, "epsilon": 0.5}, headers=world.auth("consumer")
    )
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps(answer.json()["receipt"]))
    url = f"/v1/openings/datasets/{DATASET}/versions/1"
    for who in ("consumer", "auditor", "other-provider"):
        assert api.get(url, headers=world.auth(who)).status_code == 403
    opened = api.get(url, headers=world.auth("provider"))
    assert opened.status_code == 200, opened.text
    body = opened.json()
    assert body["dataset"] == DATASET
    assert body["content_sha256"] not in receipt.read_text()
    opening = tmp_path / "opening.json"
    opening.write_text(json.dumps(body))
    key = world.node.path("keys", "node.pub")
    checked = _cli(
        "opening", "verify", str(opening), "--receipt", str(receipt), "--node-key", str(key)
    )
    assert checked["commitment"] == body["content_commitment"]
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({**body, "content_sha256": "00" * 32}))
    result = CliRunner().invoke(
        app, ["opening", "verify", str(forged), "--receipt", str(receipt), "--node-key", str(key)]
    )
    assert isinstance(result.exception, ProofInvalid)
    assert "does not open" in str(result.exception)
