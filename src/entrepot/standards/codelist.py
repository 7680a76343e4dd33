"""Code lists: the public values a ``dimension`` column may take.

Each code list ships as a CSV file ``codelists/<name>.csv`` with the columns
``code,label,parent``. ``parent`` links a code to a code of another list (a
district to its city, a city to its province) and is empty at the top of a
hierarchy. Code lists are public on purpose: grouping keys drawn from a public
list reveal nothing about who is in the data.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources

from entrepot.errors import NotFound, StorageCorrupt

__all__ = ["CodeList", "codelist", "codelist_names"]

_PACKAGE = "entrepot.standards"
_FOLDER = "codelists"
_HEADER = ["code", "label", "parent"]


@dataclass(frozen=True)
class CodeList:
    """A named list of codes with their labels and (optional) parent codes."""

    name: str
    codes: tuple[str, ...]
    labels: tuple[str, ...]
    parents: tuple[str | None, ...]

    def __contains__(self, code: object) -> bool:
        return code in self._index

    def __len__(self) -> int:
        return len(self.codes)

    @cached_property
    def _index(self) -> dict[str, int]:
        return {code: i for i, code in enumerate(self.codes)}

    def label(self, code: str) -> str:
        """The label of ``code``; an unknown code is a NotFound naming the list."""
        return self.labels[self._position(code)]

    def parent(self, code: str) -> str | None:
        """The parent code of ``code`` (None at the top of a hierarchy)."""
        return self.parents[self._position(code)]

    def rows(self) -> list[tuple[str, str, str | None]]:
        return list(zip(self.codes, self.labels, self.parents, strict=True))

    def _position(self, code: str) -> int:
        try:
            return self._index[code]
        except KeyError:
            raise NotFound(
                f"code {code!r} is not in code list {self.name}",
                hint=f"see `entrepot standard codes {self.name}` for its {len(self)} codes",
            ) from None


def _folder() -> resources.abc.Traversable:
    return resources.files(_PACKAGE).joinpath(_FOLDER)


@cache
def codelist_names() -> list[str]:
    """Names of the code lists shipped with entrepot, sorted."""
    return sorted(
        entry.name.removesuffix(".csv")
        for entry in _folder().iterdir()
        if entry.name.endswith(".csv")
    )


@cache
def codelist(name: str) -> CodeList:
    """The shipped code list ``name`` (e.g. ``region.district``, ``sex``)."""
    if name not in codelist_names():
        raise NotFound(
            f"no code list named {name!r}",
            hint=f"known code lists: {', '.join(codelist_names())}",
        )
    text = _folder().joinpath(f"{name}.csv").read_text(encoding="utf-8")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header != _HEADER:
        raise StorageCorrupt(
            f"code list {name}: header is {header}, expected {_HEADER}",
            hint="reinstall entrepot; the package data is damaged",
        )
    rows = [row for row in reader if row]
    return CodeList(
        name=name,
        codes=tuple(row[0] for row in rows),
        labels=tuple(row[1] for row in rows),
        parents=tuple(row[2] or None for row in rows),
    )
