"""SIGKILL a writer in the middle of a burst of appends: nothing acknowledged is lost."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from nacl.signing import SigningKey

from entrepot.errors import StorageCorrupt
from entrepot.transparency import TransparencyLog, TreeHead, repair_log, verify_head

WRITER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from nacl.signing import SigningKey
    from entrepot.transparency import TransparencyLog, make_entry
    log = TransparencyLog(Path(sys.argv[1]), SigningKey(bytes(range(32))), head_every_entries=300)
    n, batch = log.size, 0
    while True:
        size = 1 + (batch * 37) % 400
        entries = [make_entry("peer", "burst", n=n + i, pad="x" * (i % 50)) for i in range(size)]
        n = log.append_many(entries) + size
        head = log.latest_head()
        print(json.dumps({"acked": n, "head": head.to_json() if head else None}), flush=True)
        batch += 1
    """
)


def _burst(path: Path, acks: int, linger_s: float) -> tuple[int, TreeHead | None]:
    """Run the writer until ``acks`` batches are acknowledged, let it go on, then SIGKILL it."""
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    ) as writer:
        assert writer.stdout is not None
        acked, head = 0, None
        for _ in range(acks):
            line = json.loads(writer.stdout.readline())
            acked = line["acked"]
            head = None if line["head"] is None else TreeHead.from_json(line["head"])
        time.sleep(linger_s)
        writer.send_signal(signal.SIGKILL)
    return acked, head


def _reopen(path: Path, key: SigningKey) -> TransparencyLog:
    try:
        return TransparencyLog(path, key)
    except StorageCorrupt as error:
        hint = error.hint
    # A torn tail is reported with the way out, and the repair keeps every whole entry.
    assert "entrepot audit repair" in hint
    repair_log(path)
    return TransparencyLog(path, key)


def test_acknowledged_entries_survive_sigkill(tmp_path: Path) -> None:
    key = SigningKey(bytes(range(32)))
    path = tmp_path / "log"
    for round_, linger in enumerate((0.0, 0.003, 0.011, 0.023)):
        acked, head_before = _burst(path, acks=8 + round_ * 3, linger_s=linger)
        log = _reopen(path, key)
        assert log.size >= acked
        numbers = [entry["n"] for _, entry in log.entries()]
        assert numbers == list(range(log.size)), "an entry is missing, duplicated or reordered"
        latest = log.latest_head()
        assert latest is not None
        verify_head(latest, key.verify_key)
        assert head_before is not None
        log.verify_from(head_before)
        assert log.check().entries == log.size
        log.close()
