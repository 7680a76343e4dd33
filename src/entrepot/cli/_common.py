"""What every command shares: --home and --json, where a command runs, printing, errors.

A command runs in one of two places. Logged in (`entrepot login`), it calls the
server's HTTP API as the token's account; otherwise it opens the local node and
acts as ``--as ORG`` (or the home's holder). :func:`session` hands it the one
client interface for either place, so a command module only renders. The library
behind the local client (DuckDB, SQLAlchemy, OpenDP, pandas) is imported only when
it is used: a command that calls a server starts without loading the analytical
stack.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console, HighlighterType, JustifyMethod, OverflowMethod
from rich.errors import MarkupError
from rich.markup import escape
from rich.style import Style
from rich.table import Table
from rich.text import Text

from entrepot._text import is_unsafe, printable
from entrepot.cli import _collector
from entrepot.client import Client, current
from entrepot.errors import EntrepotError, InvalidInput, render

if TYPE_CHECKING:
    from entrepot.exchange import Exchange
    from entrepot.exchange.actors import Actor
    from entrepot.exchange.node import Node
    from entrepot.settings import Settings


class SafeConsole(Console):
    """A console whose printed strings cannot drive the terminal or crash the command.

    Commands pass what they echo through :func:`esc` (or print it as a plain
    :class:`~rich.text.Text`); this is the net under them, for a call site that
    forgets: a control character in a printed string comes out escaped, and brackets
    that are not valid markup come out as written instead of as a traceback (a
    traceback after a commit would report failure for a change that was made).
    Emoji codes stay off: ``:x:`` in a file's header is text, not a picture.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(emoji=False, **kwargs)

    def render_str(
        self,
        text: str,
        *,
        style: str | Style = "",
        justify: JustifyMethod | None = None,
        overflow: OverflowMethod | None = None,
        emoji: bool | None = None,
        markup: bool | None = None,
        highlight: bool | None = None,
        highlighter: HighlighterType | None = None,
    ) -> Text:
        options: dict[str, Any] = {
            "style": style,
            "justify": justify,
            "overflow": overflow,
            "emoji": emoji,
            "highlight": highlight,
            "highlighter": highlighter,
        }
        safe = printable(text, multiline=True)
        try:
            return super().render_str(safe, markup=markup, **options)
        except MarkupError:
            return super().render_str(safe, markup=False, **options)


console = SafeConsole()
err_console = SafeConsole(stderr=True)


def esc(value: object, *, multiline: bool = False) -> str:
    """``value`` as text to put in a markup string: control characters and markup escaped."""
    return escape(printable(str(value), multiline=multiline))


def json_text(data: Any) -> str:
    """``data`` as indented JSON whose strings hold no raw control character.

    ``json`` escapes C0 controls itself; DEL, C1, bidirectional controls and lone
    surrogates would pass through raw with ``ensure_ascii=False``, so they are
    written as ``\\uXXXX`` escapes (valid JSON: they only occur inside strings).
    """
    text = json.dumps(data, indent=2, default=str, ensure_ascii=False)
    # The indentation's newlines are JSON's own; json escapes any newline in a string.
    return "".join(f"\\u{ord(c):04x}" if is_unsafe(c) and c != "\n" else c for c in text)


def cell(value: object, *, multiline: bool = False) -> Text:
    """A table cell or a line of data: plain text, never markup, control characters escaped.

    A :class:`~rich.text.Text` passes as it is: a command styles its own words that way.
    """
    if isinstance(value, Text):
        return value
    return Text("" if value is None else printable(str(value), multiline=multiline))


