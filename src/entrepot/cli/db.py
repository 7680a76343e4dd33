"""`entrepot db`: which metadata database a node uses, and moving it to another."""

from __future__ import annotations

from typing import Annotated

import typer

from entrepot.cli._common import Db, Home, Json, console, emit, esc, settings

db_app = typer.Typer(
    help="The node's metadata database: its status, and moving it (SQLite to PostgreSQL).",
    no_args_is_help=True,
)


@db_app.command("status")
def status(home: Home = None, db: Db = None, as_json: Json = False) -> None:
    """Show which database the node uses and whether its schema is behind.

    Example: entrepot db status --home ./exchange
    """
    from entrepot.db import known_revision
    from entrepot.exchange.move import status as read_status

    found = read_status(settings(home, db))
    data = found.to_dict()
    newer = not known_revision(found.revision)
    if newer:
        data["behind"] = False
    data["newer"] = newer
    emit(
        data,
        as_json,
        lambda: console.print(
            f"database  {esc(data['database'])} ({esc(data['backend'])})\n"
            f"schema    {esc(data['revision'] or 'none')}, newest {esc(data['head'])}"
            + _schema_note(behind=found.behind, newer=newer),
            highlight=False,
        ),
    )


def _schema_note(*, behind: bool, newer: bool) -> str:
    if newer:
        return " [red](newer than this version of entrepot: run the version that wrote it)[/]"
    return " [yellow](behind: the next command migrates it)[/]" if behind else ""


@db_app.command("move")
def move(
    target: Annotated[
        str,
        typer.Argument(
            help="URL of an empty database, e.g. postgresql+psycopg://entrepot@db.internal/"
            "entrepot (a password from PGPASSWORD or ~/.pgpass).",
            show_default=False,
        ),
    ],
    home: Home = None,
    db: Db = None,
    as_json: Json = False,
) -> None:
    """Move the node's metadata to another database, then use it from now on.

    Stop `entrepot serve` first. Migrates the target's schema, copies every table in
    one transaction, checks the row counts, and records the target in the home; the
    old SQLite file stays where it was.

    Example: entrepot db move postgresql+psycopg://entrepot@localhost/entrepot --home ./exchange
    """
    from entrepot.exchange.move import move_node

    moved = move_node(settings(home, db), target)
    data = moved.to_dict()
    emit(
        data,
        as_json,
        lambda: console.print(
            f"[green]moved[/] {sum(moved.rows.values())} rows in {len(moved.rows)} tables "
            f"from {esc(moved.source)} to {esc(moved.target)}; the node now uses the latter",
            highlight=False,
        ),
    )


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
