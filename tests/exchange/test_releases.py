"""Releases through the coordinator: refusals name their rule and make and charge
nothing; a release is logged with a receipt; synthetic ε is debited like a query's."""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import update
from tests.exchange.join_world import CONSUMER as JOINING
from tests.exchange.join_world import PAYMENTS, JoinWorld
from tests.exchange.logged_world import DATASET, PROVIDER, publish
from tests.exchange.release_world import CONSUMER, MARKETER, OUTSIDER, POLICY, grant, seed
from tests.vault.visits import write_visits_csv

from entrepot.errors import (
    BudgetExhausted,
    Conflict,
    ContractViolation,
    NotFound,
    PolicyViolation,
)
from entrepot.exchange import Exchange
from entrepot.exchange._release_tables import releases
from entrepot.exchange.accounts import LOCAL
from entrepot.exchange.node import Node
from entrepot.exchange.release import ReleaseSpec
from entrepot.schemas.releases import ReleaseOut
from entrepot.settings import Settings
from entrepot.transparency import verify_receipt
from marketplace import race_threads


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    # Argon2id at 1 MiB: the same code path, without seconds spent per token.
    opened = Node.init(Settings(home=tmp_path / "node", token_hash_memory_kib=1024))
    yield opened
    opened.close()


@pytest.fixture
def ex(node: Node, tmp_path: Path) -> Exchange:
    return seed(node, tmp_path)


def _left(ex: Exchange, consumer: str) -> float:
    [budget] = ex.ledger.budgets(consumer_id=ex.actor(consumer).org_id)
    return budget.epsilon_left


def _state(ex: Exchange) -> tuple[int, list[Path], float]:
    files = sorted((ex.node.home / "releases").glob("*.parquet"))
    return len(ex.releases.all(ex.actor(PROVIDER))), files, _left(ex, CONSUMER)


@pytest.mark.parametrize(
    ("consumer", "spec", "rule"),
    [
        (MARKETER, ReleaseSpec(k=5), "purpose_rows"),
        (CONSUMER, ReleaseSpec(k=3), "k_floor"),
        (CONSUMER, ReleaseSpec(k=5, l=1), "l_floor"),
        (CONSUMER, ReleaseSpec(k=5, max_suppression=0.5), "suppression_limit"),
        (CONSUMER, ReleaseSpec(k=5, sensitive="district"), "sensitive_column"),
        (CONSUMER, ReleaseSpec(kind="synthetic", epsilon=6.0), "epsilon_per_release"),
        # Above the node's release_max_rows (a million): a figure of the spec, not the data.
        (CONSUMER, ReleaseSpec(kind="synthetic", epsilon=1.0, rows=1_000_001), "release_max_rows"),
    ],
)
def test_a_refusal_names_its_rule_and_makes_and_charges_nothing(
    ex: Exchange, consumer: str, spec: ReleaseSpec, rule: str
) -> None:
    before = _state(ex)
    with pytest.raises(PolicyViolation) as refused:
        ex.releases.create(ex.actor(PROVIDER), DATASET, consumer, spec)
    assert refused.value.details["rule"] == rule
    assert _state(ex) == before
    [(_, entry)] = ex.node.log.search(kind="release", limit=1)
    assert entry["outcome"] == "refused"
    assert entry["rule"] == rule


def test_a_kind_the_policy_does_not_allow_is_refused(node: Node, tmp_path: Path) -> None:
    ex = seed(node, tmp_path, policy=POLICY.replace("[anonymized, synthetic]", "[anonymized]"))
    with pytest.raises(PolicyViolation) as refused:
        ex.releases.create(
            ex.actor(PROVIDER), DATASET, CONSUMER, ReleaseSpec(kind="synthetic", epsilon=1.0)
        )
    assert refused.value.details["rule"] == "release_kind"
    assert not (ex.node.home / "releases").exists()


def test_a_consumer_without_a_grant_is_refused_by_its_contract(ex: Exchange) -> None:
    ex.accounts.create(LOCAL, "stranger", "consumer")
    with pytest.raises(ContractViolation) as refused:
        ex.releases.create(ex.actor(PROVIDER), DATASET, "stranger", ReleaseSpec(k=5))
    assert refused.value.details["clause"] == "grant"


