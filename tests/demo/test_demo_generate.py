from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest

from entrepot import standards
from entrepot.demo import DemoFile, Manifest, generate
from entrepot.errors import InvalidInput, NotFound

SCALE = 0.1


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("demo")
    generate(directory, seed=11, scale=SCALE)
    return directory


@pytest.fixture(scope="module")
def manifest(demo_dir: Path) -> Manifest:
    return Manifest.read(demo_dir)


def _digests(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


def test_same_seed_writes_the_same_bytes(demo_dir: Path, tmp_path: Path) -> None:
    generate(tmp_path / "again", seed=11, scale=SCALE)
    assert _digests(tmp_path / "again") == _digests(demo_dir)


def test_another_seed_writes_other_data(demo_dir: Path, manifest: Manifest, tmp_path: Path) -> None:
    generate(tmp_path / "other", seed=12, scale=SCALE)
    mine, theirs = _digests(demo_dir), _digests(tmp_path / "other")
    for entry in manifest.files:
        assert mine[entry.path] != theirs[entry.path], entry.path
    # Mappings are package data: they do not depend on the seed.
    assert mine[manifest.files[0].mapping] == theirs[manifest.files[0].mapping]


def test_at_least_three_providers_in_two_provinces_over_three_standards(
    manifest: Manifest,
) -> None:
    assert len({f.provider for f in manifest.files}) >= 3
    assert {f.standard for f in manifest.files} >= {
        "health.visit",
        "mobility.presence",
        "payments.transaction",
    }
    visits = [f for f in manifest.files if f.standard == "health.visit"]
    assert {f.encoding for f in visits} == {"gbk", "utf-8-sig"}


@pytest.mark.parametrize("index", range(4))
def test_validation_finds_exactly_the_injected_defects(
    demo_dir: Path, manifest: Manifest, index: int
) -> None:
    entry = manifest.files[index]
    standard = standards.get(entry.standard)
    with standards.validate(demo_dir / entry.path, standard, demo_dir / entry.mapping) as check:
        report = check.report
    found = {f"{v.rule}:{v.column}": v.count for v in report.violations}
    assert found == entry.defects
    assert report.rows_total == entry.rows
    assert report.rows_invalid == entry.rows_defective
    assert len(entry.defects) >= 5


def test_every_defect_kind_of_the_brief_is_present(manifest: Manifest) -> None:
    kinds = {kind for f in manifest.files for kind in f.defects}
    assert "type:visit_date" in kinds  # bad dates
    assert "codelist:district" in kinds  # unknown district codes
    assert "minimum:cost" in kinds  # negative costs
    assert any(k.startswith("primary_key:") for k in kinds)  # duplicates
    assert "maximum:duration_hours" in kinds  # out-of-range values


def test_the_gbk_file_is_not_utf8_and_the_bom_file_has_a_bom(
    demo_dir: Path, manifest: Manifest
) -> None:
    by_encoding = {f.encoding: demo_dir / f.path for f in manifest.files}
    with pytest.raises(UnicodeDecodeError):
        by_encoding["gbk"].read_bytes().decode("utf-8")
    assert by_encoding["gbk"].read_bytes().decode("gbk").startswith("就诊流水号")
    assert by_encoding["utf-8-sig"].read_bytes().startswith(b"\xef\xbb\xbf")


def _valid_ids(demo_dir: Path, entry: DemoFile, column: str, out: Path) -> set[str]:
    with standards.validate(
        demo_dir / entry.path, standards.get(entry.standard), demo_dir / entry.mapping
    ) as check:
        check.write_valid(out)
    rows = duckdb.sql(f"SELECT DISTINCT {column} FROM read_parquet('{out}')").fetchall()
    return {str(r[0]) for r in rows}


def test_the_same_people_appear_across_providers(
    demo_dir: Path, manifest: Manifest, tmp_path: Path
) -> None:
    id_column = {"health.visit": "patient_id", "payments.transaction": "person_id"}
    ids = {
        f.path: _valid_ids(demo_dir, f, id_column[f.standard], tmp_path / f"{f.path}.parquet")
        for f in manifest.files
        if f.standard in id_column
    }
    assert len(ids) == 3
    paths = sorted(ids)
    for i, a in enumerate(paths):
        for b in paths[i + 1 :]:
            shared = len(ids[a] & ids[b])
            assert shared > 0, (a, b)
            assert shared == manifest.overlaps[f"{a}|{b}"]


def test_the_scale_sets_the_size(tmp_path: Path) -> None:
    small = generate(tmp_path / "small", seed=1, scale=0.05)
    larger = generate(tmp_path / "larger", seed=1, scale=0.2)
    for a, b in zip(small.files, larger.files, strict=True):
        assert b.rows > 3 * a.rows
    assert larger.people == 4 * small.people


@pytest.mark.parametrize(("seed", "scale"), [(1, 0), (1, -1), (1, 1000), (-1, 1)])
def test_bad_seed_or_scale_is_refused(tmp_path: Path, seed: int, scale: float) -> None:
    with pytest.raises(InvalidInput) as error:
        generate(tmp_path, seed=seed, scale=scale)
    assert error.value.hint
    assert not any(tmp_path.iterdir())


def test_a_manifest_round_trips_and_a_bad_one_is_named(manifest: Manifest, tmp_path: Path) -> None:
    manifest.write(tmp_path)
    assert Manifest.read(tmp_path) == manifest
    (tmp_path / "manifest.json").write_text('{"seed": 1}')
    with pytest.raises(InvalidInput, match="not a demo manifest"):
        Manifest.read(tmp_path)
    with pytest.raises(NotFound, match="no demo manifest"):
        Manifest.read(tmp_path / "nowhere")
