from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from entrepot.demo._table import RawTable

# Sequences of ("spoil" | "duplicate", how many rows).
_OPERATIONS = st.lists(
    st.tuples(st.sampled_from(["spoil", "duplicate"]), st.integers(0, 30)), max_size=8
)


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 80), operations=_OPERATIONS, seed=st.integers(0, 2**32 - 1))
def test_every_defect_lands_in_its_own_row(
    rows: int, operations: list[tuple[str, int]], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    ids = np.asarray([f"id{i}" for i in range(rows)], dtype=object)
    table = RawTable({"id": ids, "value": np.full(rows, "ok", dtype=object)}, np.arange(rows))
    for number, (kind, count) in enumerate(operations):
        if kind == "spoil":
            table.spoil(rng, count, "value", f"bad{number}", lambda r: ["bad"] * len(r))
        else:
            table.duplicate(rng, count, f"dup{number}")
    values = table.columns["value"]
    repeated = np.zeros(len(table), dtype=bool)
    repeated[1:] = table.columns["id"][1:] == table.columns["id"][:-1]
    # A row is defective iff it was spoilt or repeats the row before it, never both.
    assert not np.any(repeated & (values == "bad"))
    assert int(table.dirty.sum()) == sum(table.defects.values())
    assert np.array_equal(table.dirty, repeated | (values == "bad"))
    assert len(table) == rows + sum(v for k, v in table.defects.items() if k.startswith("dup"))
