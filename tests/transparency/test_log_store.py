"""Crash safety and multi-process appends of the log's files."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from transparency_helpers import grant

from entrepot.errors import InvalidInput, StorageCorrupt
from entrepot.transparency import TransparencyLog, make_entry, repair_log
from entrepot.transparency.store import MAX_ENTRY_BYTES, LogStore

Factory = Callable[..., TransparencyLog]


def test_entries_survive_reopening_with_the_same_root(open_log: Factory) -> None:
    log = open_log()
    assert log.append(grant(0)) == 0
    assert log.append_many([grant(i) for i in range(1, 10)]) == 1
    root = log.root(10)
    log.close()
    again = open_log()
    assert again.size == 10
    assert again.root(10) == root
    assert [e["grantee"] for _, e in again.entries(8)] == ["c8", "c9"]


def test_a_torn_tail_is_reported_then_repaired_never_dropped(open_log: Factory) -> None:
    log = open_log()
    log.append_many([grant(i) for i in range(5)])
    log.close()
    entries = log.path / "entries.bin"
    intact = entries.stat().st_size
    with entries.open("ab") as out:
        out.write(b"\x00\x00\x00\x40\x12\x34")  # a record header promising 64 bytes, then death
    with pytest.raises(StorageCorrupt, match="torn") as caught:
        open_log()
    assert "entrepot audit repair" in caught.value.hint
    assert caught.value.details["offset"] == intact
    report = repair_log(log.path)
    assert report["torn_bytes"] == 6
    assert (log.path / "torn" / f"entries.bin.{intact}").read_bytes() == b"\x00\x00\x00\x40\x12\x34"
    again = open_log()
    assert again.size == 5
    again.check()


def test_whole_records_past_the_commit_point_are_adopted(open_log: Factory) -> None:
    log = open_log()
    log.append_many([grant(i) for i in range(3)])
    log.close()
    # A writer that died after writing its records but before the index: copy a record.
    index = log.path / "entries.idx"
    index.write_bytes(index.read_bytes()[:-8])
    tree = log.path / "tree.bin"
    tree.write_bytes(tree.read_bytes()[: 32 * 3])
    again = open_log()
    assert again.size == 3
    assert again.store.recovery["adopted"] == 1
    again.check()


def test_derived_hashes_are_rebuilt_when_lost(open_log: Factory) -> None:
    log = open_log()
    log.append_many([grant(i) for i in range(37)])
    root = log.root(37)
    log.close()
    (log.path / "tree.bin").write_bytes(b"")
    again = open_log()
    assert again.store.recovery["rehashed"] == 37
    assert again.root(37) == root


def test_missing_acknowledged_entries_are_storage_corruption(open_log: Factory) -> None:
    log = open_log()
    log.append_many([grant(i) for i in range(4)])
    log.close()
    entries = log.path / "entries.bin"
    entries.write_bytes(entries.read_bytes()[:-10])
    with pytest.raises(StorageCorrupt, match="acknowledged entries are missing"):
        open_log()


def test_a_torn_head_line_is_reported_and_repaired(open_log: Factory) -> None:
    log = open_log(every=2)
    log.append_many([grant(i) for i in range(4)])
    log.close()
    with (log.path / "heads.jsonl").open("ab") as out:
        out.write(b'{"format":"entrep')
    with pytest.raises(StorageCorrupt, match=r"heads\.jsonl"):
        open_log()
    assert repair_log(log.path)["torn_bytes"] == 17
    assert open_log().latest_head() is not None


def test_oversized_entries_are_refused(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "log")
    with pytest.raises(InvalidInput, match="exceeds"):
        store.append([b"x" * (MAX_ENTRY_BYTES + 1)])
    store.close()


APPENDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from nacl.signing import SigningKey
    from entrepot.transparency import TransparencyLog, make_entry
    log = TransparencyLog(Path(sys.argv[1]), SigningKey(bytes(range(32))), head_every_entries=7)
    for i in range(int(sys.argv[3])):
        log.append(make_entry("peer", sys.argv[2], action="ping", n=i))
    log.close()
    """
)


def test_processes_appending_at_once_interleave_without_loss(open_log: Factory) -> None:
    log = open_log()
    log.append(grant(0))
    procs = [
        subprocess.Popen([sys.executable, "-c", APPENDER, str(log.path), name, "60"])
        for name in ("writer-a", "writer-b")
    ]
    for _ in range(60):
        log.append(grant(1))
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert log.size == 181
    actors = [entry["actor"] for _, entry in log.entries()]
    assert actors.count("writer-a") == actors.count("writer-b") == 60
    for name in ("writer-a", "writer-b"):
        assert [e["n"] for _, e in log.entries() if e["actor"] == name] == list(range(60))
    report = log.check()
    assert report.entries == 181
    heads = log.heads()
    assert [h.size for h in heads] == sorted(h.size for h in heads)


def test_files_are_append_only_on_disk(open_log: Factory) -> None:
    log = open_log()
    log.append_many([grant(i) for i in range(3)])
    before = {name: (log.path / name).read_bytes() for name in ("entries.bin", "tree.bin")}
    log.append_many([grant(i) for i in range(3, 9)])
    for name, data in before.items():
        assert (log.path / name).read_bytes().startswith(data)
    assert os.path.getsize(log.path / "entries.idx") == 9 * 8


def test_a_forked_worker_and_its_parent_still_exclude_each_other(open_log: Factory) -> None:
    log = open_log()
    log.append(grant(0))
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            for i in range(40):
                log.append(make_entry("peer", "child", n=i))
        except BaseException:
            code = 1
        os._exit(code)
    for i in range(40):
        log.append(make_entry("peer", "parent", n=i))
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert log.size == 81
    for name in ("child", "parent"):
        assert [e["n"] for _, e in log.entries() if e["actor"] == name] == list(range(40))
    assert log.check().entries == 81
