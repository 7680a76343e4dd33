"""A raw provider file being built: string columns, injected defects, CSV output."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

# Text columns are object arrays of str; numpy's str_ arrays would truncate edits.
Strings = npt.NDArray[Any]


class RawTable:
    """Rows of a local file as strings, plus the person behind each row.

    Defects go into rows drawn from the clean ones, so no row ever carries two
    defects and the validation report can be checked against :attr:`defects`.
    """

    def __init__(self, columns: dict[str, Strings], person: npt.NDArray[Any]) -> None:
        lengths = {len(v) for v in columns.values()} | {len(person)}
        if len(lengths) != 1:
            raise ValueError(f"columns of unequal lengths: {sorted(lengths)}")
        self.columns = {name: values.astype(object) for name, values in columns.items()}
        self.person = person
        self.dirty = np.zeros(len(person), dtype=bool)
        self.defects: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self.person)

    def _take(self, rng: np.random.Generator, count: int) -> npt.NDArray[np.int64]:
        clean = np.flatnonzero(~self.dirty)
        rows = np.sort(rng.choice(clean, size=min(count, len(clean)), replace=False))
        self.dirty[rows] = True
        return rows

    def spoil(
        self,
        rng: np.random.Generator,
        count: int,
        column: str,
        defect: str,
        make: Callable[[npt.NDArray[np.int64]], list[str]],
    ) -> None:
        """Overwrite ``column`` in ``count`` clean rows with ``make(rows)``; count ``defect``."""
        rows = self._take(rng, count)
        self.columns[column][rows] = make(rows)
        self.defects[defect] += len(rows)

    def duplicate(self, rng: np.random.Generator, count: int, defect: str) -> None:
        """Repeat ``count`` clean rows right after themselves, as a re-export glitch would."""
        rows = self._take(rng, count)
        # The original stays clean: only the repeat breaks the key.
        self.dirty[rows] = False
        order = np.concatenate([np.arange(len(self)), rows])
        # Stable sort puts each repeat right after its original.
        order = order[np.argsort(order, kind="stable")]
        is_copy = np.zeros(len(order), dtype=bool)
        is_copy[1:] = order[1:] == order[:-1]
        self.columns = {name: values[order] for name, values in self.columns.items()}
        self.person = self.person[order]
        self.dirty = self.dirty[order] | is_copy
        self.defects[defect] += len(rows)

    def clean_people(self) -> set[int]:
        """People who appear in at least one row without a defect."""
        return {int(p) for p in np.unique(self.person[~self.dirty])}

    def write_csv(
        self,
        path: Path,
        headers: dict[str, str],
        *,
        encoding: str = "utf-8",
        delimiter: str = ",",
        line_end: str = "\n",
    ) -> int:
        """Write the columns named in ``headers`` (column → header text); return the rows."""
        out = io.StringIO()
        writer = csv.writer(out, delimiter=delimiter, lineterminator=line_end)
        writer.writerow(list(headers.values()))
        writer.writerows(zip(*(self.columns[name] for name in headers), strict=True))
        path.write_bytes(out.getvalue().encode(encoding))
        return len(self)
