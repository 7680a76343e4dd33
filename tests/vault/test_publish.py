from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from tests.vault.visits import WriteVisits

from entrepot.engine import HIDDEN_COLUMNS, DuckDBEngine, EngineOptions
from entrepot.errors import (
    Conflict,
    LimitExceeded,
    NotFound,
    StorageCorrupt,
    ValidationFailed,
    param,
)
from entrepot.exchange.node import Node
from entrepot.settings import Settings
from entrepot.standards import Standard, get
from entrepot.vault import (
    LocalVault,
    OnError,
    Published,
    PublishRequest,
    Vault,
    add_provider,
)
from entrepot.vault._storage import TEMP_PREFIX

PROVIDER = "riverside-hospitals"
REF = "riverside-hospitals/outpatient-visits"


@pytest.fixture
def vault(node: Node) -> LocalVault:
    add_provider(node.db, PROVIDER, "Riverside Hospitals")
    return LocalVault.of(node)


def request(standard: Standard, **overrides: object) -> PublishRequest:
    fields: dict[str, object] = {
        "provider": PROVIDER,
        "standard": standard,
        "title": "Outpatient visits 2025",
        "filename": "visits.csv",
    }
    fields.update(overrides)
    return PublishRequest(**fields)  # type: ignore[arg-type]


def publish(vault: LocalVault, path: Path, standard: Standard, **overrides: object) -> Published:
    with path.open("rb") as data:
        return vault.publish(request(standard, **overrides), data)


def test_local_vault_implements_the_vault_protocol(vault: LocalVault) -> None:
    assert isinstance(vault, Vault)


def test_publish_writes_a_version_whose_hash_and_rows_match_its_file(
    vault: LocalVault, write_visits: WriteVisits, visit_standard: Standard
) -> None:
    published = publish(vault, write_visits(250), visit_standard)
    version = published.version
    assert (str(version.ref), version.number, version.rows) == (REF, 1, 250)
    path = vault.home / "vaults" / PROVIDER / "outpatient-visits" / "1.parquet"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == version.sha256
    assert path.stat().st_size == version.size_bytes
    table = pq.read_table(path)
    assert table.num_rows == 250
    assert table.column_names == [*visit_standard.field_names, *HIDDEN_COLUMNS]
    assert str(table.schema.field("visit_date").type) == "date32[day]"
    assert version.quality["completeness"]["duration_hours"] == pytest.approx(0.9)
    assert version.quality["validation"]["rows_total"] == 250


def test_publishing_again_adds_a_version_and_never_overwrites(
    vault: LocalVault, write_visits: WriteVisits, visit_standard: Standard
) -> None:
    first = publish(vault, write_visits(100, seed=1), visit_standard)
    first_file = vault.home / "vaults" / PROVIDER / "outpatient-visits" / "1.parquet"
    first_bytes = first_file.read_bytes()
    second = publish(
        vault, write_visits(120, seed=2), visit_standard, title="Outpatient visits 2026"
    )
    assert (first.version.number, second.version.number) == (1, 2)
    assert [v.rows for v in vault.versions(REF)] == [100, 120]
    kept = first_file.read_bytes()
    assert kept == first_bytes
    assert hashlib.sha256(kept).hexdigest() == first.version.sha256


