"""Published versions carry per-unit columns that only the bounding rewrite reads."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from tests.vault.visits import WriteVisits

from entrepot.engine import HIDDEN_COLUMNS, UNIT_ROWS, DuckDBEngine, EngineOptions
from entrepot.errors import InvalidInput
from entrepot.exchange.node import Node
from entrepot.privacy import parse_policy, plan
from entrepot.standards import Standard
from entrepot.standards.schema import parse_standard
from entrepot.vault import LocalVault, Published, PublishRequest, add_provider

PROVIDER = "riverside-hospitals"
REF = "riverside-hospitals/outpatient-visits"
SQL = (
    "SELECT COUNT(*) AS n, SUM(cost) AS total, COUNT(DISTINCT patient_id) AS units "
    "FROM riverside_hospitals.outpatient_visits"
)


@pytest.fixture
def vault(node: Node) -> LocalVault:
    add_provider(node.db, PROVIDER, "Riverside Hospitals")
    return LocalVault.of(node)


def publish(vault: LocalVault, path: Path, standard: Standard) -> Published:
    request = PublishRequest(
        provider=PROVIDER, standard=standard, title="Outpatient visits", filename="visits.csv"
    )
    with path.open("rb") as data:
        return vault.publish(request, data)


def version_file(vault: LocalVault, number: int = 1) -> Path:
    return vault.home / "vaults" / PROVIDER / "outpatient-visits" / f"{number}.parquet"


def test_a_bounded_version_carries_unit_columns_that_no_public_figure_shows(
    vault: LocalVault, write_visits: WriteVisits, visit_standard: Standard
) -> None:
    published = publish(vault, write_visits(300), visit_standard)
    table = pq.read_table(version_file(vault))
    assert table.column_names[-2:] == list(HIDDEN_COLUMNS)
    assert sum(1 / n for n in table.column(UNIT_ROWS).to_pylist()) == pytest.approx(
        len(set(table.column("patient_id").to_pylist()))
    )
    shown = str(published.to_dict()) + str(vault.versions(REF)[0].to_dict())
    assert "__entrepot" not in shown


def test_queries_on_a_published_version_equal_those_on_its_plain_columns(
    vault: LocalVault, write_visits: WriteVisits, visit_standard: Standard, tmp_path: Path
) -> None:
    publish(vault, write_visits(400), visit_standard)
    # the same version as one published before the columns existed
    published = vault.vaults_dir / PROVIDER / "outpatient-visits" / "1.parquet"
    pq.write_table(
        pq.read_table(published).drop_columns(list(HIDDEN_COLUMNS)), tmp_path / "old.parquet"
    )
    policy = parse_policy({"epsilon": {"per_query": 1e9}, "threshold": 0}, visit_standard)
    p = plan(SQL, standard=visit_standard, policy=policy, epsilon=1e8)
    options = EngineOptions((vault.vaults_dir, tmp_path), threads=1)
    with DuckDBEngine(options) as engine, engine.session() as session:
        attached = vault.attach(session, REF)
        assert set(HIDDEN_COLUMNS) <= set(session.columns(attached.view))
        session.register_parquet("old", [tmp_path / "old.parquet"])
        new, old = p.run(session, attached.view), p.run(session, "old")
    for a, b in zip(new.rows[0].values, old.rows[0].values, strict=True):
        assert a.value == pytest.approx(b.value, rel=1e-6, abs=1e-3)
    assert new.rows[0].values[0].value == pytest.approx(400, abs=1e-3)


def test_a_standard_may_not_name_a_column_with_the_reserved_prefix(
    vault: LocalVault, write_visits: WriteVisits, visit_standard: Standard
) -> None:
    document = dict(visit_standard.document)
    fields = [dict(f) for f in document["fields"]]
    fields[-1]["name"] = "__entrepot_unit_rows"
    document["fields"] = fields
    clashing = parse_standard(document, "health.visit")
    with pytest.raises(InvalidInput, match="reserved"):
        publish(vault, write_visits(10), clashing)
    assert not version_file(vault).exists()


def test_a_version_with_one_row_per_unit_needs_no_unit_columns(
    vault: LocalVault, write_visits: WriteVisits, visit_standard: Standard
) -> None:
    single = dataclasses.replace(visit_standard, one_row_per_unit=True)
    publish(vault, write_visits(50), single)
    assert pq.read_table(version_file(vault)).column_names == visit_standard.field_names
