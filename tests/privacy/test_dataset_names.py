"""A query naming its dataset wrongly is told the SQL name to use, the same whatever
the data holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from small_node import CONSUMER, small_node

import entrepot
from entrepot.errors import PolicyViolation
from entrepot.privacy import dataset_of
from entrepot.standards import codelist

CATALOG = ("riverside_hospitals.outpatient_visits", "metro_telecom.cell_usage")
MISNAMED = (
    "SELECT COUNT(*) FROM outpatient_visits",
    "SELECT COUNT(*) FROM riverside-hospitals/outpatient-visits",
    "SELECT district, COUNT(*) FROM riverside-hospitals.outpatient-visits GROUP BY district",
    'SELECT COUNT(*) FROM "riverside-hospitals"."outpatient-visits"',
    'SELECT COUNT(*) FROM "riverside-hospitals/outpatient-visits"',
    "SELECT COUNT(*) FROM riverside_hospitals/outpatient_visits WHERE sex = 1",
)


def _refusal(sql: str, catalog: tuple[str, ...] = CATALOG) -> PolicyViolation:
    with pytest.raises(PolicyViolation) as refused:
        dataset_of(sql, catalog=lambda: catalog)
    return refused.value


def test_a_name_without_provider_is_told_the_one_catalog_name_it_may_mean() -> None:
    refusal = _refusal("SELECT COUNT(*) FROM outpatient_visits")
    assert refusal.details["rule"] == "unknown_table"
    assert "without its provider" in refusal.message
    assert refusal.hint == "write FROM riverside_hospitals.outpatient_visits"


def test_a_name_several_providers_hold_lists_them_all() -> None:
    catalog = (*CATALOG, "eastern_telecom.cell_usage")
    refusal = _refusal("SELECT COUNT(*) FROM cell_usage", catalog)
    assert "FROM eastern_telecom.cell_usage or FROM metro_telecom.cell_usage" in refusal.hint


def test_a_name_the_catalog_lacks_names_no_dataset() -> None:
    refusal = _refusal("SELECT COUNT(*) FROM payments")
    assert refusal.details["rule"] == "unknown_table"
    assert not any(name in refusal.hint for name in CATALOG)
    assert "<provider>.payments" in refusal.hint


def test_without_a_catalog_the_refusal_still_says_how_to_name_a_dataset() -> None:
    with pytest.raises(PolicyViolation) as refused:
        dataset_of("SELECT COUNT(*) FROM outpatient_visits")
    assert refused.value.details["rule"] == "unknown_table"
    assert "<provider>.outpatient_visits" in refused.value.hint


@pytest.mark.parametrize("sql", MISNAMED[1:])
def test_the_catalog_form_gets_the_sql_name_not_a_parser_error(sql: str) -> None:
    refusal = _refusal(sql)
    assert refusal.details["rule"] == "unknown_table"
    assert "in SQL it is riverside_hospitals.outpatient_visits" in refusal.message
    assert refusal.hint.startswith("write FROM riverside_hospitals.outpatient_visits")


def test_other_syntax_errors_stay_syntax_errors() -> None:
    refusal = _refusal("SELECT COUNT(* FROM riverside_hospitals.outpatient_visits")
    assert refusal.details["rule"] == "syntax"


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two nodes whose one dataset differs in size, districts and people."""
    base = tmp_path_factory.mktemp("names")
    districts = codelist("region.district").codes
    return (
        small_node(base / "few", rows=40, districts=districts[:1], seed=1),
        small_node(base / "many", rows=900, districts=districts[2:9], seed=2),
    )


@pytest.mark.parametrize("sql", MISNAMED)
def test_a_misnamed_dataset_is_refused_alike_whatever_the_data_holds(
    two_nodes: tuple[Path, Path], sql: str
) -> None:
    refusals = []
    for home in two_nodes:
        with entrepot.connect(home, consumer=CONSUMER) as ex, pytest.raises(PolicyViolation) as r:
            ex.query(sql, epsilon=0.1)
        refusals.append(r.value)
    few, many = refusals
    assert few.details["rule"] == many.details["rule"] == "unknown_table"
    assert (few.code, few.status) == (many.code, many.status) == ("policy_violation", 403)
    assert (few.message, few.hint) == (many.message, many.hint)
    assert "FROM riverside_hospitals.outpatient_visits" in few.hint


@pytest.mark.parametrize("sql", MISNAMED[:2])
def test_the_cli_prints_the_same_refusal_whatever_the_data_holds(
    two_nodes: tuple[Path, Path], sql: str
) -> None:
    outputs = []
    for home in two_nodes:
        args = ("query", sql, "--as", CONSUMER, "--home", str(home), "--epsilon", "0.1")
        done = subprocess.run(
            [sys.executable, "-m", "entrepot", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        outputs.append((done.returncode, done.stdout, " ".join(done.stderr.split())))
    assert outputs[0] == outputs[1]
    code, _, message = outputs[0]
    assert code != 0
    assert "outpatient_visits" in message
    assert "refused by rule unknown_table" in message
