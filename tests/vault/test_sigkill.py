"""Kill `entrepot dataset publish` at every step: the catalog never shows a bad version."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from multiprocessing.process import BaseProcess
from pathlib import Path

import pytest
from tests.vault.visits import write_visits_csv

from entrepot.cli.app import main
from entrepot.exchange import Exchange
from entrepot.exchange.node import Node
from entrepot.settings import Settings
from entrepot.vault import LocalVault, add_provider
from entrepot.vault._storage import FAULT_POINTS, TEMP_PREFIX

PROVIDER = "riverside-hospitals"
REF = "riverside-hospitals/outpatient-visits"


def publish_argv(home: Path, source: Path, *, force: bool = False) -> list[str]:
    """A publish of ``source``; ``force`` makes a new version even of rows already held."""
    return [
        "entrepot",
        "dataset",
        "publish",
        str(source),
        "--home",
        str(home),
        "--provider",
        PROVIDER,
        "--standard",
        "health.visit",
        "--title",
        "Outpatient visits 2025",
        "--on-error",
        "quarantine",
        "--json",
        *(["--force"] if force else []),
    ]


def _run_cli(argv: list[str], fault: str | None) -> None:
    """The child: `entrepot dataset publish` run by the CLI's own entry point."""
    if fault is not None:
        os.environ["ENTREPOT_FAULT_POINT"] = fault
    else:
        os.environ.pop("ENTREPOT_FAULT_POINT", None)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    sys.argv = argv
    main()


def start_publish(
    home: Path, source: Path, fault: str | None = None, *, force: bool = False
) -> BaseProcess:
    """Start `entrepot dataset publish` in a child process.

    The child is forked from the test process, which has imported entrepot already,
    so each run skips seconds of interpreter start-up and imports.
    """
    child = multiprocessing.get_context("fork").Process(
        target=_run_cli, args=(publish_argv(home, source, force=force), fault)
    )
    child.start()
    return child


def finish(child: BaseProcess) -> int | None:
    child.join(timeout=300)
    return child.exitcode


def test_the_cli_in_its_own_interpreter_dies_at_the_fault_point(home: Path, tmp_path: Path) -> None:
    source = write_visits_csv(tmp_path / "visits.csv", 50, bad=1)
    env = {**os.environ, "ENTREPOT_FAULT_POINT": "after-rename"}
    argv = [sys.executable, "-m", "entrepot", *publish_argv(home, source)[1:]]
    killed = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert versions_in_catalog(home) == 0
    assert list((home / "vaults").rglob("1.parquet")) != []  # the unclaimed file is there


def versions_in_catalog(home: Path) -> int:
    """Check what the catalog shows against the files, the quarantine and the log; return
    the number of versions."""
    node = Node.open(Settings(home=home))
    try:
        exchange = Exchange(node)
        # Every version's files exist, and their SHA-256 and row counts match the catalog.
        assert LocalVault.of(node).check() == []
        # Every version has its one log entry, and every entry its version.
        assert exchange.reconcile().differences == []
        found = exchange.catalog().datasets()
        return found[0].versions if found else 0
    finally:
        node.close()


def assert_clean_after_recovery(home: Path) -> None:
    """After a successful publish nothing is left that no version claims."""
    node = Node.open(Settings(home=home))
    try:
        claimed = set()
        for version in LocalVault.of(node).versions(REF):
            claimed.add(f"{version.number}.parquet")
        leftovers = [
            p
            for root in (home / "vaults", home / "quarantine")
            for p in root.rglob("*")
            if p.is_file() and (p.name.startswith(TEMP_PREFIX) or p.name not in claimed)
        ]
        assert leftovers == []
    finally:
        node.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    node = Node.init(Settings(home=tmp_path / "node"))
    add_provider(node.db, PROVIDER, "Riverside Hospitals")
    node.close()
    return tmp_path / "node"


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_a_publish_killed_at_each_step_leaves_all_or_nothing(
    home: Path, tmp_path: Path, point: str
) -> None:
    source = write_visits_csv(tmp_path / "visits.csv", 400, bad=5)
    assert finish(start_publish(home, source, fault=point)) == -signal.SIGKILL
    assert versions_in_catalog(home) == (1 if point == "after-commit" else 0)

    # The retry makes the version, or gives back the one the killed publish committed.
    assert finish(start_publish(home, source)) == 0
    assert versions_in_catalog(home) == 1
    assert_clean_after_recovery(home)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2026, 7, 31])
def test_publishes_killed_or_interrupted_at_random_times_never_show_a_bad_version(
    home: Path, tmp_path: Path, seed: int
) -> None:
    source = write_visits_csv(tmp_path / "visits.csv", 60_000, bad=50)
    started = time.monotonic()
    assert finish(start_publish(home, source)) == 0
    duration = time.monotonic() - started
    published = 1
    rng = random.Random(seed)
    outcomes: list[int | None] = []
    for attempt in range(10):
        victim = start_publish(home, source, force=True)
        time.sleep(rng.uniform(0.0, duration * 1.1))
        assert victim.pid is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim.pid, signal.SIGINT if attempt % 3 == 2 else signal.SIGKILL)
        outcome = finish(victim)
        outcomes.append(outcome)
        if outcome == 0:
            published += 1
        shown = versions_in_catalog(home)
        # Killed before its commit, or after: either way the version is whole.
        assert shown in (published, published + 1)
        published = shown
    assert -signal.SIGKILL in outcomes, outcomes  # some runs really died mid-way
    assert finish(start_publish(home, source, force=True)) == 0
    assert versions_in_catalog(home) == published + 1
    assert_clean_after_recovery(home)
