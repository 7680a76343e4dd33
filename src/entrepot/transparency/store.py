"""Append-only, crash-safe files under ``<home>/log/``, shared by many processes.

::

    entries.bin   records ``u32 length | u32 crc32 | data``: the source of truth
    entries.idx   ``u64`` end offset of each committed record; its length is the commit point
    tree.bin      every complete Merkle node (32 bytes), in post-order: a leaf, then
                  the parents it completes, so one append is one contiguous write
    heads.jsonl   signed tree heads, one canonical JSON document per line
    lock          ``flock`` target that serialises writers across processes

A batch is written to ``entries.bin``, then ``tree.bin``, then ``entries.idx``,
each followed by ``fsync``; the batch is acknowledged only after the last one. A
crash can therefore leave whole records past the commit point (they are adopted:
they are intact and were meant to be logged), derived hashes past or short of it
(recomputed from the records), or a torn record or head line at the very end. A
torn tail is never dropped silently: opening the log raises StorageCorrupt, and
``entrepot audit repair`` moves the torn bytes to ``torn/`` before truncating.
"""

from __future__ import annotations

import fcntl
import os
import struct
import threading
import weakref
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from entrepot.errors import InvalidInput, ProofInvalid, StorageCorrupt
from entrepot.transparency.merkle import HASH_SIZE, CompactRange, leaf_hash

__all__ = ["LogStore", "TreeComparison"]

_RECORD = struct.Struct(">II")
_OFFSET = struct.Struct(">Q")
# Largest entry accepted; entries are small event descriptions, never data.
MAX_ENTRY_BYTES = 1 << 20
_READ_CHUNK = 1 << 20

# The log's files hold who asked what: readable by the node's owner alone, whatever
# the umask (the log is published through the API and exports, not the file system).
_PRIVATE = 0o600


def _nodes(size: int) -> int:
    """Complete nodes of a tree of ``size`` leaves: each leaf plus each parent completed."""
    return 2 * size - size.bit_count()


def _position(level: int, index: int) -> int:
    """Post-order position of a perfect node: right after the last leaf it covers."""
    return _nodes(((index + 1) << level) - 1) + level


