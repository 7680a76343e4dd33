"""Gaussian δ against the row count N of a version, checked on the provider's side only.

N is not public, so the check runs when a policy is set and when a version is
published; a consumer's query never runs it, so its outcome cannot depend on N.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.vault.cli_runner import Cli, Result, run_cli
from tests.vault.visits import write_visits_csv

from entrepot.errors import ExitCode, InvalidInput, PolicyViolation
from entrepot.exchange import Exchange
from entrepot.exchange.accounts import LOCAL, Accounts, Actor
from entrepot.exchange.contracts import Contracts
from entrepot.exchange.node import Node
from entrepot.exchange.policies import Policies
from entrepot.privacy import parse_policy
from entrepot.privacy.policy import check_delta, delta_limit
from entrepot.standards import get
from entrepot.vault import LocalVault, OnError, PublishRequest, add_provider

REF = "riverside-hospitals/outpatient-visits"
SQL = (
    "SELECT district, COUNT(*) AS visits "
    "FROM riverside_hospitals.outpatient_visits GROUP BY district"
)
# 1/(10·N) for N = 200,000 rows is 5e-7: under the absolute ceiling of 1e-6.
LARGE = 200_000


def _gaussian(delta: float) -> str:
    # YAML 1.1 reads 1e-06 as text: write the mantissa with a decimal point.
    return f"mechanism: gaussian\ndelta: {delta:.1e}\nlatency_floor_ms: 0\n"


def _large_csv(path: Path, rows: int) -> Path:
    """A valid health.visit CSV of ``rows`` rows, written by DuckDB (Python is too slow)."""
    con = duckdb.connect()
    con.execute(
        f"""COPY (SELECT 'V' || lpad(i::VARCHAR, 7, '0') AS visit_id,
                 'P-' || lpad((i % 10000)::VARCHAR, 5, '0') AS patient_id,
                 (DATE '2025-01-01' + (i % 365)::INT)::VARCHAR AS visit_date,
                 ['910101', '910102', '910103', '910104'][1 + i % 4] AS district,
                 1 + i % 2 AS sex,
                 ['00-04', '05-14', '15-24', '25-34'][1 + i % 4] AS age_band,
                 ['I', 'II', 'III', 'IV'][1 + i % 4] AS diagnosis_group,
                 (10 + i % 800)::DOUBLE AS cost, 1.5 AS duration_hours
               FROM range({rows}) t(i)) TO '{path}' (HEADER, DELIMITER ',')"""
    )
    con.close()
    return path


def _publish(node: Node, source: Path) -> None:
    with source.open("rb") as data:
        LocalVault.of(node).publish(
            PublishRequest(
                provider="riverside-hospitals",
                standard=get("health.visit"),
                title="Outpatient visits 2025",
                on_error=OnError.REJECT,
                filename=source.name,
            ),
            data,
        )


@pytest.fixture
def cli(node: Node, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")

    def run(*args: str) -> Result:
        return run_cli(capsys, monkeypatch, *args, "--home", str(node.home))

    return run


@given(rows=st.integers(min_value=0, max_value=10**12))
def test_the_delta_limit_keeps_delta_times_n_at_most_a_tenth_and_under_the_ceiling(
    rows: int,
) -> None:
    limit = delta_limit(rows)
    assert 0 < limit <= 1e-6
    assert limit * max(rows, 1) <= 0.1 * (1 + 1e-12)
    if rows >= 100_000:
        assert limit == pytest.approx(1 / (10 * rows))


@given(
    rows=st.integers(min_value=1, max_value=10**10),
    delta=st.floats(min_value=1e-15, max_value=1e-6),
    mechanism=st.sampled_from(["laplace", "gaussian"]),
)
def test_only_a_gaussian_delta_above_the_limit_is_refused(
    rows: int, delta: float, mechanism: str
) -> None:
    policy = parse_policy({"mechanism": mechanism, "delta": delta}, get("health.visit"))
    refused = mechanism == "gaussian" and delta > delta_limit(rows)
    if not refused:
        check_delta(policy, rows, dataset=REF)
        return
    with pytest.raises(PolicyViolation) as caught:
        check_delta(policy, rows, dataset=REF)
    assert caught.value.rule == "delta_rows"
    assert caught.value.details["rows"] == rows
    assert "lower delta" in caught.value.hint


def test_policy_set_refuses_a_delta_above_one_over_ten_n_of_the_current_version(
    cli: Cli, tmp_path: Path
) -> None:
    source = _large_csv(tmp_path / "visits.csv", LARGE)
    published = cli(
        "dataset", "publish", str(source), "--provider", "riverside-hospitals",
        "--standard", "health.visit", "--title", "Outpatient visits 2025",
    )  # fmt: skip
    assert published.code == 0, published.stderr
    loose = tmp_path / "loose.yaml"
    loose.write_text(_gaussian(1e-6))
    refused = cli("policy", "set", REF, str(loose))
    assert refused.code == ExitCode.REFUSED
    assert "Traceback" not in refused.stderr
    assert "refused by rule delta_rows" in refused.errors
    assert "200,000 rows" in refused.errors
    assert "lower delta" in refused.errors
    shown = cli("policy", "show", REF, "--json")
    assert shown.json()["explicit"] is False
    tight = tmp_path / "tight.yaml"
    tight.write_text(_gaussian(1e-7))
    accepted = cli("policy", "set", REF, str(tight), "--json")
    assert accepted.code == 0, accepted.stderr
    assert accepted.json()["policy"]["delta"] == 1e-7


@pytest.fixture
def consumer(node: Node, tmp_path: Path) -> Actor:
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
    _publish(node, write_visits_csv(tmp_path / "small.csv", 2_000))
    accounts = Accounts(node.db, node.settings, log=node.log)
    accounts.create(LOCAL, "city-health-bureau", "consumer")
    provider = accounts.actor("riverside-hospitals")
    # 2,000 rows allow δ up to the 1e-6 ceiling (1/(10·N) = 5e-5).
    Policies(node).set(provider, REF, _gaussian(1e-6), where="test")
    contracts = Contracts(node.db, node.settings, log=node.log)
    request = contracts.request(
        accounts.actor("city-health-bureau"),
        REF,
        purpose="public-health-surveillance",
        epsilon=2.0,
        until=date.today() + timedelta(days=30),
    )
    contracts.grant(provider, request.ref, epsilon=2.0)
    return accounts.actor("city-health-bureau")


def test_a_publish_too_large_for_the_policys_delta_is_refused_before_the_version_exists(
    node: Node,
    consumer: Actor,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    large = _large_csv(tmp_path / "large.csv", LARGE)
    args = ("dataset", "publish", str(large), "--provider", "riverside-hospitals")
    args += ("--standard", "health.visit", "--title", "Outpatient visits 2026")
    home = ("--home", str(node.home))
    refused = run_cli(capsys, monkeypatch, *args, "--dataset", "outpatient-visits", *home)
    assert refused.code == ExitCode.REFUSED
    assert "Traceback" not in refused.stderr
    assert "refused by rule delta_rows" in refused.errors
    assert "200,000 rows" in refused.errors
    assert "lower delta" in refused.errors
    assert [v.number for v in LocalVault.of(node).versions(REF)] == [1]
    assert len(node.log.search(kind="dataset_version")) == 0
    assert not list((node.home / "vaults" / "riverside-hospitals" / "outpatient-visits").glob("2*"))
    provider = Accounts(node.db, node.settings, log=node.log).actor("riverside-hospitals")
    Policies(node).set(provider, REF, _gaussian(5e-7), where="test")
    published = run_cli(capsys, monkeypatch, *args, "--dataset", "outpatient-visits", *home)
    assert published.code == 0, published.stderr
    answered = Exchange(node).queries.run(consumer, SQL, epsilon=0.5)
    assert (answered.version, answered.answer.delta) == (2, 5e-7)


def test_a_consumers_query_does_not_depend_on_the_row_count(
    node: Node, consumer: Actor, tmp_path: Path
) -> None:
    queries = Exchange(node).queries
    # Through the vault alone, a version whose N the policy's δ does not fit: a query
    # neither knows nor checks N, so it is answered at the policy's δ (the dataset's δ
    # cap, 1e-6 for 2,000 rows, allows one such query).
    _publish(node, _large_csv(tmp_path / "large.csv", LARGE))
    answered = queries.run(consumer, SQL.replace("district", "sex"), epsilon=0.5)
    assert (answered.version, answered.answer.delta) == (2, 1e-6)
    _, entry = node.log.search(kind="query")[-1]
    assert entry["outcome"] != "refused"


def test_a_delta_that_yaml_reads_as_text_is_refused_with_a_hint_to_add_a_decimal_point() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_policy("mechanism: gaussian\ndelta: 1e-7\n", get("health.visit"))
    assert caught.value.details["key"] == "delta"
    assert "delta: 1.0e-07" in caught.value.hint
