"""Every setting is read by the code: an option nothing honours is a promise broken."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import entrepot
from entrepot.settings import Settings

PACKAGE = Path(entrepot.__file__).parent
SETTINGS_MODULE = PACKAGE / "settings.py"


def _names_in(expression: ast.expr) -> set[str]:
    return {
        node.id if isinstance(node, ast.Name) else node.attr
        for node in ast.walk(expression)
        if isinstance(node, ast.Name | ast.Attribute)
    }


def _read_from_settings(tree: ast.AST) -> set[str]:
    """Attributes read from an expression that names a settings object."""
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.ctx, ast.Load)
        and any("settings" in name.lower() for name in _names_in(node.value))
    }


def _properties() -> dict[str, set[str]]:
    """Each property of ``Settings`` with the fields it reads (``db_url`` reads ``db``)."""
    tree = ast.parse(SETTINGS_MODULE.read_text(encoding="utf-8"))
    return {
        function.name: {
            node.attr
            for node in ast.walk(function)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
        }
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef)
    }


def _fields_read() -> set[str]:
    read: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        if path != SETTINGS_MODULE:
            read |= _read_from_settings(ast.parse(path.read_text(encoding="utf-8")))
    for name, fields in _properties().items():
        if name in read:
            read |= fields
    return read


def test_every_setting_is_read_somewhere_in_the_package() -> None:
    unread = sorted(set(Settings.model_fields) - _fields_read())
    assert unread == [], f"settings that no code reads: {unread}"


def test_a_setting_read_only_by_its_name_elsewhere_counts_as_unread() -> None:
    # A policy's `max_epsilon_per_query` is not the node's setting of the same name.
    tree = ast.parse("policy.max_epsilon_per_query\nnode.settings.page_max\n")
    assert _read_from_settings(tree) == {"page_max"}


def test_settings_are_read_without_looking_up_pydantic_plugins() -> None:
    # The lookup reads every installed distribution's entry points; a fresh interpreter
    # shows whether building and reading the settings made it, and that the switch is off.
    probe = (
        "import os\n"
        "from pydantic.plugin import _loader\n"
        "from entrepot.settings import Settings\n"
        "Settings(port=8001)\n"
        "print(_loader._plugins is None, 'PYDANTIC_DISABLE_PLUGINS' in os.environ)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False"]
