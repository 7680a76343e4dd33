"""What the generator wrote: files, their providers and mappings, and the defects injected.

The manifest is the answer key of the demo. Every defect is injected into a row that
has no other defect, so the validation report of a file must count exactly the
manifest's defects, rule by rule and column by column.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from entrepot.errors import InvalidInput, NotFound

__all__ = ["MANIFEST_NAME", "DemoFile", "Manifest"]

MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class DemoFile:
    """One raw provider file and how to publish it."""

    provider: str
    provider_name: str
    path: str
    mapping: str
    standard: str
    dataset: str
    title: str
    description: str
    encoding: str
    rows: int
    people: int
    # "<rule>:<column>" → how many rows carry that defect (one defect per row).
    defects: dict[str, int] = field(default_factory=dict)
    # The catalog's scope the provider declares: region codes and a sector code.
    regions: tuple[str, ...] = ()
    sector: str | None = None

    @property
    def rows_defective(self) -> int:
        return sum(self.defects.values())


@dataclass(frozen=True)
class Manifest:
    seed: int
    scale: float
    people: int
    files: tuple[DemoFile, ...]
    # "<file a>|<file b>" → people appearing (without defects) in both files.
    overlaps: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, directory: Path) -> Path:
        path = directory / MANIFEST_NAME
        path.write_text(
            json.dumps(self.to_dict(), indent=2, ensure_ascii=False, sort_keys=True) + "\n",
            encoding="utf-8",
        )
        return path

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST_NAME
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            files = tuple(DemoFile(**entry) for entry in raw.pop("files"))
            return cls(files=files, **raw)
        except FileNotFoundError:
            raise NotFound(
                f"no demo manifest at {path}",
                hint="generate the demo files first with entrepot.demo.generate(directory)",
            ) from None
        except (KeyError, TypeError, json.JSONDecodeError) as error:
            raise InvalidInput(
                f"{path}: not a demo manifest ({error})",
                hint="regenerate the demo files into an empty directory",
            ) from None
