"""The doors (API and CLI) share the core and the wire shapes, never each other's code."""

from __future__ import annotations

import ast
from pathlib import Path

import entrepot

PACKAGE = Path(entrepot.__file__).parent


def _imports(folder: str) -> dict[str, set[str]]:
    """Every module each file under ``entrepot/<folder>`` imports, nested imports too."""
    found: dict[str, set[str]] = {}
    for path in (PACKAGE / folder).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[path.relative_to(PACKAGE).as_posix()] = names
    return found


def test_the_cli_imports_no_api_router() -> None:
    crossing = {
        path: sorted(m for m in modules if m.startswith("entrepot.api.routers"))
        for path, modules in _imports("cli").items()
    }
    assert {path: m for path, m in crossing.items() if m} == {}


def test_the_wire_shapes_import_no_door() -> None:
    crossing = {
        path: sorted(m for m in modules if m.startswith(("entrepot.api", "entrepot.cli")))
        for path, modules in _imports("schemas").items()
    }
    assert {path: m for path, m in crossing.items() if m} == {}
