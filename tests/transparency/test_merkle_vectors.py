"""Conformance: every RFC 9162 vector (transparency-dev/merkle testdata) behaves as labelled."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from entrepot.errors import ProofInvalid
from entrepot.transparency import merkle

VECTORS = Path(__file__).parents[1] / "fixtures" / "merkle" / "testdata"


def _cases(kind: str) -> list[Any]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    return [pytest.param(f, id=str(f.relative_to(VECTORS))) for f in files]


def _b(text: str) -> bytes:
    return base64.b64decode(text) if text else b""


def _proof(vector: dict[str, Any]) -> list[bytes]:
    return [_b(p) for p in vector["proof"] or []]


def _outcome(check: Any) -> bool:
    try:
        check()
    except ProofInvalid:
        return False
    return True


def test_the_vector_set_is_complete() -> None:
    counts = {kind: len(_cases(kind)) for kind in ("inclusion", "consistency")}
    assert counts["inclusion"] >= 50
    assert counts["consistency"] >= 50


@pytest.mark.parametrize("path", _cases("inclusion"))
def test_inclusion_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    ok = _outcome(
        lambda: merkle.verify_inclusion(
            _b(v["leafHash"]), v["leafIdx"], v["treeSize"], _proof(v), _b(v["root"])
        )
    )
    assert ok is not v["wantErr"], v["desc"]


@pytest.mark.parametrize("path", _cases("consistency"))
def test_consistency_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    ok = _outcome(
        lambda: merkle.verify_consistency(
            v["size1"], v["size2"], _proof(v), _b(v["root1"]), _b(v["root2"])
        )
    )
    assert ok is not v["wantErr"], v["desc"]


@pytest.mark.parametrize("path", _cases("subtreeinclusion"))
def test_subtree_inclusion_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    ok = _outcome(
        lambda: merkle.verify_subtree_inclusion(
            _b(v["leafHash"]), v["leafIdx"], v["start"], v["end"], _proof(v), _b(v["root"])
        )
    )
    assert ok is not v["wantErr"], v["desc"]


@pytest.mark.parametrize("path", _cases("subtreeconsistency"))
def test_subtree_consistency_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    ok = _outcome(
        lambda: merkle.verify_subtree_consistency(
            v["start"], v["end"], v["size"], _proof(v), _b(v["root1"]), _b(v["root2"])
        )
    )
    assert ok is not v["wantErr"], v["desc"]


def test_reference_tree_root_matches_the_readme() -> None:
    leaves = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657"]
    leaves.append("606162636465666768696a6b6c6d6e6f")
    root = merkle.root_of([merkle.leaf_hash(bytes.fromhex(x)) for x in leaves])
    assert root.hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
