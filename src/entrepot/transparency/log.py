"""The transparency log: entries, signed tree heads and proofs over one :class:`LogStore`.

A head is signed after an append once ``head_every_entries`` entries or
``head_every_s`` seconds have passed since the last head (a batched append gets at
most one), and on demand with :meth:`TransparencyLog.sign_head`.

    log = TransparencyLog(home / "log", signing_key)
    index = log.append(make_entry("query", "acme", dataset="riverside/visits", ...))
    proof = log.prove(index)          # inclusion proof to a signed head covering it
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from entrepot.errors import InvalidInput, ProofInvalid, StorageCorrupt
from entrepot.transparency.canonical import timestamp
from entrepot.transparency.entries import Entry, Kind, entry_datasets
from entrepot.transparency.heads import TreeHead, sign_head, verify_head
from entrepot.transparency.merkle import (
    CompactRange,
    consistency_path,
    inclusion_path,
    leaf_hash,
    range_hash,
    verify_consistency,
    verify_inclusion,
)
from entrepot.transparency.store import LogStore

# Reading entries, heads and proofs needs neither the signing library nor the verifier
# of a whole log (with its worker processes): each loads with what uses it.
if TYPE_CHECKING:
    from nacl.signing import SigningKey, VerifyKey

    from entrepot.transparency.export import Progress, VerifyReport

__all__ = ["ConsistencyProof", "InclusionProof", "TransparencyLog", "repair_log"]


@dataclass(frozen=True)
class InclusionProof:
    index: int
    size: int
    entry: bytes
    path: list[bytes]
    root: bytes
    head: TreeHead | None

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "size": self.size,
            "entry": self.entry.decode("utf-8"),
            "leaf_hash": leaf_hash(self.entry).hex(),
            "inclusion": [node.hex() for node in self.path],
            "root": self.root.hex(),
            "head": None if self.head is None else self.head.to_json(),
        }


@dataclass(frozen=True)
class ConsistencyProof:
    size1: int
    size2: int
    path: list[bytes]
    root1: bytes
    root2: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "size1": self.size1,
            "size2": self.size2,
            "root1": self.root1.hex(),
            "root2": self.root2.hex(),
            "consistency": [node.hex() for node in self.path],
        }


class TransparencyLog:
    """An append-only Merkle log in ``path``, signing heads with ``signing_key``."""

    def __init__(
        self,
        path: Path,
        signing_key: SigningKey | Callable[[], SigningKey],
        *,
        head_every_entries: int = 1000,
        head_every_s: float = 60.0,
        clock: Callable[[], datetime] | None = None,
        on_head: Callable[[TransparencyLog], None] | None = None,
    ) -> None:
        """``signing_key`` is the key, or a function that gives it when the log first signs
        or checks a signature; ``on_head`` is called, under the writer lock, after every
        head is stored."""
        self.path = path
        self.store = LogStore(path)
        self._signing_key = signing_key
        self.head_every_entries = head_every_entries
        self.head_every_s = head_every_s
        self._clock = clock or (lambda: datetime.now(UTC))
        self._latest: tuple[bytes, TreeHead] | None = None
        self._on_head = on_head

    @property
    def signing_key(self) -> SigningKey:
        if callable(self._signing_key):
            self._signing_key = self._signing_key()
        return self._signing_key

    @property
    def verify_key(self) -> VerifyKey:
        return self.signing_key.verify_key

    @property
    def size(self) -> int:
        return self.store.size

    def close(self) -> None:
        self.store.close()

    # -- appending ---------------------------------------------------------------

    def append(self, entry: Entry) -> int:
        """Append one entry durably; returns its index once it is on disk."""
        return self.append_many([entry])

    def append_many(self, entries: Iterable[Entry]) -> int:
        """Append entries in one durable batch; returns the index of the first."""
        return self.append_encoded([entry.to_bytes() for entry in entries])

    def append_encoded(self, records: Sequence[bytes]) -> int:
        """Append entries already encoded by :meth:`Entry.to_bytes` (e.g. kept in an outbox)."""
        with self.store.locked():
            first = self.store.append(records)
            self._maybe_sign()
        return first

    def _maybe_sign(self) -> None:
        size = self.store.size
        latest = self.latest_head()
        if latest is None:
            due = size > 0
        else:
            age = (self._clock() - latest.moment).total_seconds()
            due = size - latest.size >= self.head_every_entries or (
                size > latest.size and age >= self.head_every_s
            )
        if due:
            self.sign_head()

    # -- heads -------------------------------------------------------------------

    def sign_head(self) -> TreeHead:
        """Sign and store a head for the log as it is now."""
        with self.store.locked():
            size, root = self.store.snapshot()
            head = sign_head(size, root, self.signing_key, self._clock())
            line = head.to_bytes()
            self.store.append_head_line(line)
            self._latest = (line, head)
            if self._on_head is not None:
                self._on_head(self)
            return head

    def latest_head(self) -> TreeHead | None:
        line = self.store.last_head_line()
        if line is None:
            return None
        if self._latest is None or self._latest[0] != line:
            self._latest = (line, TreeHead.from_bytes(line, what="stored tree head"))
        return self._latest[1]

    def heads(self) -> list[TreeHead]:
        return [
            TreeHead.from_bytes(line, what=f"stored tree head #{position}")
            for position, line in enumerate(self.store.head_lines())
        ]

    def head_covering(self, index: int) -> TreeHead:
        """The latest head if it covers entry ``index``, else a freshly signed one."""
        size = self.store.size
        if not 0 <= index < size:
            raise InvalidInput(
                f"the log has no entry {index}; it holds {size} entries",
                hint="list entries with `entrepot audit log`",
            )
        latest = self.latest_head()
        if latest is not None and latest.size > index:
            return latest
        return self.sign_head()

    # -- reading and proving -----------------------------------------------------

    def entry_bytes(self, index: int) -> bytes:
        return self.store.entry(index)

    def entries(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, Any]]:
        """(index, entry as JSON) from ``start``; entries are read sequentially."""
        for offset, data in enumerate(self.store.entries(start, end)):
            yield start + offset, json.loads(data)

    def search(
        self,
        *,
        dataset: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[tuple[int, Any]]:
        """The last ``limit`` entries about ``dataset`` (alone or in a join), of ``kind``,
        logged at or after ``since`` (UTC when it has no time zone), oldest first."""
        matches = _matcher(dataset, kind, since)
        found: deque[tuple[int, Any]] = deque(maxlen=limit)
        for index, entry in self.entries():
            if matches(entry):
                found.append((index, entry))
        return list(found)

    def page(
        self,
        *,
        dataset: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[tuple[int, Any]], int]:
        """The ``limit`` entries from the ``offset``-th of those :meth:`search` selects,
        oldest first, and how many it selects in all. Without a filter, the entries are
        read by index: entry ``offset`` is the first of the page."""
        size = self.store.size
        if dataset is None and kind is None and since is None:
            start = min(offset, size)
            return list(self.entries(start, min(start + limit, size))), size
        matches = _matcher(dataset, kind, since)
        found: list[tuple[int, Any]] = []
        total = 0
        for index, entry in self.entries(0, size):
            if matches(entry):
                if offset <= total < offset + limit:
                    found.append((index, entry))
                total += 1
        return found, total

    def root(self, size: int) -> bytes:
        self._check_size(size)
        return range_hash(self.store.node, 0, size)

    def _check_size(self, size: int) -> None:
        current = self.store.size
        if not 0 <= size <= current:
            raise InvalidInput(
                f"tree size {size} is beyond the log, which holds {current} entries",
                hint=f"choose a size from 1 to {current}",
            )

    def prove(self, index: int, size: int | None = None) -> InclusionProof:
        """Inclusion proof of entry ``index``: to the latest signed head, or to tree ``size``
        (with the latest head when it has that size)."""
        head: TreeHead | None
        if size is None:
            head = self.head_covering(index)
            size = head.size
        else:
            self._check_size(size)
            latest = self.latest_head()
            head = latest if latest is not None and latest.size == size else None
        path = inclusion_path(self.store.node, index, size)
        entry = self.store.entry(index)
        root = self.root(size)
        try:
            verify_inclusion(
                leaf_hash(entry), index, size, path, root if head is None else head.root
            )
        except ProofInvalid as error:
            # Proofs come from tree.bin, a cache of hashes: never hand out one it spoiled.
            raise StorageCorrupt(
                f"the stored tree hashes give a proof of entry {index} that does not verify",
                hint="rebuild them from the entries with `entrepot audit repair`",
            ) from error
        return InclusionProof(index, size, entry, path, root, head)

    def consistency(self, size1: int, size2: int) -> ConsistencyProof:
        self._check_size(size2)
        path = consistency_path(self.store.node, size1, size2)
        return ConsistencyProof(size1, size2, path, self.root(size1), self.root(size2))

    def verify_from(self, earlier: TreeHead) -> ConsistencyProof:
        """Prove the log, as now signed, still extends ``earlier`` (a head someone kept).

        Signs a new head first when entries were appended since the latest one.
        """
        verify_head(earlier, self.verify_key, what="earlier tree head")
        size = self.store.size
        if size < earlier.size:
            raise ProofInvalid(
                f"the log holds {size} entries, fewer than the {earlier.size} of the earlier "
                "head: entries were removed",
                hint="this log is not append-only; keep the earlier head as evidence",
                part="consistency proof",
            )
        latest = self.latest_head()
        if latest is None or latest.size < size:
            latest = self.sign_head()
        if earlier.size == 0:
            return ConsistencyProof(0, latest.size, [], earlier.root, latest.root)
        proof = self.consistency(earlier.size, latest.size)
        verify_consistency(earlier.size, latest.size, proof.path, earlier.root, latest.root)
        return proof

    # -- whole-log operations ----------------------------------------------------

    def check(self, progress: Progress | None = None) -> VerifyReport:
        """Rehash every entry and check every stored head, as an offline verifier would,
        and every hash stored in tree.bin against the rehashed entries."""
        from entrepot.transparency.export import verify_entries

        comparison = self.store.compare_tree()
        return verify_entries(
            self.store.entries(), self.heads(), self.verify_key, progress, nodes=comparison.feed
        )

    def export(self, directory: Path) -> dict[str, Any]:
        """Copy entries and heads to ``directory`` for verification without the node."""
        from entrepot.transparency.export import write_export

        with self.store.locked():
            size = self.store.size
            return write_export(
                directory,
                self.store.entries(0, size),
                self.store.head_lines(),
                bytes(self.verify_key),
            )


def repair_log(path: Path) -> dict[str, Any]:
    """Move a torn tail of the log in ``path`` aside and rebuild its hashes; says what it did."""
    store = LogStore(path, repair=True)
    try:
        comparison, tree = store.compare_tree(), CompactRange()
        try:
            for data in store.entries():
                comparison.feed(tree.append(leaf_hash(data)))
        except ProofInvalid:
            store.recovery["rehashed"] = store.rebuild_tree()
    finally:
        store.close()
    return store.recovery


def _since_text(since: datetime) -> str:
    """``since`` as an entry's time is written (UTC when it has no time zone)."""
    moment = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
    try:
        return timestamp(moment)
    except OverflowError:
        raise InvalidInput(
            f"time {since.isoformat()} falls outside the years 1 to 9999 once moved to UTC",
            hint="give a time from 0001-01-02 to 9999-12-30, e.g. 2025-01-31T00:00:00Z",
        ) from None


def _matcher(
    dataset: str | None, kind: str | None, since: datetime | None
) -> Callable[[dict[str, Any]], bool]:
    """Whether an entry is about ``dataset`` (alone or in a join), of ``kind``, logged at
    or after ``since`` (UTC when it has no time zone)."""
    if kind is not None and kind not in set(Kind):
        raise InvalidInput(
            f"log entry kind {kind!r} is unknown",
            hint=f"use one of: {', '.join(k.value for k in Kind)}",
        )
    # Canonical timestamps sort as text, so no entry needs its time parsed.
    after = None if since is None else _since_text(since)

    def matches(entry: dict[str, Any]) -> bool:
        if kind is not None and entry.get("kind") != kind:
            return False
        if after is not None and entry.get("time", "") < after:
            return False
        return dataset is None or dataset in entry_datasets(entry)

    return matches
