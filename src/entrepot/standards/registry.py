"""The registry of shipped standards, looked up by name or by the path of a schema file."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path

from entrepot.errors import NotFound
from entrepot.standards.schema import Standard, load_standard_file, parse_standard

__all__ = ["get", "names"]

_PACKAGE = "entrepot.standards"
_FOLDER = "schemas"


@cache
def names() -> list[str]:
    """Names of the standards shipped with entrepot, sorted (e.g. ``health.visit``)."""
    folder = resources.files(_PACKAGE).joinpath(_FOLDER)
    return sorted(
        e.name.removesuffix(".json") for e in folder.iterdir() if e.name.endswith(".json")
    )


@cache
def _shipped(name: str) -> Standard:
    entry = resources.files(_PACKAGE).joinpath(_FOLDER, f"{name}.json")
    return parse_standard(json.loads(entry.read_text(encoding="utf-8")), f"{name}.json")


def get(name_or_path: str | Path) -> Standard:
    """A shipped standard by name, or any Table Schema JSON file by path.

    A string that names a shipped standard wins over a file of the same name; anything
    else that looks like a path (a ``Path``, a ``.json`` suffix, a separator or an
    existing file) is read as a Table Schema. Otherwise NotFound lists the known names.
    """
    if isinstance(name_or_path, str) and name_or_path in names():
        return _shipped(name_or_path)
    path = Path(name_or_path)
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith(".json") or "/" in text or path.is_file():
        return load_standard_file(path)
    raise NotFound(
        f"no standard named {text!r}",
        hint=f"known standards: {', '.join(names())}; or pass the path of a Table Schema JSON file",
    )
