from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from entrepot.demo._context import format_times

_FORMATS = ("%d/%m/%Y", "%Y-%m-%d", "%Y年%m月%d日 %H:%M:%S", "at %H:%M, %d.%m.%Y (%S s)")


@given(
    moments=st.lists(
        st.tuples(st.integers(0, 60_000), st.integers(0, 86_399)), min_size=1, max_size=30
    ),
    fmt=st.sampled_from(_FORMATS),
)
def test_array_formatting_matches_strftime(moments: list[tuple[int, int]], fmt: str) -> None:
    days = np.asarray([d for d, _ in moments], dtype=np.int64)
    seconds = np.asarray([s for _, s in moments], dtype=np.int64)
    expected = [
        (datetime(1970, 1, 1) + timedelta(days=d, seconds=s)).strftime(fmt) for d, s in moments
    ]
    assert list(format_times(days, seconds, fmt)) == expected
