"""One clock and one convention: every timestamp column holds naive UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import DateTime

from entrepot.clock import as_utc, utcnow
from entrepot.db import Base, import_models


def test_every_timestamp_column_is_naive() -> None:
    import_models()
    aware = [
        f"{table.name}.{column.name}"
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, DateTime) and column.type.timezone
    ]
    assert aware == []


def test_utcnow_is_naive_utc() -> None:
    before = datetime.now(UTC).replace(tzinfo=None)
    now = utcnow()
    assert now.tzinfo is None
    assert before <= now <= before + timedelta(seconds=5)


@given(st.datetimes(), st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_as_utc_keeps_the_instant(moment: datetime, offset_minutes: int) -> None:
    naive = as_utc(moment)
    assert naive.tzinfo is UTC
    assert naive.replace(tzinfo=None) == moment
    zone = timezone(timedelta(minutes=offset_minutes))
    aware = moment.replace(tzinfo=zone)
    assert as_utc(aware) == aware
    assert as_utc(aware).tzinfo is UTC