def test_another_provider_cannot_make_a_release_of_the_dataset(ex: Exchange) -> None:
    from entrepot.vault import add_provider

    add_provider(ex.node.db, "highland-clinics", "Highland Clinics")
    with pytest.raises(NotFound):
        ex.releases.create(ex.actor("highland-clinics"), DATASET, CONSUMER, ReleaseSpec(k=5))


def test_a_release_is_logged_with_a_receipt_and_repeats_are_the_same_release(
    ex: Exchange,
) -> None:
    made = ex.releases.create(ex.actor(PROVIDER), DATASET, CONSUMER, ReleaseSpec(k=5, l=2))
    again = ex.releases.create(ex.actor(PROVIDER), DATASET, CONSUMER, ReleaseSpec(k=5, l=2))
    assert again.ident == made.ident == "R-1"
    kept = pq.read_table(ex.node.home / "releases" / f"{made.record.name}.parquet")
    assert kept.num_rows == made.record.rows
    assert {"visit_id", "patient_id", "duration_hours"}.isdisjoint(kept.column_names)
    report = made.to_dict()["report"]
    assert report["rows_released"] + report["rows_suppressed"] == report["rows_in"]
    assert report["classes"]["smallest_units"] >= 5
    # The repeat is logged as one, after the entry of the release it returns.
    [(index, entry)] = ex.node.log.search(kind="release", limit=1)
    assert entry["outcome"] == "repeated"
    assert index > (made.record.log_index or 0)
    assert ex.reconcile().differences == []


def test_the_consumer_sees_its_release_without_the_providers_figures(ex: Exchange) -> None:
    ex.releases.create(ex.actor(PROVIDER), DATASET, CONSUMER, ReleaseSpec(k=5, l=2))
    [seen] = ex.releases.all(ex.actor(CONSUMER))
    report = seen.to_dict()["report"]
    assert "rows_in" not in report
    assert "drivers" not in report
    assert ex.releases.all(ex.actor(MARKETER)) == []


def test_releases_are_listed_as_made_with_bodies_as_the_api_dumps(ex: Exchange) -> None:
    made = ex.releases.create(ex.actor(PROVIDER), DATASET, CONSUMER, ReleaseSpec(k=5, l=2))
    synthetic = ReleaseSpec(kind="synthetic", epsilon=1.0, rows=100)
    ex.releases.create(ex.actor(PROVIDER), DATASET, CONSUMER, synthetic)
    revoked = ex.releases.revoke(ex.actor(PROVIDER), made.ident, "consent withdrawn")
    listed = ex.releases.all(ex.actor(PROVIDER))
    assert [(i.ident, i.record.state) for i in listed] == [("R-1", "revoked"), ("R-2", "active")]
    assert listed[0] == revoked
    assert [i.ident for i in ex.releases.all(ex.actor(CONSUMER), state="active")] == ["R-2"]
    seen = [*listed, *ex.releases.all(ex.actor(CONSUMER)), made]
    for info in seen:
        dumped = ReleaseOut.model_validate(info.to_dict()).model_dump(mode="json")
        assert json.dumps(info.to_body()) == json.dumps(dumped)


def test_a_synthetic_release_spends_its_epsilon_from_the_grant(ex: Exchange) -> None:
    before = _left(ex, CONSUMER)
    made = ex.releases.create(
        ex.actor(PROVIDER), DATASET, CONSUMER, ReleaseSpec(kind="synthetic", epsilon=2.0, rows=300)
    )
    assert made.record.rows == 300
    assert made.record.epsilon == 2.0
    assert _left(ex, CONSUMER) == pytest.approx(before - 2.0)
    assert "fidelity" in made.to_dict()["report"]
    assert "fidelity" not in ex.releases.show(ex.actor(CONSUMER), made.ident).to_dict()["report"]
    assert ex.reconcile().differences == []


def test_revoking_is_logged_and_only_the_provider_revokes(ex: Exchange) -> None:
    made = ex.releases.create(ex.actor(PROVIDER), DATASET, CONSUMER, ReleaseSpec(k=5, l=2))
    with pytest.raises(NotFound):
        ex.releases.revoke(ex.actor(CONSUMER), made.ident)
    revoked = ex.releases.revoke(ex.actor(PROVIDER), made.ident, "consent withdrawn")
    assert revoked.record.state == "revoked"
    [(_, entry)] = ex.node.log.search(kind="release", limit=1)
    assert entry["outcome"] == "revoked"
    assert ex.releases.shared(ex.actor(CONSUMER)) == []
    # Made again after a revocation, it is a new release, not the revoked one.
    remade = ex.releases.create(ex.actor(PROVIDER), DATASET, CONSUMER, ReleaseSpec(k=5, l=2))
    assert remade.ident == "R-2"


