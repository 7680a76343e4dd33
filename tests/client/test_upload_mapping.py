"""A mapping that names a codes_file is uploaded with its codes inline: the server
reads no file of the client's machine, and maps the codes as a local publish would."""

from __future__ import annotations

from pathlib import Path

import yaml

from entrepot.api.routers.datasets import _parse_mapping
from entrepot.client.http import _sendable_mapping
from entrepot.standards import load_mapping


def test_a_codes_file_is_sent_inline_and_maps_as_locally(tmp_path: Path) -> None:
    (tmp_path / "codes").mkdir()
    (tmp_path / "codes" / "districts.csv").write_text("local,standard\nQ1,910101\nQ2,910102\n")
    mapping = tmp_path / "riverside.yaml"
    mapping.write_text(
        "columns:\n"
        "  district: {from: qx, codes_file: codes/districts.csv, codes: {Q2: '910103'}}\n"
        "  visit_id: {from: VisitNo}\n"
        "  sex: {from: gender, codes: {01: 1, 010: 2}}\n"
        "  diagnosis_group: {constant: 0101}\n"
    )
    sent = _sendable_mapping(mapping)
    assert "codes_file" not in yaml.safe_load(sent)["columns"]["district"]
    on_server = _parse_mapping(sent.decode("utf-8"))
    here = load_mapping(mapping)
    for target in ("district", "visit_id", "sex", "diagnosis_group"):
        server_column, local_column = on_server.column(target), here.column(target)
        assert server_column is not None
        assert local_column is not None
        assert (server_column.source, dict(server_column.codes), server_column.constant) == (
            local_column.source,
            dict(local_column.codes),
            local_column.constant,
        )
    # Numbers written unquoted reach the server as written, not as YAML 1.1 reads them.
    sex, group = on_server.column("sex"), on_server.column("diagnosis_group")
    assert sex is not None
    assert group is not None
    assert (dict(sex.codes), group.constant) == ({"01": "1", "010": "2"}, "0101")
    district = on_server.column("district")
    assert district is not None
    assert dict(district.codes) == {"Q1": "910101", "Q2": "910103"}


def test_a_mapping_without_a_codes_file_is_sent_as_written(tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_bytes(b"columns:\n  visit_id: {from: VisitNo}  # as written\n")
    assert _sendable_mapping(mapping) == mapping.read_bytes()
