"""A page of a join's columns: read only uncompressed, up to a page's rows, zero-copy."""

from __future__ import annotations

import pyarrow as pa
import pytest

from entrepot.errors import QueryFailed
from entrepot.federation._pages import page_bytes, read_page
from entrepot.privacy.psi import BATCH_SIZE

COLUMNS = pa.table(
    {
        "handle": pa.array(range(BATCH_SIZE), pa.uint64()),
        "district": pa.array(["910101", "910102"] * (BATCH_SIZE // 2)).dictionary_encode(),
        "amount": pa.array([1.5] * BATCH_SIZE),
    }
)


def written(table: pa.Table, compression: str) -> bytes:
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def refused(data: bytes, rule: str) -> None:
    with pytest.raises(QueryFailed, match="peer b sent a page of a join's columns") as caught:
        read_page(data, "b")
    assert caught.value.details == {"peer": "b", "rule": rule}


def test_a_page_is_read_back_as_written_its_buffers_slices_of_its_bytes() -> None:
    data = page_bytes(COLUMNS)
    source = pa.py_buffer(data)
    table = read_page(data, "b")
    assert table.equals(COLUMNS)
    arrays = [chunk for column in table.columns for chunk in column.chunks]
    arrays += [a.dictionary for a in arrays if pa.types.is_dictionary(a.type)]
    for buffer in (b for a in arrays for b in a.buffers() if b is not None and b.size):
        assert source.address <= buffer.address < source.address + source.size


@pytest.mark.parametrize("compression", ["zstd", "lz4"])
def test_a_page_with_compressed_buffers_is_refused_dictionaries_included(compression: str) -> None:
    refused(written(COLUMNS, compression), "page_compressed")
    # Only the dictionary's buffers compressed: its batch is refused as well.
    strings = pa.table({"district": COLUMNS.column("district")})
    messages = list(pa.ipc.MessageReader.open_stream(written(strings, compression)))
    plain = list(pa.ipc.MessageReader.open_stream(page_bytes(strings)))
    mixed = b"".join(m.serialize().to_pybytes() for m in (plain[0], messages[1], plain[2]))
    refused(mixed, "page_compressed")


def test_a_page_of_more_rows_than_a_page_holds_is_refused_however_few_its_bytes() -> None:
    refused(page_bytes(pa.concat_tables([COLUMNS, COLUMNS.slice(0, 1)])), "page_rows")
    # A column of nulls declares its rows in a few bytes.
    nulls = page_bytes(pa.table({"n": pa.nulls(10**8)}))
    assert len(nulls) < 1000
    refused(nulls, "page_rows")


@pytest.mark.parametrize(
    "data",
    [b"", b"\xff" * 64, page_bytes(COLUMNS)[:100], b"\xff\xff\xff\xff\x08\0\0\0" + b"\0" * 8],
    ids=["empty", "noise", "cut", "empty-metadata"],
)
def test_a_page_that_is_no_arrow_stream_is_refused(data: bytes) -> None:
    refused(data, "page_malformed")
