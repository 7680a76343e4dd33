"""A private join through every door: the CLI (local), the API over HTTP, the client."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.api.conftest import running
from tests.exchange.join_world import CONSUMER, PAYMENTS, VISITS, JoinWorld
from typer.testing import CliRunner

from entrepot.api.app import create_app
from entrepot.cli.app import app
from entrepot.client.http import HttpClient
from entrepot.errors import ExitCode
from entrepot.exchange.accounts import LOCAL

SQL = (
    "SELECT t.district, COUNT(DISTINCT v.patient_id) AS people "
    "FROM riverside_hospitals.outpatient_visits v "
    "JOIN acme_pay.transactions t ON v.patient_id = t.person_id GROUP BY t.district"
)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[JoinWorld]:
    made = JoinWorld(tmp_path / "node")
    made.publish(
        [("AB0001", "910101", "I"), ("AB0002", "910102", "I"), ("AB0003", "910102", "II")],
        [("AB0001", "910101", 3.0), ("AB0003", "910102", 4.0), ("AB0008", "910101", 1.0)],
    )
    made.close()
    return made


def test_the_cli_answers_a_join_query_and_an_overlap_in_the_query_shape(
    world: JoinWorld,
) -> None:
    home = str(world.home)
    runner = CliRunner()
    asked = runner.invoke(
        app, ["query", "--home", home, "--as", CONSUMER, "-e", "0.5", "--json", SQL]
    )
    assert asked.exit_code == 0, asked.output
    body = json.loads(asked.stdout)
    assert body["dataset"] == f"{VISITS} JOIN {PAYMENTS}"
    assert [d["dataset"] for d in body["datasets"]] == [VISITS, PAYMENTS]
    assert body["answer"]["keys"] == ["district"]
    assert body["epsilon_spent"] == pytest.approx(1.0)
    table = runner.invoke(app, ["query", "--home", home, "--as", CONSUMER, "-e", "0.3", SQL])
    assert table.exit_code == 0, table.output
    assert f"{VISITS} v1 ⋈" in table.stdout
    assert f"{PAYMENTS} v1" in table.stdout
    overlap = runner.invoke(
        app,
        [
            "join",
            "overlap",
            VISITS,
            PAYMENTS,
            "--home",
            home,
            "--as",
            CONSUMER,
            "-e",
            "0.2",
            "--json",
        ],
    )
    assert overlap.exit_code == 0, overlap.output
    shaped = json.loads(overlap.stdout)
    assert shaped["answer"]["aggregates"] == ["people"]
    assert shaped["epsilon_spent"] == pytest.approx(0.4)


def test_the_cli_answers_a_join_query_of_a_median_and_spends_it_as_an_answer(
    world: JoinWorld,
) -> None:
    """The CLI follows a join's steps with a progress bar; a quantile's step is one of them."""
    median = (
        "SELECT MEDIAN(t.amount) AS median_amount, COUNT(*) AS pairs "
        "FROM riverside_hospitals.outpatient_visits v "
        "JOIN acme_pay.transactions t ON v.patient_id = t.person_id"
    )
    asked = CliRunner().invoke(
        app, ["query", "--home", str(world.home), "--as", CONSUMER, "-e", "0.5", "--json", median]
    )
    assert asked.exit_code == 0, asked.output
    body = json.loads(asked.stdout)
    assert body["answer"]["aggregates"] == ["median_amount", "pairs"]
    assert body["epsilon_spent"] == pytest.approx(1.0)


def entrepot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrepot", *args], capture_output=True, text=True, check=False
    )


def test_the_cli_refuses_a_bad_join_with_its_rule_and_no_traceback(world: JoinWorld) -> None:
    bad = SQL.replace("JOIN", "LEFT JOIN")
    refused = entrepot("query", "--home", str(world.home), "--as", CONSUMER, "-e", "0.5", bad)
    assert refused.returncode == ExitCode.REFUSED
    assert "Traceback" not in refused.stderr
    assert "inner join" in refused.stderr
    missing = entrepot(
        "join", "overlap", VISITS, "acme-pay/nothing", "--home", str(world.home), "--as", CONSUMER
    )
    assert missing.returncode == ExitCode.NOT_FOUND
    assert "Traceback" not in missing.stderr


def test_the_api_and_the_http_client_answer_joins(world: JoinWorld) -> None:
    from entrepot.exchange.node import Node
    from entrepot.settings import Settings

    node = Node.open(Settings(home=world.home, token_hash_memory_kib=1024, api_query_workers=0))
    try:
        from entrepot.exchange.accounts import Accounts

        accounts = Accounts(node.db, node.settings, log=node.log)
        secret = accounts.issue_token(LOCAL, CONSUMER).secret
        with running(create_app(node)) as http:
            headers = {"Authorization": f"Bearer {secret}"}
            answered = http.post("/v1/queries", json={"sql": SQL, "epsilon": 0.5}, headers=headers)
            assert answered.status_code == 200, answered.text
            assert [d["dataset"] for d in answered.json()["datasets"]] == [VISITS, PAYMENTS]
            refused = http.post(
                "/v1/queries",
                json={"sql": SQL.replace("JOIN", "CROSS JOIN").split(" ON ")[0], "epsilon": 0.5},
                headers=headers,
            )
            assert refused.status_code == 403
            assert refused.json()["error"]["rule"] == "join"
            with HttpClient(str(http.base_url), token=secret) as client:
                overlap = client.join_overlap(VISITS, PAYMENTS, epsilon=0.2)
            assert overlap["answer"]["aggregates"] == ["people"]
            assert [d["dataset"] for d in overlap["datasets"]] == [VISITS, PAYMENTS]
    finally:
        node.close()
