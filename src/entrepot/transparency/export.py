"""Full offline verification: every entry rehashed, every signed head checked.

An export directory holds ``entries.jsonl`` (one canonical entry per line, in log
order), ``heads.jsonl`` (every signed head), ``node.pub`` and a README with the
command that verifies it without a node::

    entrepot audit verify-export DIR --node-key node.pub

Verification streams the entries once, keeping only the O(log n) roots of the
perfect subtrees seen so far, and compares the root at each head's size with the
signed root. Heads that all match one stream of entries prove the log only grew.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from nacl.signing import VerifyKey

from entrepot.errors import InvalidInput, NotFound, ProofInvalid
from entrepot.transparency.canonical import parse_canonical
from entrepot.transparency.heads import TreeHead, verify_head
from entrepot.transparency.merkle import EMPTY_ROOT, CompactRange, leaf_hash

__all__ = [
    "EXPORT_README",
    "VerifyReport",
    "read_heads",
    "verify_entries",
    "verify_export",
    "write_export",
]

Progress = Callable[[int], None]
# Entries per unit of work: large enough to amortise sending them to a worker.
_CHUNK = 16384

EXPORT_README = (
    "A copy of an entrepot transparency log: entries.jsonl (one canonical JSON entry\n"
    "per line, in log order), heads.jsonl (the node's signed tree heads), node.pub.\n"
    "Verify it without the node (compare node.pub with a key you trust):\n\n"
    "    entrepot audit verify-export . --node-key node.pub\n"
)


@dataclass(frozen=True)
class VerifyReport:
    entries: int
    heads: int
    signed_size: int
    root: str
    unsigned: int

    def to_json(self) -> dict[str, object]:
        return {
            "ok": True,
            "entries": self.entries,
            "heads": self.heads,
            "signed_size": self.signed_size,
            "root": self.root,
            "unsigned_entries": self.unsigned,
        }


def verify_entries(
    records: Iterable[bytes],
    heads: Sequence[TreeHead],
    key: VerifyKey,
    progress: Progress | None = None,
    workers: int | None = None,
    nodes: Callable[[list[bytes]], None] | None = None,
) -> VerifyReport:
    """Rehash ``records`` and check every head against them; ProofInvalid names the first fault.

    Checking each entry's canonical form and hashing it is spread over ``workers``
    processes (default: the CPUs, at most 4) once there is more than one chunk;
    folding the leaves into roots stays in this process, in order. ``nodes``, if
    given, receives every complete Merkle node in post-order (a leaf, then the
    parents it completes), chunk by chunk, to compare with a stored tree.
    """
    by_size: dict[int, list[TreeHead]] = {}
    previous = 0
    for position, head in enumerate(heads):
        verify_head(head, key, what=f"tree head #{position}")
        if head.size < previous:
            raise ProofInvalid(
                f"tree head #{position} has size {head.size}, smaller than the head before it "
                f"({previous}): the log shrank",
                hint="a log only grows; this node rewrote history or the heads were reordered",
                part=f"tree head #{position}",
            )
        previous = head.size
        by_size.setdefault(head.size, []).append(head)
    for head in by_size.pop(0, []):
        _match(head, EMPTY_ROOT)
    tree = CompactRange()
    for leaves in _leaf_chunks(records, workers):
        completed: list[bytes] = []
        for leaf in leaves:
            completed += tree.append(leaf)
            if tree.size in by_size:
                root = tree.root()
                for head in by_size.pop(tree.size):
                    _match(head, root)
        if nodes is not None:
            nodes(completed)
        if progress is not None:
            progress(tree.size)
    if by_size:
        missing = min(by_size)
        raise ProofInvalid(
            f"a signed tree head covers {missing} entries but only {tree.size} are present: "
            "entries were removed",
            hint="fetch a complete copy of the log; a signed head proves the node logged them",
            part="log entries",
        )
    if progress is not None:
        progress(tree.size)
    return VerifyReport(
        entries=tree.size,
        heads=len(heads),
        signed_size=previous,
        root=tree.root().hex(),
        unsigned=tree.size - previous,
    )


def _hash_chunk(job: tuple[int, list[bytes]]) -> tuple[list[bytes], tuple[int, str] | None]:
    """Leaf hashes of canonical entries, or where and why the first one is not canonical."""
    first, records = job
    leaves: list[bytes] = []
    for data in records:
        try:
            parse_canonical(data, what="log entry")
        except ProofInvalid as error:
            index = first + len(leaves)
            return leaves, (index, error.message.replace("log entry", f"log entry {index}", 1))
        leaves.append(leaf_hash(data))
    return leaves, None


def _jobs(records: Iterable[bytes]) -> Iterator[tuple[int, list[bytes]]]:
    chunk: list[bytes] = []
    first = 0
    for data in records:
        chunk.append(data)
        if len(chunk) == _CHUNK:
            yield first, chunk
            first += len(chunk)
            chunk = []
    if chunk:
        yield first, chunk


def _leaf_chunks(records: Iterable[bytes], workers: int | None) -> Iterator[list[bytes]]:
    jobs = _jobs(records)
    started = list(itertools.islice(jobs, 2))
    count = min(4, os.cpu_count() or 1) if workers is None else workers
    if len(started) < 2 or count <= 1:
        yield from _leaves(map(_hash_chunk, itertools.chain(started, jobs)))
        return
    # Fork: workers need nothing but this module, and start in milliseconds.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(count, mp_context=context) as pool:
        pending: deque[Future[tuple[list[bytes], tuple[int, str] | None]]] = deque()

        def ordered() -> Iterator[tuple[list[bytes], tuple[int, str] | None]]:
            for job in itertools.chain(started, jobs):
                pending.append(pool.submit(_hash_chunk, job))
                # A bounded queue keeps memory flat however long the log is.
                if len(pending) > 2 * count:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

        try:
            yield from _leaves(ordered())
        finally:
            for future in pending:
                future.cancel()


def _leaves(
    results: Iterator[tuple[list[bytes], tuple[int, str] | None]],
) -> Iterator[list[bytes]]:
    for leaves, fault in results:
        yield leaves
        if fault is not None:
            index, message = fault
            raise ProofInvalid(
                message,
                hint="the bytes were altered; fetch a fresh copy from the node",
                part=f"log entry {index}",
            )


def _match(head: TreeHead, root: bytes) -> None:
    if head.root != root:
        raise ProofInvalid(
            f"the entries do not hash to the root signed in the tree head of size {head.size}",
            hint="an entry was altered, removed or inserted before that point",
            part="log entries",
            size=head.size,
        )


def write_export(
    directory: Path, entries: Iterable[bytes], heads: Sequence[bytes], key: bytes | None
) -> dict[str, object]:
    """Write an export of ``entries`` and ``heads`` (lines as stored) signed with ``key``."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InvalidInput(
            f"{directory} cannot be a folder to export into: a file stands at it or on its path",
            hint="give the path of a new or existing folder",
        ) from None
    count = 0
    with (directory / "entries.jsonl").open("wb") as out:
        for line in entries:
            out.write(line + b"\n")
            count += 1
    (directory / "heads.jsonl").write_bytes(b"".join(line + b"\n" for line in heads))
    if key is not None:
        (directory / "node.pub").write_text(key.hex() + "\n")
    (directory / "README.txt").write_text(EXPORT_README)
    return {"directory": str(directory), "entries": count, "heads": len(heads)}