def test_racing_revocations_of_one_release_log_one_and_refuse_the_others(ex: Exchange) -> None:
    made = ex.releases.create(ex.actor(PROVIDER), DATASET, CONSUMER, ReleaseSpec(k=5, l=2))
    provider = ex.actor(PROVIDER)
    outcomes = race_threads(
        lambda: ex.releases.revoke(provider, made.ident, "consent withdrawn"), Conflict, 8
    )
    assert outcomes == ["done"] + ["refused"] * 7
    logged = [e for _, e in ex.node.log.search(kind="release") if e["outcome"] == "revoked"]
    assert [e["release"] for e in logged] == [made.ident]
    with pytest.raises(Conflict):
        ex.releases.revoke(provider, made.ident)
    assert ex.reconcile().differences == []


def test_revoking_one_release_leaves_the_repeats_of_the_others_alone(ex: Exchange) -> None:
    provider = ex.actor(PROVIDER)
    one = ex.releases.create(provider, DATASET, CONSUMER, ReleaseSpec(k=5, l=2))
    synthetic = ReleaseSpec(kind="synthetic", epsilon=2.0, rows=100)
    other = ex.releases.create(provider, DATASET, CONSUMER, synthetic)
    left = _left(ex, CONSUMER)
    ex.releases.revoke(provider, one.ident)
    again = ex.releases.create(provider, DATASET, CONSUMER, synthetic)
    assert again.record == other.record
    assert _left(ex, CONSUMER) == left
    [(_, entry)] = ex.node.log.search(kind="release", limit=1)
    assert entry["outcome"] == "repeated"
    # The revoked one, asked for again, is made anew.
    remade = ex.releases.create(provider, DATASET, CONSUMER, ReleaseSpec(k=5, l=2))
    assert remade.ident == "R-3"


def test_a_revocations_reason_is_kept_with_the_release_and_never_logged(ex: Exchange) -> None:
    made = ex.releases.create(ex.actor(PROVIDER), DATASET, CONSUMER, ReleaseSpec(k=5, l=2))
    reason = "consent withdrawn by Jane Roe (patient P-00042)"
    revoked = ex.releases.revoke(ex.actor(PROVIDER), made.ident, reason)
    [(_, entry)] = ex.node.log.search(kind="release", limit=1)
    assert (entry["outcome"], entry["release"]) == ("revoked", made.ident)
    assert entry["actor"] == f"org:{PROVIDER}"
    assert "reason" not in entry
    logged = json.dumps([e for _, e in ex.node.log.search(limit=1000)], ensure_ascii=False)
    assert "Jane Roe" not in logged
    # Kept with the release, for its provider and the node's operators.
    _, operator = ex.accounts.create(LOCAL, "ops", "operator")
    for reader in (ex.actor(PROVIDER), ex.accounts.authenticate(operator.secret)):
        assert ex.releases.show(reader, made.ident).to_dict()["revoked_reason"] == reason
    assert revoked.to_body()["revoked_reason"] == reason
    [seen] = ex.releases.all(ex.actor(CONSUMER), state="revoked")
    assert seen.to_dict()["revoked_reason"] is None


def test_a_release_is_read_only_under_the_very_grant_it_was_made_under(ex: Exchange) -> None:
    consumer = ex.actor(CONSUMER)
    made = ex.releases.create(ex.actor(PROVIDER), DATASET, CONSUMER, ReleaseSpec(k=5, l=2))
    held = ex.contracts.authorize(consumer, DATASET, "release-download")
    ex.contracts.revoke(ex.actor(PROVIDER), held.ref, "project over")
    # A later grant of the same consumer, for a purpose that allows rows too.
    grant(ex, CONSUMER, "research")
    assert ex.releases.shared(consumer) == []
    assert ex.releases.all(consumer) == []
    with pytest.raises(NotFound):
        ex.releases.show(consumer, made.ident)
    with pytest.raises(NotFound):
        ex.releases.readable(consumer, made.record.id)
    # The provider still sees it, bound to the grant it was made under; the same
    # release asked for again is a new one, made under the grant now in force.
    kept = ex.releases.show(ex.actor(PROVIDER), made.ident)
    assert (kept.record.state, kept.to_dict()["grant"]) == ("active", held.ref)
    remade = ex.releases.create(ex.actor(PROVIDER), DATASET, CONSUMER, ReleaseSpec(k=5, l=2))
    assert remade.ident == "R-2"
    assert [i.ident for i in ex.releases.shared(consumer)] == ["R-2"]
    assert ex.releases.readable(consumer, remade.record.id).record == remade.record


