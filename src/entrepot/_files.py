"""Files a node reads from its users and files it keeps: what a path may be, who may read.

A raw file to validate or publish must be a regular file named directly: a symbolic
link is refused, not followed (a link planted in a drop folder would otherwise make
the node read, and quote in its errors, a file such as ``/etc/passwd``), and so are
directories, pipes and devices (``/dev/zero`` would never end).

Everything a node keeps under its home (raw rows, quarantined rows, consumers' SQL,
stored answers, keys) is private to its owner whatever the umask: directories
``0700``, files ``0600``, set when they are made or right after.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

from entrepot.errors import InvalidInput, NotFound

__all__ = [
    "PRIVATE_DIR",
    "PRIVATE_FILE",
    "check_regular",
    "make_private",
    "open_regular",
    "private_dir",
    "tighten",
]

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def _not_regular(path: Path, what: str) -> InvalidInput:
    return InvalidInput(
        f"{path} is {what}, not a regular file",
        hint="give the path of the file itself; entrepot reads only regular files and "
        "follows no symbolic link",
        source=str(path),
    )


def check_regular(path: Path) -> None:
    """Refuse ``path`` unless it names a regular file directly (no symbolic link)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        raise NotFound(f"no file at {path}", hint="check the path of the raw file") from None
    if stat.S_ISLNK(mode):
        raise _not_regular(path, "a symbolic link")
    if not stat.S_ISREG(mode):
        raise _not_regular(path, _kind(mode))


def _kind(mode: int) -> str:
    return "a directory" if stat.S_ISDIR(mode) else "a pipe, socket or device"


def open_regular(path: Path) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file and not a symbolic link."""
    try:
        # O_NONBLOCK: opening a pipe must not wait for a writer before it is refused.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise NotFound(f"no file at {path}", hint="check the path of the raw file") from None
    except OSError as error:
        if os.path.islink(path):
            raise _not_regular(path, "a symbolic link") from None
        raise InvalidInput(
            f"{path} cannot be read ({error.strerror})",
            hint="check the file's permissions",
            source=str(path),
        ) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _not_regular(path, _kind(mode))
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def make_private(path: Path) -> None:
    """Make the file or directory at ``path`` readable by its owner alone."""
    os.chmod(path, PRIVATE_DIR if path.is_dir() else PRIVATE_FILE)


def tighten(path: Path, allowed: int = PRIVATE_FILE) -> None:
    """Take from the regular file at ``path`` every permission beyond ``allowed``.

    Nothing is added: a file its owner made read-only stays so.
    """
    found = os.stat(path)
    mode = stat.S_IMODE(found.st_mode)
    if stat.S_ISREG(found.st_mode) and mode & ~allowed:
        os.chmod(path, mode & allowed)


def private_dir(directory: Path, *, made: Callable[[Path], None] | None = None) -> Path:
    """Create ``directory`` and any missing parent, each ``0700``; return it.

    An existing directory is made private too: a home made by hand, or by an
    older version under a lax umask. ``made`` is called with each directory created,
    parents first (the vault fsyncs the parent that gained an entry).
    """
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        with suppress(FileExistsError):
            path.mkdir(mode=PRIVATE_DIR)
        if made is not None:
            made(path)
    # A home on a read-only mount, or another user's, is opened as it is.
    with suppress(PermissionError):
        os.chmod(directory, PRIVATE_DIR)
    for path in missing:
        os.chmod(path, PRIVATE_DIR)
    return directory
