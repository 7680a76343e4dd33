"""The metadata database's write transactions: synced by default, unsynced when asked."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from entrepot.db import Database

NORMAL, FULL = 1, 2


def test_an_unsynced_write_leaves_every_later_write_synced(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'node.db'}")
    with db.write(synced=False) as session:
        assert session.execute(text("PRAGMA synchronous")).scalar() == NORMAL
        session.execute(text("CREATE TABLE seen (nonce TEXT PRIMARY KEY)"))
        session.execute(text("INSERT INTO seen VALUES ('a')"))
    # The pool hands the same connection back: it is synced again for the next writer.
    with db.write() as session:
        assert session.execute(text("PRAGMA synchronous")).scalar() == FULL
        assert session.execute(text("SELECT nonce FROM seen")).scalars().all() == ["a"]
    with db.read() as session:
        assert session.execute(text("PRAGMA synchronous")).scalar() == FULL
    db.engine.dispose()