def test_reject_publishes_nothing_and_reports_why(
    vault: LocalVault, write_visits: WriteVisits, visit_standard: Standard
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        publish(vault, write_visits(50, bad=3), visit_standard)
    report = caught.value.details["report"]
    assert (report["rows_total"], report["rows_invalid"]) == (50, 3)
    assert report["violations"] == [{"rule": "minimum", "column": "cost", "count": 3}]
    assert f"{param('on_error')} quarantine" in caught.value.hint
    with pytest.raises(NotFound):
        vault.versions(REF)
    assert list((vault.home / "vaults").rglob("*.parquet")) == []
    assert list((vault.home / "quarantine").rglob("*.parquet")) == []


def test_quarantine_publishes_valid_rows_and_keeps_the_rest_with_reasons(
    vault: LocalVault, write_visits: WriteVisits, visit_standard: Standard
) -> None:
    published = publish(vault, write_visits(50, bad=3), visit_standard, on_error=OnError.QUARANTINE)
    assert (published.rows_total, published.version.rows, published.quarantined) == (50, 47, 3)
    assert published.version.rows + published.quarantined == published.rows_total
    kept = pq.read_table(vault.home / "quarantine" / PROVIDER / "outpatient-visits" / "1.parquet")
    assert kept.num_rows == 3
    # Source lines: the header is line 1, so the last three data rows are lines 49-51.
    assert kept.column("line").to_pylist() == [49, 50, 51]
    assert kept.column("reasons").to_pylist() == [["minimum:cost"]] * 3
    assert kept.column("cost").to_pylist() == ["-5.00"] * 3


def test_quarantine_refuses_a_file_without_any_valid_row(
    vault: LocalVault, write_visits: WriteVisits, visit_standard: Standard
) -> None:
    with pytest.raises(ValidationFailed, match="none of its 4 rows"):
        publish(vault, write_visits(4, bad=4), visit_standard, on_error=OnError.QUARANTINE)
    assert list((vault.home / "quarantine").rglob("*.parquet")) == []


def test_publish_needs_a_known_provider(
    node: Node, write_visits: WriteVisits, visit_standard: Standard
) -> None:
    with pytest.raises(NotFound) as caught:
        publish(LocalVault.of(node), write_visits(5), visit_standard)
    assert "entrepot provider add riverside-hospitals" in caught.value.hint


def test_a_dataset_keeps_its_standard(
    vault: LocalVault, write_visits: WriteVisits, visit_standard: Standard
) -> None:
    publish(vault, write_visits(5), visit_standard)
    with pytest.raises(Conflict, match=r"follows standard health\.visit"):
        publish(vault, write_visits(5), get("org.registry"))


def test_a_stream_is_published_like_a_file(
    vault: LocalVault, write_visits: WriteVisits, visit_standard: Standard
) -> None:
    raw = write_visits(30).read_bytes()
    # A name from an upload is only a label: it never becomes a path.
    hostile = request(visit_standard, filename="../../../../tmp/visits.csv;rm -rf ~")
    published = vault.publish(hostile, io.BytesIO(raw))
    assert published.version.rows == 30
    assert not list((vault.home / "vaults" / ".incoming").iterdir())


def test_a_stream_larger_than_the_upload_limit_is_refused(
    node: Node, write_visits: WriteVisits, visit_standard: Standard
) -> None:
    add_provider(node.db, PROVIDER, "Riverside Hospitals")
    small = LocalVault(
        node.home,
        node.db,
        Settings(home=node.home, max_upload_bytes=1000),
        engine=lambda: node.engine,
    )
    with pytest.raises(LimitExceeded) as caught:
        small.publish(request(visit_standard), io.BytesIO(write_visits(100).read_bytes()))
    assert caught.value.setting == "max_upload_bytes"
    assert not list((node.home / "vaults" / ".incoming").iterdir())


def test_recover_deletes_orphans_but_not_a_live_writers_files(
    vault: LocalVault, write_visits: WriteVisits, visit_standard: Standard
) -> None:
    publish(vault, write_visits(10), visit_standard)
    directory = vault.home / "vaults" / PROVIDER / "outpatient-visits"
    unclaimed = directory / "2.parquet"
    unclaimed.write_bytes(b"left by a crash between rename and commit")
    host = os.uname().nodename
    dead = directory / f"{TEMP_PREFIX}{host}-{2**22 + 17}-abc.parquet"
    dead.write_bytes(b"partial")
    live = directory / f"{TEMP_PREFIX}{host}-{os.getpid()}-def.parquet"
    live.write_bytes(b"still being written")
    foreign = directory / "release.parquet"
    foreign.write_bytes(b"not a version: not the vault's to judge")
    removed = vault.recover()
    assert set(removed) == {unclaimed, dead}
    assert live.exists()
    assert foreign.exists()
    assert (directory / "1.parquet").exists()
    assert publish(vault, write_visits(12), visit_standard).version.number == 2


def test_concurrent_publishes_get_distinct_numbers(
    any_node: Node, write_visits: WriteVisits, visit_standard: Standard
) -> None:
    add_provider(any_node.db, PROVIDER, "Riverside Hospitals")
    vault = LocalVault.of(any_node)
    files = [write_visits(40 + i, name=f"v{i}.csv", seed=i) for i in range(4)]
    results: list[Published] = []
    errors: list[BaseException] = []

    def run(path: Path) -> None:
        try:
            results.append(publish(vault, path, visit_standard))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(path,)) for path in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(r.version.number for r in results) == [1, 2, 3, 4]
    assert vault.check() == []
    assert sorted(v.rows for v in vault.versions(REF)) == [40, 41, 42, 43]


def test_attach_registers_the_version_as_a_view(
    vault: LocalVault, write_visits: WriteVisits, visit_standard: Standard
) -> None:
    publish(vault, write_visits(60, seed=1), visit_standard)
    second = publish(vault, write_visits(80, seed=2), visit_standard)
    options = EngineOptions((vault.vaults_dir,))
    with DuckDBEngine(options) as engine, engine.session() as session:
        newest = vault.attach(session, REF)
        older = vault.attach(session, REF, version=1)
        assert (newest.version, newest.rows, newest.sha256) == (2, 80, second.version.sha256)
        assert newest.view == "riverside_hospitals__outpatient_visits__v2"
        assert newest.standard.privacy_unit == "patient_id"
        assert session.execute(f"SELECT count(*) AS n FROM {newest.view}").to_pylist() == [
            {"n": 80}
        ]
        assert session.execute(f"SELECT count(*) AS n FROM {older.view}").to_pylist() == [{"n": 60}]
        with pytest.raises(NotFound, match="no version 9"):
            vault.attach(session, REF, version=9)


def test_a_tampered_file_is_caught(
    vault: LocalVault, write_visits: WriteVisits, visit_standard: Standard
) -> None:
    publish(vault, write_visits(20), visit_standard)
    path = vault.home / "vaults" / PROVIDER / "outpatient-visits" / "1.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    problems = vault.check()
    assert [p["code"] for p in problems] == ["storage_corrupt"]
    with (
        DuckDBEngine(EngineOptions((vault.vaults_dir,))) as engine,
        engine.session() as session,
    ):
        with pytest.raises(StorageCorrupt, match="SHA-256"):
            vault.attach(session, REF, verify=True)
        path.write_bytes(bytes(data[:-10]))
        with pytest.raises(StorageCorrupt, match="wrong size"):
            vault.attach(session, REF)


def test_progress_reports_each_step_in_order(
    vault: LocalVault, write_visits: WriteVisits, visit_standard: Standard
) -> None:
    seen: list[tuple[str, int, int]] = []
    with write_visits(25).open("rb") as data:
        published = vault.publish(
            request(visit_standard), data, progress=lambda *step: seen.append(step)
        )
    steps = [name for name, _, _ in seen]
    assert list(dict.fromkeys(steps)) == ["validate", "write", "hash", "commit"]
    hashed = [(done, total) for name, done, total in seen if name == "hash"]
    assert hashed[-1] == (published.version.size_bytes, published.version.size_bytes)