def test_a_release_bound_to_no_grant_is_read_by_no_consumer(ex: Exchange) -> None:
    made = ex.releases.create(ex.actor(PROVIDER), DATASET, CONSUMER, ReleaseSpec(k=5, l=2))
    # As migration 0023 leaves a release made before it that no grant was made before.
    with ex.node.db.write() as session:
        session.execute(update(releases).values(grant_id=None))
    consumer = ex.actor(CONSUMER)
    assert ex.releases.shared(consumer) == []
    assert ex.releases.all(consumer) == []
    with pytest.raises(NotFound):
        ex.releases.readable(consumer, made.record.id)
    assert ex.releases.show(ex.actor(PROVIDER), made.ident).to_dict()["grant"] is None


def test_the_receipt_of_a_release_verifies_offline(ex: Exchange) -> None:
    made = ex.releases.create(ex.actor(PROVIDER), DATASET, CONSUMER, ReleaseSpec(k=5, l=2))
    assert made.receipt is not None
    checked = verify_receipt(made.receipt, ex.node.verify_key)
    assert checked.index == made.record.log_index


def test_pseudonyms_differ_between_releases_and_are_no_identifier_in_clear(ex: Exchange) -> None:
    spec = ReleaseSpec(k=5, l=2, pseudonyms=("patient_id", "visit_id"))
    mine = ex.releases.create(ex.actor(PROVIDER), DATASET, CONSUMER, spec)
    theirs = ex.releases.create(ex.actor(PROVIDER), DATASET, OUTSIDER, spec)
    one, two = (
        pq.read_table(ex.node.home / "releases" / f"{r.record.name}.parquet").to_pandas()
        for r in (mine, theirs)
    )
    assert {"patient_id", "visit_id"} <= set(one.columns)
    assert not one["patient_id"].str.startswith("P-").any()
    assert set(one["patient_id"]).isdisjoint(two["patient_id"])
    assert set(one["visit_id"]).isdisjoint(two["visit_id"])
    report = mine.to_dict()["report"]
    assert report["pseudonyms"]["links_units"]
    assert report["rows_released"] + report["rows_suppressed"] == report["rows_in"]
    assert mine.to_dict()["spec"]["pseudonyms"] == ["patient_id", "visit_id"]


@pytest.mark.parametrize(
    "spec",
    [
        ReleaseSpec(k=5, l=2, pseudonyms=("district",)),
        ReleaseSpec(kind="synthetic", epsilon=1.0, pseudonyms=("patient_id",)),
    ],
)
def test_a_pseudonym_of_a_column_that_is_no_row_or_unit_identifier_is_refused(
    ex: Exchange, spec: ReleaseSpec
) -> None:
    before = _state(ex)
    with pytest.raises(PolicyViolation) as refused:
        ex.releases.create(ex.actor(PROVIDER), DATASET, CONSUMER, spec)
    assert refused.value.details["rule"] == "pseudonym_column"
    assert _state(ex) == before


def test_a_suppressed_row_leaves_no_trace_in_what_the_consumer_sees(
    ex: Exchange, tmp_path: Path
) -> None:
    spec = ReleaseSpec(k=5, l=2)
    before = ex.releases.create(ex.actor(PROVIDER), DATASET, CONSUMER, spec)
    # The same rows and one person more, alone in a district no one else visits from.
    source = write_visits_csv(tmp_path / "one-more.csv", 600)
    with source.open("a", newline="", encoding="utf-8") as out:
        row = ["X0000001", "P-99999", "2025-03-03", "910105", "1", "00-04", "I", "100.00", ""]
        csv.writer(out).writerow(row)
    publish(ex.node, source)
    after = ex.releases.create(ex.actor(PROVIDER), DATASET, CONSUMER, spec)
    assert after.to_dict()["report"]["rows_suppressed"] == 1
    assert after.record.sha256 == before.record.sha256  # the same rows are released
    seen = [ex.releases.show(ex.actor(CONSUMER), r.ident).to_dict() for r in (before, after)]
    assert seen[0]["rows"] == seen[1]["rows"]
    assert seen[0]["report"] == seen[1]["report"]


