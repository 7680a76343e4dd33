"""`entrepot serve --workers N` leaves nothing behind when it is SIGKILLed: its workers
end and the port is free again."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest
from test_server import server

from entrepot.exchange.node import Node
from entrepot.settings import Settings

# The workers' grace period is 10 s; they usually end at once, being idle.
_BOUND_S = 30.0


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    """Whether ``pid`` is alive (a zombie nobody has reaped yet counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_workers_end_and_free_the_port_when_serve_is_killed(tmp_path: Path) -> None:
    home = tmp_path / "node"
    Node.init(Settings(home=home)).close()
    with server(home, "--workers", "2", "--query-workers", "0") as (url, process):
        port = int(url.rsplit(":", 1)[1])
        deadline = time.monotonic() + _BOUND_S
        while len(workers := _children(process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(workers) >= 2, workers
        try:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            deadline = time.monotonic() + _BOUND_S
            while time.monotonic() < deadline:
                if not any(_running(pid) for pid in workers) and _port_free(port):
                    break
                time.sleep(0.2)
            assert [pid for pid in workers if _running(pid)] == []
            assert _port_free(port)
        finally:
            # Whatever the outcome, nothing of this test outlives it.
            for pid in workers:
                if _running(pid):
                    os.kill(pid, signal.SIGKILL)
