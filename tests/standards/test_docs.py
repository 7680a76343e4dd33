"""docs/standard.md stays true: its example mapping parses, its lists match the code."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from entrepot.standards import UNITS, codelist_names, names, parse_mapping

ROOT = Path(__file__).parent.parent.parent
DOC = (ROOT / "docs" / "standard.md").read_text(encoding="utf-8")
FIXTURES = ROOT / "tests" / "fixtures" / "standards"


def test_the_example_mapping_is_the_riverside_fixture() -> None:
    block = re.search(r"```yaml\n(.*?)```", DOC, re.S)
    assert block is not None
    documented = parse_mapping(yaml.safe_load(block.group(1)), "docs", base=FIXTURES)
    fixture = parse_mapping(
        yaml.safe_load((FIXTURES / "riverside.yaml").read_text(encoding="utf-8")),
        "docs",
        base=FIXTURES,
    )
    assert documented.columns == fixture.columns
    assert documented.source.encoding == fixture.source.encoding


def test_every_unit_standard_and_code_list_is_documented() -> None:
    for name in [*UNITS, *names(), *codelist_names()]:
        assert f"`{name}`" in DOC, name
