"""Everything under a node's home is private to its owner, whatever the umask; what a
killed process left behind is swept when a node opens, never what a live one holds."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from entrepot.exchange.node import Node
from entrepot.settings import Settings

# The whole life of a home in one child process, so that its umask is the test's:
# init, a publish from a stream (spooled) with quarantined rows, a policy, a grant,
# a query with its stored answer, and the log written all along.
_LIFE = """
import io, os, sys
from datetime import date, timedelta
from pathlib import Path

os.umask(int(sys.argv[2], 8))
from tests.vault.visits import visit_rows, HEADER
from entrepot.exchange.accounts import LOCAL, Accounts
from entrepot.exchange.contracts import Contracts
from entrepot.exchange.node import Node
from entrepot.exchange.policies import Policies
from entrepot.exchange import Exchange
from entrepot.settings import Settings
from entrepot.standards import get
from entrepot.vault import LocalVault, OnError, PublishRequest, add_provider

node = Node.init(Settings(home=Path(sys.argv[1]), token_hash_memory_kib=1024))
add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
lines = [",".join(HEADER)] + [",".join(r) for r in visit_rows(200, bad=3)]
LocalVault.of(node).publish(
    PublishRequest(
        provider="riverside-hospitals",
        standard=get("health.visit"),
        title="Outpatient visits 2025",
        on_error=OnError.QUARANTINE,
        filename="visits.csv",
    ),
    io.BytesIO("\\n".join(lines).encode()),
)
accounts = Accounts(node.db, node.settings, log=node.log)
accounts.create(LOCAL, "city-health-bureau", "consumer")
provider = accounts.actor("riverside-hospitals")
policy = "epsilon:\\n  per_query: 1.0\\n  dataset_cap: 5.0\\nlatency_floor_ms: 0\\nthreshold: 0\\n"
Policies(node).set(provider, "riverside-hospitals/outpatient-visits", policy, where="test")
consumer = accounts.actor("city-health-bureau")
contracts = Contracts(node.db, node.settings, log=node.log)
request = contracts.request(
    consumer,
    "riverside-hospitals/outpatient-visits",
    purpose="public-health-surveillance",
    epsilon=2.0,
    until=date.today() + timedelta(days=30),
)
contracts.grant(provider, request.ref, epsilon=2.0)
Exchange(node).queries.run(
    consumer,
    "SELECT district, COUNT(*) AS n FROM riverside_hospitals.outpatient_visits GROUP BY district",
    epsilon=1.0,
)
node.log.sign_head()
node.close()
"""


def _lax(home: Path) -> list[str]:
    """Everything under ``home`` (itself included) that its group or others may use."""
    found = []
    for path in [home, *home.rglob("*")]:
        mode = path.lstat().st_mode
        if stat.S_IMODE(mode) & 0o077:
            found.append(f"{path.relative_to(home.parent)} {stat.filemode(mode)}")
    return found


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_a_home_is_private_to_its_owner_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    home = tmp_path / "node"
    root = Path(__file__).parents[2]
    lived = subprocess.run(
        [sys.executable, "-c", _LIFE, str(home), f"{umask:o}"],
        capture_output=True,
        text=True,
        check=False,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert lived.returncode == 0, lived.stderr
    names = {p.name for p in home.rglob("*")}
    # The walk saw what matters: versions, quarantined rows, the database, log, keys.
    assert {"1.parquet", "node.db", "node.key", "entries.bin", ".incoming"} <= names
    assert list((home / "quarantine").rglob("*.parquet"))
    assert _lax(home) == []


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_opening_a_node_sweeps_what_killed_processes_left_and_nothing_else(
    tmp_path: Path,
) -> None:
    settings = Settings(home=tmp_path / "node")
    Node.init(settings).close()
    host = socket.gethostname()
    dead, alive = _dead_pid(), os.getpid()
    spool = settings.home / "vaults" / ".incoming"
    spool.mkdir(mode=0o700)
    stale_file = spool / f".tmp-{host}-{dead}-0123.csv"
    live_file = spool / f".tmp-{host}-{alive}-4567.csv"
    other_host = spool / f".tmp-elsewhere-{dead}-89ab.csv"
    stale_dir = settings.home / "tmp" / f".tmp-{host}-{dead}-cdef"
    live_dir = settings.home / "tmp" / f".tmp-{host}-{alive}-0000"
    for folder in (stale_dir, live_dir):
        (folder / "spill").mkdir(parents=True)
        (folder / "spill" / "duckdb_temp_block.bin").write_bytes(b"rows")
    for path in (stale_file, live_file, other_host):
        path.write_bytes(b"raw rows")
    Node.open(settings).close()
    assert not stale_file.exists()
    assert not stale_dir.exists()
    # A running writer's files, and another host's (whose processes we cannot see), stay.
    assert live_file.exists()
    assert live_dir.exists()
    assert other_host.exists()


def test_opening_an_older_home_tightens_its_directories(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "node")
    Node.init(settings).close()
    for path in (settings.home, settings.home / "vaults", settings.home / "log"):
        path.chmod(0o755)
    Node.open(settings).close()
    assert _lax(settings.home) == []