def read_heads(path: Path) -> list[TreeHead]:
    """Every head of a ``heads.jsonl`` file, parsed strictly."""
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    if lines[-1]:
        raise ProofInvalid(
            f"{path} is truncated: its last line has no end",
            hint="copy the file again",
            part="tree heads",
        )
    return [
        TreeHead.from_bytes(line, what=f"tree head #{position}")
        for position, line in enumerate(lines[:-1])
    ]


def _lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as stream:
        for line in stream:
            if not line.endswith(b"\n"):
                raise ProofInvalid(
                    f"{path} is truncated: its last line has no end",
                    hint="copy the file again",
                    part="log entries",
                )
            yield line[:-1]


def verify_export(
    directory: Path,
    key: VerifyKey,
    progress: Progress | None = None,
    workers: int | None = None,
) -> VerifyReport:
    """Verify an export made by ``entrepot audit export``, with the node's public key only."""
    entries = _export_file(directory, "entries.jsonl")
    heads = _export_file(directory, "heads.jsonl")
    report = verify_entries(_lines(entries), read_heads(heads), key, progress, workers)
    if report.entries and not report.heads:
        raise ProofInvalid(
            f"{heads} holds no signed tree head: nothing the node signed vouches for the "
            f"{report.entries} entries",
            hint="copy the export again with its heads.jsonl, or export the log anew",
            part="tree heads",
        )
    return report


def _export_file(directory: Path, name: str) -> Path:
    """The file ``name`` of an export, which ``audit export`` always writes."""
    path = directory / name
    if not path.is_file():
        raise NotFound(
            f"{directory} holds no file {name}",
            hint="point at a whole directory made by `entrepot audit export DIR`",
        )
    return path
