"""A child process killed by SIGKILL right after a step a test names."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable
from typing import Any

__all__ = ["die_after", "killed"]


def die_after(owner: object, name: str) -> None:
    """Make ``owner``'s ``name`` (a class's method, or an object's) run, then SIGKILL
    the process: a crash right after that step returns."""
    step = getattr(owner, name)

    def step_then_die(*args: Any, **kwargs: Any) -> Any:
        step(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("killed")

    setattr(owner, name, step_then_die)


def killed(target: Callable[..., None], *args: Any) -> None:
    """Run ``target(*args)`` in a forked child, which must die by SIGKILL."""
    child = multiprocessing.get_context("fork").Process(target=target, args=args)
    child.start()
    child.join(timeout=120)
    assert child.exitcode == -signal.SIGKILL
