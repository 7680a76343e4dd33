"""Durable file steps of a publish: temporary names, fsync, hashing, orphan sweeping.

A file being written lives under a temporary name that starts with ``.tmp-`` and
carries the writer's host and process id; so does a working folder (DuckDB's spill
files, a transcoded copy) under ``<home>/tmp/``. A sweep deletes such a file or
folder only when that process is gone, so it never pulls one from under a publish
still running; a crashed writer's leftovers go on the next sweep, and every node
sweeps when it opens.

Every directory and file made here is private to the node's owner (``0700`` and
``0600``, see :mod:`entrepot._files`): a version's files are made private when they
are synced, before their rename gives them a final name.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from entrepot._files import PRIVATE_DIR, PRIVATE_FILE, private_dir
from entrepot.errors import InvalidInput

__all__ = [
    "FAULT_POINTS",
    "OUTBOX_FAULT_POINTS",
    "TEMP_PREFIX",
    "check_fault_point",
    "fault",
    "fsync_dir",
    "fsync_file",
    "hash_file",
    "make_dirs",
    "removing",
    "sweep_temp_files",
    "temp_dir",
    "temp_path",
]

TEMP_PREFIX = ".tmp-"
# Large enough to keep hashing at disk speed, small enough to report progress often.
_CHUNK = 4 * 1024 * 1024

# Named points of the publish path, in order, where a test may SIGKILL the process.
FAULT_POINTS = (
    "after-validate",
    "after-write",
    "after-fsync",
    "before-rename",
    "after-rename",
    "before-commit",
    "after-commit",
)
# Points between a state change's commit and its log entry, in the exchange's outbox
# (publishes, grants, revocations, account and policy changes).
OUTBOX_FAULT_POINTS = ("outbox-committed", "outbox-claimed", "outbox-appended")


def check_fault_point(point: str | None) -> None:
    known = FAULT_POINTS + OUTBOX_FAULT_POINTS
    if point is not None and point not in known:
        raise InvalidInput(
            f"unknown fault point {point!r}",
            hint=f"set ENTREPOT_FAULT_POINT to one of: {', '.join(known)}, or unset it",
        )


def fault(armed: str | None, point: str) -> None:
    """Die at ``point`` if a test armed it: SIGKILL, so no cleanup code runs."""
    if armed == point:
        os.kill(os.getpid(), signal.SIGKILL)


def _owner_tag() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def temp_path(directory: Path, suffix: str) -> Path:
    """A fresh temporary name in ``directory`` (so the final rename is atomic)."""
    return directory / f"{TEMP_PREFIX}{_owner_tag()}-{uuid.uuid4().hex}{suffix}"


@contextmanager
def temp_dir(root: Path) -> Iterator[Path]:
    """A new private working folder under ``root``, deleted when the block ends.

    A folder left by a killed process goes on the next sweep of ``root``.
    """
    make_dirs(root)
    path = temp_path(root, "")
    path.mkdir(mode=PRIVATE_DIR)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def removing(*paths: Path) -> Iterator[None]:
    """Delete ``paths`` (those still there) when the block ends, however it ends."""
    try:
        yield
    finally:
        for path in paths:
            with suppress(FileNotFoundError):
                path.unlink()


def make_dirs(directory: Path) -> None:
    """Create ``directory`` and its parents (``0700``), fsyncing each parent that gained
    an entry."""
    private_dir(directory, made=lambda path: fsync_dir(path.parent))


def fsync_file(path: Path) -> None:
    """Make the file at ``path`` private to its owner and durable.

    DuckDB and pyarrow create files with the umask's permissions; every file a
    publish keeps is synced here before its rename, so it is private before it is
    anyone's to read.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fchmod(fd, PRIVATE_FILE)
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def hash_file(path: Path, progress: Callable[[int, int], None] | None = None) -> tuple[str, int]:
    """SHA-256 (hex) and size in bytes of the file at ``path``."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    done = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, size)
    return digest.hexdigest(), done


def _writer_alive(name: str) -> bool:
    """Whether the process that owns temporary file ``name`` may still be writing it."""
    host = socket.gethostname()
    rest = name.removeprefix(TEMP_PREFIX)
    if not rest.startswith(host + "-"):
        # Another host's writer: we cannot tell, so leave its file alone.
        return True
    pid_text = rest[len(host) + 1 :].split("-", 1)[0]
    if not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_temp_files(root: Path) -> list[Path]:
    """Delete temporary files and folders under ``root`` whose writer is gone; return them."""
    removed: list[Path] = []
    if not root.exists():
        return removed
    for path in sorted(root.rglob(f"{TEMP_PREFIX}*")):
        if _writer_alive(path.name) or path.is_symlink():
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        elif path.is_file():
            with suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed
