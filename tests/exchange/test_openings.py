"""Commitments on a real node: a rebuilt candidate file or a guessed query matches nothing
public, while the owner's and the asker's openings verify offline."""

from __future__ import annotations

import csv
import hashlib
import hmac
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from entrepot.db import Database, alembic_config
from entrepot.errors import Forbidden, InvalidInput, PolicyViolation, ProofInvalid
from entrepot.exchange import Exchange
from entrepot.exchange.accounts import LOCAL, Accounts, Actor
from entrepot.exchange.catalog import publish_version
from entrepot.exchange.contracts import Contracts
from entrepot.exchange.node import Node
from entrepot.exchange.openings import Openings
from entrepot.exchange.policies import Policies
from entrepot.settings import Settings
from entrepot.standards import codelist, get
from entrepot.transparency import verify_opening, verify_receipt
from entrepot.vault import LocalVault, OnError, PublishRequest, add_provider

DATASET = "riverside-hospitals/outpatient-visits"
SQL = (
    "SELECT district, COUNT(*) AS visits FROM riverside_hospitals.outpatient_visits "
    "GROUP BY district"
)
POLICY = """
epsilon:
  per_query: 1.0
  dataset_cap: 5.0
latency_floor_ms: 0
threshold: 0
contributions:
  rows_per_unit: 1
  groups: 1
"""


def _visits(path: Path, diagnosis: str) -> Path:
    """Forty public-looking visits and one planted person whose diagnosis is the secret."""
    districts = codelist("region.district").codes[:2]
    rows = [
        [f"V{i:04d}", f"P-{i:04d}", "2025-03-01", districts[i % 2], "1", "15-24", "I", "10", "1"]
        for i in range(40)
    ]
    rows.append(["V9999", "P-9999", "2025-03-02", districts[0], "2", "15-24", diagnosis, "10", "1"])
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(get("health.visit").field_names)
        writer.writerows(rows)
    return path


def _publish(node: Node, source: Path) -> None:
    with source.open("rb") as data:
        publish_version(
            node,
            PublishRequest(
                provider="riverside-hospitals",
                standard=get("health.visit"),
                title="Outpatient visits",
                dataset="outpatient-visits",
                on_error=OnError.REJECT,
                filename="visits.csv",
            ),
            data,
        )


def _world(home: Path, source: Path) -> tuple[Node, dict[str, Actor]]:
    node = Node.init(Settings(home=home, token_hash_memory_kib=1024))
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
    _publish(node, source)
    accounts = Accounts(node.db, node.settings, log=node.log)
    actors = {"provider": accounts.actor("riverside-hospitals")}
    for name, role in (("acme", "consumer"), ("rival", "consumer"), ("watch", "auditor")):
        accounts.create(LOCAL, name, role, org=name)
        actors[name] = accounts.actor(name)
    Policies(node).set(actors["provider"], DATASET, POLICY, where="test")
    contracts = Contracts(node.db, node.settings, log=node.log)
    for consumer in ("acme", "rival"):
        request = contracts.request(
            actors[consumer],
            DATASET,
            purpose="public-health-surveillance",
            epsilon=3.0,
            until=date.today() + timedelta(days=30),
        )
        contracts.grant(actors["provider"], request.ref, epsilon=3.0)
    return node, actors


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Node, dict[str, Actor]]]:
    secret = codelist("diagnosis_group").codes[2]
    node, actors = _world(tmp_path / "node", _visits(tmp_path / "visits.csv", secret))
    yield node, actors
    node.close()


def _public(node: Node) -> str:
    """Everything anyone can read: every log entry."""
    return "\n".join(line.decode() for line in node.log.store.entries(0, node.log.size))


def test_rebuilt_candidate_files_match_no_public_commitment(
    world: tuple[Node, dict[str, Actor]], tmp_path: Path
) -> None:
    node, actors = world
    result = Exchange(node).queries.run(actors["acme"], SQL, epsilon=0.5)
    # The attacker rebuilds the file for each candidate diagnosis with the same software.
    attacker = Node.init(Settings(home=tmp_path / "attacker"))
    add_provider(attacker.db, "riverside-hospitals", "Riverside Hospitals")
    candidates = codelist("diagnosis_group").codes[:4]
    for number, diagnosis in enumerate(candidates, start=1):
        _publish(attacker, _visits(tmp_path / f"guess-{number}.csv", diagnosis))
    rebuilt = [v.sha256 for v in LocalVault.of(attacker).versions(DATASET)]
    attacker.close()
    opening = Openings(node).content(actors["provider"], DATASET, 1)
    # Publishing is deterministic: a plain hash would have named the diagnosis.
    assert rebuilt.index(opening.content_sha256) == 2
    public = _public(node) + result.receipt.to_bytes().decode()
    for digest in rebuilt:
        assert digest not in public
        for guess in (b"", b"\x00" * 32, digest.encode()):
            assert hmac.new(guess, bytes.fromhex(digest), hashlib.sha256).hexdigest() not in public
    _, logged = node.log.search(kind="dataset_version")[-1]
    assert verify_opening(opening.to_json(), logged) == logged["content_commitment"]
    assert verify_opening(opening, result.receipt.statement) == opening.commitment
    wrong = type(opening)(DATASET, "1", rebuilt[0], opening.key)
    with pytest.raises(ProofInvalid, match="content opening"):
        verify_opening(wrong, logged)


