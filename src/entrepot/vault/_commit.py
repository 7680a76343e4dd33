"""Giving written files their final names atomically with the rows that claim them.

A file written durably under a temporary name (:mod:`entrepot.vault._storage`) gets
its final name by a rename made while the node-wide commit lock is held, and the row
that names it is committed before the lock is released. A sweep under the same lock
deletes final-named files no row claims (left by a crash between rename and commit).
So no reader ever finds a row naming a missing or partial file, and a file no row
names never outlives the next sweep. Publishing a version uses this; so can any
other writer of files under the home.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from entrepot.vault._storage import fsync_dir

__all__ = ["placing", "serialize_commits", "sweep_unclaimed"]

# Any constant works: it names the one PostgreSQL advisory lock that serializes the
# commit step of publishes and sweeps, as BEGIN IMMEDIATE does on SQLite.
_PG_LOCK_KEY = 0x656E7472


def serialize_commits(session: Session) -> None:
    """Hold the node-wide commit lock until ``session``'s transaction ends."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})


@contextmanager
def placing(moves: Iterable[tuple[Path, Path]]) -> Iterator[None]:
    """Rename each ``(temporary, final)`` pair and sync its folder, inside a commit.

    Call it within a transaction that holds :func:`serialize_commits`; the block adds
    the rows naming the final files. If the block fails, the final files are deleted
    while the lock is still held: those names are the caller's until it ends.
    """
    moves = list(moves)
    try:
        for written, final in moves:
            os.replace(written, final)
        for directory in dict.fromkeys(final.parent for _, final in reversed(moves)):
            fsync_dir(directory)
        yield
    except BaseException:
        for _, final in moves:
            final.unlink(missing_ok=True)
        raise


def sweep_unclaimed(
    session: Session, home: Path, roots: Iterable[Path], claimed: set[str]
) -> list[Path]:
    """Delete the version-numbered files under ``roots`` whose home-relative path no row claims.

    ``session`` must hold :func:`serialize_commits`, so a writer between its rename
    and its commit is never swept.
    """
    removed: list[Path] = []
    for root in roots:
        if not root.exists():
            continue
        for path in root.glob("*/*/*.parquet"):
            # Only version-numbered names are ours to judge; leave anything else.
            if not path.stem.isdigit() or path.relative_to(home).as_posix() in claimed:
                continue
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