def test_a_synthetic_release_without_a_row_count_does_not_tell_the_versions_rows(
    ex: Exchange,
) -> None:
    [version] = ex.vault.versions(DATASET)
    rows = []
    for epsilon in (0.01, 0.02):
        made = ex.releases.create(
            ex.actor(PROVIDER), DATASET, CONSUMER, ReleaseSpec(kind="synthetic", epsilon=epsilon)
        )
        seen = ex.releases.show(ex.actor(CONSUMER), made.ident).to_dict()
        assert seen["report"]["rows"] == seen["rows"] >= 1
        rows.append(seen["rows"])
    # The model's noisy total: at these ε its noise spreads over thousands of rows.
    assert rows != [version.rows, version.rows]


def test_a_synthetic_release_with_no_column_of_public_domain_is_refused_before_any_data_is_read(
    tmp_path: Path,
) -> None:
    world = JoinWorld(tmp_path / "node", grant_payments=False)
    try:
        world.publish([("AB-0001", "910101", "I")], [("AB0001", "910101", 12.5)])
        ex = Exchange(world.node)
        owner = ex.actor("acme-pay")
        # The payments standard's channel is a dimension without a code list.
        policy = "release: {kinds: [synthetic], quasi_identifiers: [channel]}\n"
        ex.policies.set(owner, PAYMENTS, policy, where="test")
        asked = ex.contracts.request(
            ex.actor(JOINING),
            PAYMENTS,
            purpose="public-health-surveillance",
            epsilon=5.0,
            until=date.today() + timedelta(days=30),
            actions=("release-download",),
        )
        granted = ex.contracts.grant(owner, asked.ref)
        with pytest.raises(PolicyViolation) as refused:
            ex.releases.create(owner, PAYMENTS, JOINING, ReleaseSpec(kind="synthetic", epsilon=1.0))
        assert refused.value.details["rule"] == "synthesis_columns"
        [budget] = ex.ledger.budgets(
            consumer_id=ex.actor(JOINING).org_id, dataset_ids=[granted.dataset_id]
        )
        assert (budget.epsilon_left, budget.queries_used) == (5.0, 0)
        [(_, entry)] = ex.node.log.search(kind="release", limit=1)
        assert (entry["outcome"], entry["rule"]) == ("refused", "synthesis_columns")
    finally:
        world.close()


@pytest.mark.parametrize("step", ["plan", "create"])
def test_a_model_no_generalization_meets_is_refused_by_rule_and_logged_once(
    ex: Exchange, step: str
) -> None:
    before = _state(ex)
    # More units per class than the dataset holds: the search on its rows finds nothing.
    with pytest.raises(PolicyViolation) as refused:
        getattr(ex.releases, step)(ex.actor(PROVIDER), DATASET, CONSUMER, ReleaseSpec(k=5000))
    assert refused.value.details["rule"] == "suppression_limit"
    assert _state(ex) == before
    [(_, entry)] = ex.node.log.search(kind="release")
    assert (entry["outcome"], entry["rule"]) == ("refused", "suppression_limit")
    assert (entry["actor"], entry["epsilon"]) == (f"org:{CONSUMER}", "0")
    assert ex.reconcile().differences == []


def test_synthetic_releases_at_once_never_spend_more_than_the_grant(ex: Exchange) -> None:
    provider = ex.actor(PROVIDER)
    rows = itertools.count(100)  # a spec of its own each, so none is a repeat of another

    def synthesize() -> None:
        spec = ReleaseSpec(kind="synthetic", epsilon=3.0, rows=next(rows))
        ex.releases.create(provider, DATASET, CONSUMER, spec)

    # The grant holds 10 ε: three releases of 3 fit, a fourth does not.
    assert race_threads(synthesize, BudgetExhausted, 8) == ["done"] * 3 + ["refused"] * 5
    assert _left(ex, CONSUMER) == pytest.approx(1.0)
    assert sum(r.record.epsilon for r in ex.releases.all(provider)) == pytest.approx(9.0)
    refused = [e for _, e in ex.node.log.search(kind="release") if e["outcome"] == "refused"]
    assert len(refused) == 5
    assert ex.reconcile().differences == []
