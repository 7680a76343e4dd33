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


def _top_level_imports(folder: str) -> dict[str, set[str]]:
    """The modules each file under ``entrepot/<folder>`` imports when it is loaded."""
    found: dict[str, set[str]] = {}
    for path in (PACKAGE / folder).rglob("*.py"):
        names: set[str] = set()
        pending = list(ast.parse(path.read_text(encoding="utf-8")).body)
        while pending:
            node = pending.pop()
            if isinstance(node, ast.If):
                if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                    pending += node.body
                pending += node.orelse
            elif isinstance(node, ast.Try):
                pending += [*node.body, *node.orelse, *node.finalbody]
                pending += [line for handler in node.handlers for line in handler.body]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[path.relative_to(PACKAGE).as_posix()] = names
    return found


def test_the_cli_reaches_the_node_and_the_api_only_through_the_client() -> None:
    crossing = {
        path: sorted(m for m in modules if m.startswith(("entrepot.api", "entrepot.exchange")))
        for path, modules in _top_level_imports("cli").items()
    }
    assert {path: m for path, m in crossing.items() if m} == {}


def test_the_client_imports_no_door() -> None:
    crossing = {
        path: sorted(m for m in modules if m.startswith(("entrepot.api.", "entrepot.cli.")))
        for path, modules in _imports("client").items()
    }
    assert {path: m for path, m in crossing.items() if m} == {}
