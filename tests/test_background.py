"""A key's background task: one thread at a time, one more pass for asks that come meanwhile."""

from __future__ import annotations

import logging
import threading

import pytest

from entrepot._background import Coalesced


def wait_idle(runner: Coalesced) -> None:
    for thread in threading.enumerate():
        if thread.name == runner.name:
            thread.join(timeout=10)


def test_asks_while_a_pass_runs_make_one_more_pass_not_one_each() -> None:
    runner = Coalesced("test-coalesced", "failed", daemon=True)
    started, release = threading.Event(), threading.Event()
    passes: list[int] = []

    def task() -> None:
        passes.append(len(passes))
        started.set()
        release.wait(timeout=10)

    runner.ask("k", task)
    assert started.wait(timeout=10)
    for _ in range(5):
        runner.ask("k", task)
    release.set()
    wait_idle(runner)
    assert passes == [0, 1]
    runner.ask("k", task)
    wait_idle(runner)
    assert passes == [0, 1, 2]


def test_keys_run_apart_and_a_failed_pass_is_logged_and_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner = Coalesced("test-coalesced-keys", "the pass failed", daemon=True)
    ran: list[str] = []

    def failing() -> None:
        ran.append("a")
        raise RuntimeError("boom")

    with caplog.at_level(logging.WARNING, logger="entrepot._background"):
        runner.ask("a", failing)
        wait_idle(runner)
    assert "the pass failed" in caplog.text
    runner.ask("a", lambda: ran.append("a again"))
    runner.ask("b", lambda: ran.append("b"))
    wait_idle(runner)
    assert sorted(ran) == ["a", "a again", "b"]
