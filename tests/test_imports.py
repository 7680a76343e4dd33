"""No two modules of entrepot import each other, directly or around a circle.

The graph is read from the source with :mod:`ast`: an edge for every ``import`` of an
entrepot module, at module level or inside a function (a deferred import hides a
circle, it does not remove it), except those under ``if TYPE_CHECKING:``, which never
run. ``from package import name`` is an edge to the submodule when ``name`` is one,
else to the package. Importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``;
those implicit edges are left out, as every module of a package would otherwise sit on
a circle through its own ``__init__``.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path
from types import ModuleType

import pytest

import entrepot

SOURCE = Path(entrepot.__file__).parent


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        parts = ["entrepot", *path.relative_to(SOURCE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, list[str]]]:
    """Each import that runs: the module it names and the names it takes from it."""
    found: list[tuple[str, list[str]]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")
                # A module's own package is its first level; a package is its own.
                package = package[: len(package) - node.level + (1 if is_package else 0)]
                base = ".".join([*package, *([base] if base else [])])
            found.append((base, [alias.name for alias in node.names]))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    """Each entrepot module and the entrepot modules it imports."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for target, names in _imports(tree, name, path.name == "__init__.py"):
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
            if submodules:
                graph[name].update(submodules)
            if not names or len(submodules) < len(names):
                graph[name].add(target)
        graph[name] &= modules.keys()
        graph[name].discard(name)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle through each strongly connected group of modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_circle(graph, group) for group in groups]


def _circle(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """The shortest way from the group's first module back to itself, inside the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for nxt in sorted(graph[node] & group):
                if nxt == start:
                    return [*paths[node], start]
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"{sorted(group)} is not a circle")


def test_no_module_imports_itself_around_a_circle() -> None:
    cycles = find_cycles(import_graph())
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": set()}, []),
        ({"a": {"b"}, "b": {"a"}}, [["a", "b", "a"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c", "a"]]),
    ],
)
def test_find_cycles_names_each_circle(
    graph: dict[str, set[str]], expected: list[list[str]]
) -> None:
    assert find_cycles(graph) == expected


def test_graph_sees_deferred_imports_and_skips_type_checking_ones() -> None:
    graph = import_graph()
    # LocalVault.publish imports the publish module inside the method.
    assert "entrepot.vault.errors" not in graph
    assert "entrepot.errors" in graph["entrepot.vault.local"]


@pytest.mark.parametrize(
    "package",
    [
        "entrepot.federation",
        "entrepot.privacy",
        "entrepot.standards",
        "entrepot.transparency",
        "entrepot.vault",
    ],
)
def test_a_package_name_loaded_on_first_use_is_never_its_module(package: str) -> None:
    """A name a package hands to ``lazy`` (``standards.codelist``, a function) stays the
    function once every module of the package is loaded, whatever loaded them first."""
    loaded = importlib.import_module(package)
    for info in pkgutil.iter_modules(loaded.__path__):
        importlib.import_module(f"{package}.{info.name}")
    modules = [name for name in loaded.__all__ if isinstance(getattr(loaded, name), ModuleType)]
    assert modules == []