class LogStore:
    """The files of one log; every method is safe across threads and processes."""

    def __init__(self, path: Path, *, repair: bool = False) -> None:
        self.path = path
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        (path / "torn").mkdir(mode=0o700, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND
        self._lock_fd = os.open(path / "lock", os.O_RDWR | os.O_CREAT, _PRIVATE)
        self._entries = os.open(path / "entries.bin", flags, _PRIVATE)
        self._index = os.open(path / "entries.idx", flags, _PRIVATE)
        self._tree = os.open(path / "tree.bin", flags, _PRIVATE)
        self._heads = os.open(path / "heads.jsonl", flags, _PRIVATE)
        self._fds = [self._lock_fd, self._entries, self._index, self._tree, self._heads]
        _fsync_dir(path)
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._range = CompactRange()
        # A forked worker shares the parent's open file description, and flock locks
        # belong to it: the child needs its own, or parent and child would not exclude.
        reopen = weakref.WeakMethod(self._reopen_lock)

        def in_child() -> None:
            method = reopen()
            if method is not None:
                method()

        os.register_at_fork(after_in_child=in_child)
        try:
            with self.locked():
                self.recovery = self._recover(repair=repair)
        except BaseException:
            self.close()
            raise

    def _reopen_lock(self) -> None:
        if self._fds:
            os.close(self._lock_fd)
            self._lock_fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, _PRIVATE)
            self._fds[0] = self._lock_fd
        self._thread_lock = threading.RLock()
        self._depth = 0

    def close(self) -> None:
        fds, self._fds = self._fds, []
        for fd in fds:
            os.close(fd)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the writer lock: a thread lock in this process, ``flock`` across processes."""
        with self._thread_lock:
            if self._depth == 0:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    # -- reading -----------------------------------------------------------------

    @property
    def size(self) -> int:
        """Committed entries, including those other processes appended since."""
        return os.fstat(self._index).st_size // _OFFSET.size

    def _end_offset(self, count: int) -> int:
        if count == 0:
            return 0
        (offset,) = _OFFSET.unpack(os.pread(self._index, _OFFSET.size, (count - 1) * 8))
        return int(offset)

    def entry(self, index: int) -> bytes:
        """The bytes of committed entry ``index``."""
        size = self.size
        if not 0 <= index < size:
            raise InvalidInput(
                f"the log has no entry {index}; it holds entries 0 to {size - 1}",
                hint="list entries with `entrepot audit log`",
            )
        start, end = self._end_offset(index), self._end_offset(index + 1)
        record = os.pread(self._entries, end - start, start)
        return self._unpack(record, 0, start)[0]

    def entries(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Committed entries ``start`` to ``end - 1``, read sequentially."""
        stop = self.size if end is None else min(end, self.size)
        offset, limit = self._end_offset(start), self._end_offset(stop)
        buffer, position, index = b"", 0, start
        while index < stop:
            if position + _RECORD.size > len(buffer) or position + _RECORD.size + (
                _RECORD.unpack_from(buffer, position)[0]
            ) > len(buffer):
                chunk = os.pread(self._entries, min(_READ_CHUNK, limit - offset), offset)
                if not chunk:
                    raise self._torn("entries.bin", offset)
                buffer = buffer[position:] + chunk
                position = 0
                offset += len(chunk)
                continue
            data, length = self._unpack(buffer, position, offset - len(buffer) + position)
            position += length
            index += 1
            yield data

    def node(self, level: int, index: int) -> bytes:
        """The stored hash of the perfect subtree ``(level, index)``."""
        position = _position(level, index)
        value = os.pread(self._tree, HASH_SIZE, position * HASH_SIZE)
        if len(value) != HASH_SIZE:
            raise StorageCorrupt(
                f"{self.path / 'tree.bin'} lacks node ({level}, {index})",
                hint=f"rebuild the hashes with `entrepot audit repair`; the log is {self.path}",
            )
        return value

    def leaf(self, index: int) -> bytes:
        return self.node(0, index)

    def head_lines(self) -> list[bytes]:
        """Every stored head, oldest first."""
        size = os.fstat(self._heads).st_size
        data = os.pread(self._heads, size, 0)
        return [line for line in data.split(b"\n") if line]

    def last_head_line(self) -> bytes | None:
        return self.head_line_before(self.heads_end())

    def heads_end(self) -> int:
        """The size of ``heads.jsonl`` in bytes: where the next head will start."""
        return os.fstat(self._heads).st_size

    def head_line_before(self, end: int) -> bytes | None:
        """The head line that ends at byte ``end`` of ``heads.jsonl`` (None before the first)."""
        end = min(end, self.heads_end())
        if end == 0:
            return None
        back = min(end, 4096)
        tail = os.pread(self._heads, back, end - back).rstrip(b"\n")
        while b"\n" not in tail and back < end:
            back = min(end, back * 2)
            tail = os.pread(self._heads, back, end - back).rstrip(b"\n")
        return tail.rsplit(b"\n", 1)[-1]

    def compare_tree(self) -> TreeComparison:
        """A comparison of ``tree.bin`` with hashes recomputed elsewhere, fed in order."""
        return TreeComparison(self._tree)

    def rebuild_tree(self) -> int:
        """Recompute all of ``tree.bin`` from the entries; returns the leaves rehashed."""
        with self.locked():
            os.ftruncate(self._tree, 0)
            return self._rebuild_tree(self.size)

    # -- writing -----------------------------------------------------------------

    def append(self, records: Sequence[bytes]) -> int:
        """Durably append ``records``; returns the index of the first one."""
        for data in records:
            if len(data) > MAX_ENTRY_BYTES:
                raise InvalidInput(
                    f"a log entry of {len(data)} bytes exceeds {MAX_ENTRY_BYTES} bytes",
                    hint="log hashes of large values, not the values",
                )
        with self.locked():
            self._sync()
            first = self._range.size
            if not records:
                return first
            offset = self._end_offset(first)
            entries, nodes, offsets = bytearray(), bytearray(), bytearray()
            for data in records:
                entries += _RECORD.pack(len(data), zlib.crc32(data))
                entries += data
                offsets += _OFFSET.pack(offset + len(entries))
                for node in self._range.append(leaf_hash(data)):
                    nodes += node
            _write_all(self._entries, entries)
            _write_all(self._tree, nodes)
            _write_all(self._index, offsets)
            return first

    def snapshot(self) -> tuple[int, bytes]:
        """The committed size and root hash, caught up with other processes."""
        with self.locked():
            self._sync()
            return self._range.size, self._range.root()

    def append_head_line(self, line: bytes) -> None:
        with self.locked():
            self._check_heads(repair=False)
            _write_all(self._heads, line + b"\n")

    # -- recovery ----------------------------------------------------------------

    def _sync(self) -> None:
        """Catch up with other processes' appends; recover if one died mid-batch."""
        count = self.size
        consistent = (
            os.fstat(self._index).st_size == count * _OFFSET.size
            and os.fstat(self._entries).st_size == self._end_offset(count)
            and os.fstat(self._tree).st_size == _nodes(count) * HASH_SIZE
        )
        if not consistent:
            self._recover(repair=False)
        elif count != self._range.size:
            self._load_range(count)

    def _load_range(self, count: int) -> None:
        roots, start = [], 0
        for level in range(count.bit_length() - 1, -1, -1):
            if count >> level & 1:
                roots.append(self.node(level, start >> level))
                start += 1 << level
        self._range = CompactRange(count, roots)

    def _recover(self, *, repair: bool) -> dict[str, Any]:
        report: dict[str, Any] = {"adopted": 0, "torn_bytes": 0, "rehashed": 0}
        index_bytes = os.fstat(self._index).st_size
        count = index_bytes // _OFFSET.size
        if index_bytes != count * _OFFSET.size:
            os.ftruncate(self._index, count * _OFFSET.size)
        committed_end = self._end_offset(count)
        entries_size = os.fstat(self._entries).st_size
        if entries_size < committed_end:
            raise StorageCorrupt(
                f"{self.path / 'entries.bin'} is shorter ({entries_size} bytes) than its "
                f"index says ({committed_end} bytes): acknowledged entries are missing",
                hint="restore the log directory from a backup or an export; "
                "anyone holding a signed head can prove what was lost",
            )
        adopted, torn_at = self._scan_tail(committed_end, entries_size)
        if torn_at is not None:
            if not repair:
                raise self._torn("entries.bin", torn_at)
            report["torn_bytes"] += self._move_aside("entries.bin", self._entries, torn_at)
        report["rehashed"] = self._rebuild_tree(count)
        self._load_range(count)
        if adopted:
            offsets, offset = bytearray(), committed_end
            nodes = bytearray()
            for data in adopted:
                offset += _RECORD.size + len(data)
                offsets += _OFFSET.pack(offset)
                for node in self._range.append(leaf_hash(data)):
                    nodes += node
            _write_all(self._tree, nodes)
            _write_all(self._index, offsets)
            report["adopted"] = len(adopted)
            count += len(adopted)
        if count and self.leaf(count - 1) != leaf_hash(self.entry(count - 1)):
            raise StorageCorrupt(
                f"the last leaf hash in {self.path / 'tree.bin'} does not match entry {count - 1}",
                hint="rebuild the hashes with `entrepot audit repair`",
            )
        report["torn_bytes"] += self._check_heads(repair=repair)
        return report

    def _scan_tail(self, start: int, end: int) -> tuple[list[bytes], int | None]:
        """Whole records past the commit point, and where a torn one starts (if any)."""
        tail = os.pread(self._entries, end - start, start) if end > start else b""
        records: list[bytes] = []
        position = 0
        while position < len(tail):
            if len(tail) - position < _RECORD.size:
                return records, start + position
            length, crc = _RECORD.unpack_from(tail, position)
            data = tail[position + _RECORD.size : position + _RECORD.size + length]
            if len(data) != length or zlib.crc32(data) != crc:
                return records, start + position
            records.append(data)
            position += _RECORD.size + length
        return records, None

    def _rebuild_tree(self, count: int) -> int:
        """Make ``tree.bin`` hold exactly the nodes of ``count`` leaves; returns leaves rehashed."""
        want = _nodes(count) * HASH_SIZE
        have = os.fstat(self._tree).st_size
        if have >= want:
            if have > want:
                os.ftruncate(self._tree, want)
            return 0
        low, high = 0, count
        while low < high:
            mid = (low + high + 1) // 2
            if _nodes(mid) * HASH_SIZE <= have:
                low = mid
            else:
                high = mid - 1
        os.ftruncate(self._tree, _nodes(low) * HASH_SIZE)
        self._load_range(low)
        nodes = bytearray()
        for index in range(low, count):
            for node in self._range.append(leaf_hash(self.entry(index))):
                nodes += node
        _write_all(self._tree, nodes)
        return count - low

    def _check_heads(self, *, repair: bool) -> int:
        size = os.fstat(self._heads).st_size
        if size == 0 or os.pread(self._heads, 1, size - 1) == b"\n":
            return 0
        data = os.pread(self._heads, size, 0)
        cut = data.rfind(b"\n") + 1
        if not repair:
            raise self._torn("heads.jsonl", cut)
        return self._move_aside("heads.jsonl", self._heads, cut)

    def _move_aside(self, name: str, fd: int, offset: int) -> int:
        size = os.fstat(fd).st_size
        torn = os.pread(fd, size - offset, offset)
        target = self.path / "torn" / f"{name}.{offset}"
        with os.fdopen(
            os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _PRIVATE), "wb"
        ) as out:
            out.write(torn)
            out.flush()
            os.fsync(out.fileno())
        os.ftruncate(fd, offset)
        os.fsync(fd)
        return len(torn)

    def _torn(self, name: str, offset: int) -> StorageCorrupt:
        return StorageCorrupt(
            f"{self.path / name} ends with a torn, unacknowledged write at byte {offset}",
            hint=f"a writer died mid-append; run `entrepot audit repair --home "
            f"{self.path.parent}` to move the torn bytes to {self.path / 'torn'}",
            file=str(self.path / name),
            offset=offset,
        )

    @staticmethod
    def _unpack(buffer: bytes, position: int, where: int) -> tuple[bytes, int]:
        length, crc = _RECORD.unpack_from(buffer, position)
        data = buffer[position + _RECORD.size : position + _RECORD.size + length]
        if len(data) != length or zlib.crc32(data) != crc:
            raise StorageCorrupt(
                f"the log record at byte {where} of entries.bin fails its checksum",
                hint="the file was altered on disk; restore it from an export or a backup",
            )
        return data, _RECORD.size + length


class TreeComparison:
    """Compares ``tree.bin`` with its post-order hashes as recomputed from the entries."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._position = 0
        self._base = 0
        self._chunk = b""

    def feed(self, nodes: Iterable[bytes]) -> None:
        """The next recomputed nodes; ProofInvalid at the first stored one that differs."""
        for expected in nodes:
            at = (self._position - self._base) * HASH_SIZE
            if at >= len(self._chunk):
                self._base, at = self._position, 0
                self._chunk = os.pread(self._fd, _READ_CHUNK, self._position * HASH_SIZE)
            if self._chunk[at : at + HASH_SIZE] != expected:
                raise self._differs()
            self._position += 1

    def _differs(self) -> ProofInvalid:
        return ProofInvalid(
            f"tree.bin differs at node {self._position} from the hashes of the entries: "
            "proofs served from it would not verify",
            hint="rebuild it from the entries with `entrepot audit repair`",
            part="tree hashes",
        )


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.fsync(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
