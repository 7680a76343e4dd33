"""A progress bar over the steps of a private join, for the commands that may run one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from entrepot.cli._common import err_console

__all__ = ["join_steps"]

# What each step of a private join does, as the progress bar says it.
_STEPS = {
    "blind": "each holder filters and blinds its link keys",
    "reblind": "each holder blinds the other's tokens",
    "match": "matching doubly-blinded tokens",
    "aggregate": "bounding and aggregating the matched rows",
    "noise": "adding noise",
}


@contextmanager
def join_steps(label: str) -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar over a private join's steps on stderr (a spinner until the first
    step ends; a plain query never reports one)."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def advance(step: str, done: int, total: int) -> None:
            after = list(_STEPS)[done] if done < len(_STEPS) else ""
            bar.update(
                task,
                completed=done,
                total=total,
                description=_STEPS.get(after, f"{step} done"),
            )

        yield advance
