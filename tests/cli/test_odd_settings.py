"""Odd ``ENTREPOT_*`` values: refused up front, naming the setting, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from entrepot.errors import ExitCode


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    node = tmp_path_factory.mktemp("odd") / "node"
    done = entrepot("init", "--home", str(node))
    assert done.returncode == 0, done.stderr
    return node


def entrepot(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrepot", *args],
        capture_output=True,
        text=True,
        check=False,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("ENTREPOT_")},
            **{f"ENTREPOT_{name.upper()}": value for name, value in settings.items()},
        },
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("engine_memory_limit", "abc"),
        ("engine_memory_limit", "0GB"),
        ("engine_memory_limit", "-1"),
        ("ingest_memory_limit", ""),
        ("engine_threads", "99999999999999999999999"),
        ("query_timeout_s", "inf"),
        ("query_timeout_s", "1e300"),
        ("peer_timeout_s", "nan"),
        ("log_head_every_s", "1e300"),
        ("default_dataset_epsilon_cap", "inf"),
        ("currency", "abc"),
        ("db", "example.com:80"),
        ("db", "/nonexistent/node.db"),
    ],
)
def test_an_odd_value_is_refused_naming_its_setting(home: Path, name: str, value: str) -> None:
    done = entrepot("catalog", "list", "--home", str(home), **{name: value})
    assert done.returncode == ExitCode.INVALID, done.stderr
    assert "Traceback" not in done.stderr
    assert "internal error" not in done.stderr
    said = " ".join(done.stderr.split())
    assert f"setting {name}:" in said
    assert f"ENTREPOT_{name.upper()}" in said


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("engine_memory_limit", "512 MiB"),
        ("ingest_memory_limit", "1.5gb"),
        ("engine_threads", "1024"),
        ("query_timeout_s", "86400"),
        ("currency", "EUR"),
        ("db", ""),
    ],
)
def test_a_usual_value_is_taken(home: Path, name: str, value: str) -> None:
    done = entrepot("catalog", "list", "--home", str(home), **{name: value})
    assert done.returncode == 0, done.stderr


def test_a_query_runs_under_a_memory_limit_in_another_unit(tmp_path: Path) -> None:
    """The engine reads every size the setting accepts."""
    from tests.exchange.logged_world import CONSUMER, SQL, seed

    from entrepot.exchange.node import Node
    from entrepot.settings import Settings

    node = Node.init(Settings(home=tmp_path / "node"))
    seed(node, tmp_path, query=False)
    node.close()
    done = entrepot(
        "query",
        "--as",
        CONSUMER,
        "--epsilon",
        "0.1",
        "--home",
        str(tmp_path / "node"),
        SQL,
        engine_memory_limit="256 MiB",
    )
    assert done.returncode == 0, done.stderr
