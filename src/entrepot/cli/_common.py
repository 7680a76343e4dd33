"""What every command shares: --home and --json, opening the node, printing, errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from entrepot.errors import EntrepotError
from entrepot.exchange.node import Node
from entrepot.settings import Settings

console = Console()
err_console = Console(stderr=True)

Home = Annotated[
    Path | None,
    typer.Option(
        "--home",
        envvar="ENTREPOT_HOME",
        help="The node's home directory [default: ./.entrepot].",
        show_default=False,
    ),
]
As = Annotated[
    str | None,
    typer.Option(
        "--as",
        envvar="ENTREPOT_AS",
        help="Act as this organization (local mode; a logged-in CLI acts as its token).",
        show_default=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
Db = Annotated[
    str | None,
    typer.Option("--db", envvar="ENTREPOT_DB", help="Metadata DB URL (default: SQLite in home)."),
]


def settings(home: Path | None, db: str | None = None) -> Settings:
    overrides: dict[str, Any] = {}
    if home is not None:
        overrides["home"] = home
    if db is not None:
        overrides["db"] = db
    return Settings(**overrides)


@contextmanager
def open_node(home: Path | None, db: str | None = None) -> Iterator[Node]:
    node = Node.open(settings(home, db))
    try:
        yield node
    finally:
        node.close()


def emit(data: Any, as_json: bool, render: Callable[[], None] | None = None) -> None:
    """Print ``data`` as JSON for scripts, or call ``render`` for people."""
    if as_json or render is None:
        sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")
    else:
        render()


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> Table:
    out = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        out.add_column(column)
    for row in rows:
        out.add_row(*("" if v is None else str(v) for v in row))
    return out


def fail(error: EntrepotError, as_json: bool = False) -> None:
    """Report ``error`` in one paragraph (or its JSON body) and exit non-zero."""
    if as_json:
        sys.stdout.write(json.dumps(error.to_dict(), indent=2, default=str) + "\n")
    else:
        # Name what refused: the policy rule, contract clause, budget or limit setting.
        refused_by = [
            f"{name} {error.details[name]}"
            for name in ("rule", "clause", "budget", "setting")
            if error.details.get(name)
        ]
        suffix = f" [dim](refused by {', '.join(refused_by)})[/]" if refused_by else ""
        err_console.print(f"[bold red]error:[/] {error.message}{suffix}", highlight=False)
        if error.hint:
            err_console.print(f"[bold]hint:[/] {error.hint}", highlight=False)
    raise SystemExit(2 if error.status < 500 else 1)