Home = Annotated[
    Path | None,
    typer.Option(
        "--home",
        envvar="ENTREPOT_HOME",
        help="The node's home directory \\[default: ./.entrepot].",
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
# Options of every command that spends ε on a dataset (a query, a join's overlap).
Purpose = Annotated[
    str | None,
    typer.Option("--purpose", help="The purpose of this use \\[default: the grant's]."),
]
ReceiptFile = Annotated[
    Path | None,
    typer.Option("--receipt", help="Write the signed receipt to this file.", dir_okay=False),
]
Db = Annotated[
    str | None,
    typer.Option("--db", envvar="ENTREPOT_DB", help="Metadata DB URL \\[default: SQLite in home]."),
]


def settings(home: Path | None, db: str | None = None) -> Settings:
    from entrepot.settings import Settings

    overrides: dict[str, Any] = {}
    if home is not None:
        overrides["home"] = home
    if db is not None:
        overrides["db"] = db
    return Settings(**overrides)


def bad_setting(error: ValidationError) -> InvalidInput:
    """A setting that failed validation (often an ``ENTREPOT_*`` variable), named."""
    problem = error.errors()[0]
    name = str(problem["loc"][0]) if problem["loc"] else "settings"
    return InvalidInput(
        f"setting {name}: {problem['msg']} (got {problem.get('input')!r})",
        hint=f"fix ENTREPOT_{name.upper()} in the environment, or the option that sets it",
        setting=name,
    )


@contextmanager
def open_node(home: Path | None, db: str | None = None) -> Iterator[Node]:
    from entrepot.exchange.node import Node

    node = Node.open(settings(home, db))
    _collector.started()
    try:
        yield node
    finally:
        node.close()


def acting(exchange: Exchange, as_: str | None) -> Actor:
    """The party a local command acts for: ``--as ORG``, else the home's holder."""
    from entrepot.exchange.actors import LOCAL

    return exchange.actor(as_) if as_ else LOCAL


@contextmanager
def session(home: Path | None, as_: str | None = None) -> Iterator[Client]:
    """The client a command calls: the logged-in server's, else the node in ``home``'s.

    Locally, a :class:`~entrepot.client.LocalClient` acts as ``--as ORG`` (or the
    home's holder) on the node's services; logged in, an
    :class:`~entrepot.client.HttpClient` acts as the token's account, and ``--as`` is
    refused rather than silently ignored. Both return the API's bodies, so one
    renderer prints either.
    """
    remote = current()
    if remote is None:
        from entrepot.client.local import LocalClient
        from entrepot.exchange import Exchange

        with open_node(home) as node:
            exchange = Exchange(node)
            yield LocalClient(exchange, acting(exchange, as_))
        return
    _collector.started()
    with remote:
        if as_ is not None:
            raise InvalidInput(
                f"--as {as_} acts on a local node, but the CLI is logged in to {remote.url}",
                hint="the server acts as the logged-in token's account; drop --as (and unset "
                "ENTREPOT_AS), or `entrepot logout` to work on the local node",
            )
        yield remote


def is_local(client: Client) -> bool:
    """Whether ``client`` acts on a node in this process rather than on a server."""
    # Read from sys.modules: asking must not load the local stack for a server's client.
    local = sys.modules.get("entrepot.client.local")
    return local is not None and isinstance(client, local.LocalClient)


def emit(data: Any, as_json: bool, render: Callable[[], None] | None = None) -> None:
    """Print ``data`` as JSON for scripts, or call ``render`` for people."""
    if as_json or render is None:
        sys.stdout.write(json_text(data) + "\n")
    else:
        render()


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> Table:
    """A table of data: its title and every cell are plain text, never markup."""
    out = Table(
        title=None if title is None else cell(title), title_justify="left", header_style="bold"
    )
    for column in columns:
        out.add_column(cell(column))
    for row in rows:
        out.add_row(*(cell(v) for v in row))
    return out


# The API's parameters whose flag is not the parameter's name with dashes.
_FLAGS = {"actions": "--action", "pseudonyms": "--pseudonym"}


def flag(name: str) -> str:
    """The command line's flag for the API's parameter ``name`` (``max_queries``)."""
    return _FLAGS.get(name, "--" + name.replace("_", "-"))


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
        suffix = f" [dim](refused by {esc(', '.join(refused_by))})[/]" if refused_by else ""
        message, hint = render(error.message, flag), render(error.hint, flag)
        err_console.print(
            f"[bold red]error:[/] {esc(message, multiline=True)}{suffix}", highlight=False
        )
        if hint:
            err_console.print(f"[bold]hint:[/] {esc(hint, multiline=True)}", highlight=False)
    raise SystemExit(int(error.exit_code))
