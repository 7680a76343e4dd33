"""`entrepot serve` as users run it: a real process on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from entrepot.errors import ExitCode

ENTREPOT = [sys.executable, "-m", "entrepot"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def entrepot(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ENTREPOT, *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


@contextmanager
def server(
    home: Path, *extra: str, env: dict[str, str] | None = None, wait_s: float = 60
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`entrepot serve --home HOME` on a free port; yields its URL and process."""
    port = free_port()
    process = subprocess.Popen(
        [*ENTREPOT, "serve", "--home", str(home), "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, wait_s)
        yield url, process
    finally:
        stop(process)


def wait_healthy(url: str, process: subprocess.Popen[str], wait_s: float = 60) -> None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"server exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"server at {url} not healthy within {wait_s} s")


def stop(process: subprocess.Popen[str], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    if process.stdout:
        process.stdout.close()


def init_node(home: Path) -> None:
    result = entrepot("init", "--home", str(home))
    assert result.returncode == 0, result.stderr


def test_serve_answers_health_and_publishes_its_openapi(tmp_path: Path) -> None:
    home = tmp_path / "node"
    init_node(home)
    with server(home) as (url, _process):
        health = httpx.get(f"{url}/healthz").json()
        schema = httpx.get(f"{url}/openapi.json").json()
        docs = httpx.get(f"{url}/docs")
    assert health["status"] == "ok"
    assert schema["info"]["title"] == "entrepot"
    assert docs.status_code == 200


def test_serve_with_several_workers_answers(tmp_path: Path) -> None:
    home = tmp_path / "node"
    init_node(home)
    with server(home, "--workers", "2") as (url, _process):
        statuses = {httpx.get(f"{url}/healthz").status_code for _ in range(20)}
    assert statuses == {200}


def test_serve_without_a_node_fails_in_one_paragraph(tmp_path: Path) -> None:
    result = entrepot("serve", "--home", str(tmp_path / "missing"), "--port", str(free_port()))
    assert result.returncode == ExitCode.NOT_FOUND
    assert "no entrepot node" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(("host", "warned"), [("0.0.0.0", True), ("127.0.0.1", False)])
def test_serve_warns_when_plain_http_reaches_beyond_the_machine(
    tmp_path: Path, host: str, warned: bool
) -> None:
    home = tmp_path / "node"
    init_node(home)
    port = free_port()
    process = subprocess.Popen(
        [*ENTREPOT, "serve", "--home", str(home), "--host", host, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output = " ".join(process.communicate(timeout=30)[0].split())
    assert ("unencrypted; put TLS in front" in output) is warned
    assert f"on http://{host}:{port}" in output
