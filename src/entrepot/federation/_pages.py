"""A page of a join's columns between two nodes: an uncompressed Arrow IPC stream.

A partner sends the columns of its side in pages of at most ``BATCH_SIZE`` rows;
its leader reads each page only if no message of the stream has compressed buffers
and only up to that many rows. pyarrow decompresses a buffer into an allocation of
the size the buffer declares and has no option to refuse compression, so a page of
a few kilobytes could ask for gigabytes: the reader looks at each message's metadata
before pyarrow reads its body. Uncompressed, a page's buffers are slices of its own
bytes, which ``peer_response_max_bytes`` bounds.
"""

from __future__ import annotations

import struct

import pyarrow as pa

from entrepot.errors import QueryFailed
from entrepot.privacy.psi import BATCH_SIZE

__all__ = ["page_bytes", "read_page"]

# Arrow's IPC messages are flatbuffers (format/Message.fbs): a Message holds its
# header's type in slot 1 and the header in slot 2; a DictionaryBatch holds its
# RecordBatch in slot 1; a RecordBatch its BodyCompression in slot 3.
_DICTIONARY_BATCH = 2
_RECORD_BATCH = 3


def page_bytes(table: pa.Table) -> bytes:
    """``table`` as a page: an Arrow IPC stream, uncompressed."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def read_page(data: bytes, peer: str) -> pa.Table:
    """The table of a page ``peer`` sent, or :class:`QueryFailed` naming the peer and
    the limit it broke, before any buffer of the page is decompressed."""
    source = pa.py_buffer(data)
    try:
        for message in pa.ipc.MessageReader.open_stream(source):
            if _compressed(message.metadata.to_pybytes()):
                raise _refused(
                    peer,
                    "with compressed buffers",
                    "a page is an uncompressed Arrow IPC stream, so that it holds no more "
                    "than the answer that carried it (ENTREPOT_PEER_RESPONSE_MAX_BYTES)",
                    "page_compressed",
                )
        reader = pa.ipc.open_stream(source)
        batches = []
        rows = 0
        for batch in reader:
            rows += batch.num_rows
            if rows > BATCH_SIZE:
                raise _refused(
                    peer,
                    f"of more than {BATCH_SIZE} rows",
                    f"a side's columns cross {BATCH_SIZE} rows a page",
                    "page_rows",
                )
            batches.append(batch)
        return pa.Table.from_batches(batches, reader.schema)
    except (pa.ArrowException, OSError, struct.error, ValueError):
        raise _refused(
            peer,
            "that is not an Arrow IPC stream",
            "a page is an uncompressed Arrow IPC stream",
            "page_malformed",
        ) from None


def _refused(peer: str, what: str, why: str, rule: str) -> QueryFailed:
    # A failure after data was read, as any, but one that says its cause: what a partner
    # puts in a page depends on its node's code, never on either side's data.
    return QueryFailed(
        f"peer {peer} sent a page of a join's columns {what}; the join is refused and "
        "its ε is spent",
        hint=f"{why}; the peer's node does not run entrepot's code: tell its operator",
        peer=peer,
        rule=rule,
    )


def _compressed(metadata: bytes) -> bool:
    """Whether an IPC message's body is compressed, from its metadata alone."""
    message = _read("<I", metadata, 0)
    kind_at = _slot(metadata, message, 1)
    kind = _read("<B", metadata, kind_at) if kind_at else 0
    batch = _table(metadata, message, 2)
    if kind == _DICTIONARY_BATCH:
        batch = _table(metadata, batch, 1) if batch else 0
    elif kind != _RECORD_BATCH:
        return False
    return batch != 0 and _slot(metadata, batch, 3) != 0


def _read(fmt: str, data: bytes, at: int) -> int:
    """The scalar ``fmt`` at ``at``; :class:`struct.error` past the end."""
    if at < 0:
        raise ValueError("a flatbuffer offset before the metadata's start")
    value: int = struct.unpack_from(fmt, data, at)[0]
    return value


def _slot(data: bytes, table: int, slot: int) -> int:
    """Where the field ``slot`` of the flatbuffer table at ``table`` is; 0 if absent."""
    vtable = table - _read("<i", data, table)
    entry = 4 + 2 * slot
    offset = _read("<H", data, vtable + entry) if entry < _read("<H", data, vtable) else 0
    return table + offset if offset else 0


def _table(data: bytes, table: int, slot: int) -> int:
    """Where the table the field ``slot`` of ``table`` refers to is; 0 if absent."""
    at = _slot(data, table, slot)
    return at + _read("<I", data, at) if at else 0
