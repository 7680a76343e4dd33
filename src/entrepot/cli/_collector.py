"""The garbage collector while a command starts.

Nearly everything a command builds before its work begins (the modules of Typer,
Rich, pydantic and SQLAlchemy, the node's engine and tables) lives until the process
ends, yet the collector's default rhythm, a young pass every 700 allocations and a
full pass every 70,000, traverses those objects again and again and once more at
exit: a tenth of a short command's instructions and, walking memory the caches do
not hold, nearly a third of its CPU time. The command line collects less often
while it starts, then freezes what it built, so that no later pass traverses it,
and collects at the default rhythm from there on.
"""

from __future__ import annotations

import gc

STARTING = (100_000, 10, 10)

_before: tuple[int, int, int] | None = None


def starting() -> None:
    """Collect a young generation every 100,000 allocations until :func:`started`."""
    global _before
    _before = gc.get_threshold()
    gc.set_threshold(*STARTING)


def started() -> None:
    """Freeze what start-up built and collect at the rhythm there was before it.

    Does nothing in a process that did not start as the command line (a test, a
    notebook), whose objects are not all start-up's.
    """
    global _before
    if _before is not None:
        gc.freeze()
        gc.set_threshold(*_before)
        _before = None