def test_only_the_provider_opens_a_versions_commitment(
    world: tuple[Node, dict[str, Actor]],
) -> None:
    node, actors = world
    openings = Openings(node)
    assert (
        openings.content(LOCAL, DATASET, 1).commitment
        == openings.content(actors["provider"], DATASET, 1).commitment
    )
    for who in ("acme", "watch"):
        with pytest.raises(Forbidden, match="only riverside-hospitals"):
            openings.content(actors[who], DATASET, 1)


def test_guessed_queries_match_no_commitment_and_repeats_look_new(
    world: tuple[Node, dict[str, Actor]],
) -> None:
    node, actors = world
    queries = Exchange(node).queries
    first = queries.run(actors["acme"], SQL, epsilon=0.5)
    again = queries.run(actors["acme"], SQL, epsilon=0.5)
    assert again.repeated
    with pytest.raises(PolicyViolation):
        queries.run(actors["acme"], SQL.replace("district", "patient_id"), epsilon=0.5)
    entries = [entry for _, entry in node.log.search(kind="query")]
    assert [e["outcome"] for e in entries] == ["answered", "repeated", "refused"]
    commitments = [e["query_commitment"] for e in entries]
    answers = [e["answer_commitment"] for e in entries[:2]]
    # Equal queries and byte-identical answers: nothing public says so.
    assert len(set(commitments)) == 3
    assert len(set(answers)) == 2
    public = _public(node)
    for guess in (SQL, SQL.replace("district", "patient_id"), SQL.lower(), SQL + ";"):
        assert hashlib.sha256(guess.encode()).hexdigest() not in public
        assert guess not in public
    for result, entry in ((first, entries[0]), (again, entries[1])):
        checked = verify_receipt(result.receipt.to_bytes(), node.verify_key)
        assert checked.opening is not None
        verify_opening(checked.opening, entry, answer=result.answer.to_json())


def test_a_query_opens_to_its_asker_and_auditors_only(
    world: tuple[Node, dict[str, Actor]],
) -> None:
    node, actors = world
    result = Exchange(node).queries.run(actors["acme"], SQL, epsilon=0.5)
    with pytest.raises(PolicyViolation):
        Exchange(node).queries.run(actors["rival"], SQL.replace("district", "patient_id"))
    openings = Openings(node)
    index = result.receipt.index
    for who in ("acme", "watch"):
        opened = openings.query(actors[who], index)
        assert opened == result.receipt.opening
    assert openings.query(LOCAL, index).text == SQL
    for who in ("rival", "provider"):
        with pytest.raises(Forbidden, match="only the organization that asked"):
            openings.query(actors[who], index)
    refused, entry = node.log.search(kind="query")[-1]
    assert entry["outcome"] == "refused"
    assert openings.query(actors["rival"], refused).text == SQL.replace("district", "patient_id")
    with pytest.raises(InvalidInput, match="commits to no query"):
        openings.query(actors["watch"], 0)


def test_the_public_log_shows_a_grants_terms_and_not_the_negotiation(
    world: tuple[Node, dict[str, Actor]],
) -> None:
    node, actors = world
    contracts = Contracts(node.db, node.settings, log=node.log)
    (grant,) = contracts.grants(actors["rival"])
    contracts.revoke(actors["provider"], grant.ref, reason="Dr. Jane Roe at rival misused it")
    entries = [entry for _, entry in node.log.search(kind="grant")]
    assert [(e["change"], e["consumer"]) for e in entries] == [
        ("granted", "acme"),
        ("granted", "rival"),
        ("revoked", "rival"),
    ]
    assert set(entries[-1]) == {
        "kind",
        "time",
        "actor",
        "dataset",
        "purpose",
        "epsilon",
        "consumer",
        "change",
        "grant",
        "actions",
        "max_queries",
        "valid_from",
        "valid_until",
    }
    assert "Jane Roe" not in _public(node)


def test_existing_versions_get_a_fresh_key_at_migration(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'node.db'}")
    with db.engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
        connection.execute(
            sa.text("INSERT INTO providers (id, slug, name, created_at) VALUES (1, 'p', 'P', 0)")
        )
        connection.execute(
            sa.text(
                "INSERT INTO datasets (id, provider_id, slug, title, description, standard, "
                "schema, created_at, updated_at) VALUES (1, 1, 'd', 'D', '', 's', '{}', 0, 0)"
            )
        )
        for number in (1, 2):
            connection.execute(
                sa.text(
                    "INSERT INTO versions (dataset_id, number, title, path, sha256, size_bytes, "
                    "rows, rows_rejected, standard_version, report, quality, created_at) "
                    f"VALUES (1, {number}, '', 'x', :sha, 1, 1, 0, '', '{{}}', '{{}}', 0)"
                ),
                {"sha": "ab" * 32},
            )
    db.upgrade()
    with db.engine.connect() as connection:
        keys = connection.execute(sa.text("SELECT commitment_key FROM versions")).scalars().all()
    db.dispose()
    assert [len(key) for key in keys] == [32, 32]
    assert keys[0] != keys[1]
