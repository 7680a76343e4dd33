"""`entrepot init`: create a node."""

from __future__ import annotations

import typer

from entrepot.cli._common import Db, Home, Json, console, emit, esc, settings


def init(home: Home = None, db: Db = None, as_json: Json = False) -> None:
    """Create a new node: node.db, vault directories and an Ed25519 node key.

    Example: entrepot init --home ./exchange
    """
    from entrepot.db import shown
    from entrepot.exchange.node import Node

    node = Node.init(settings(home, db))
    data = {
        "home": str(node.home.resolve()),
        "db": shown(node.db.url),
        "node_key": bytes(node.verify_key).hex(),
    }
    node.close()
    emit(
        data,
        as_json,
        lambda: console.print(
            f"[green]created[/] node at {esc(data['home'])}\n  public key {esc(data['node_key'])}"
        ),
    )


def register(app: typer.Typer) -> None:
    app.command()(init)
