"""`entrepot init`: create a node; `entrepot node id`: what peers know it by."""

from __future__ import annotations

import typer

from entrepot.cli._common import Db, Home, Json, console, emit, esc, open_node, settings


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


node_app = typer.Typer(help="This node's identity, as other nodes know it.", no_args_is_help=True)


@node_app.command("id")
def node_id(home: Home = None, as_json: Json = False) -> None:
    """Print this node's name, base URL and Ed25519 public key, for a peer's operator
    to add it with `entrepot peer add URL --key KEY`, and the verifier keys of its log's
    checkpoints and of its cosignatures as a witness (c2sp.org), for witness software.

    Example: entrepot node id --json
    """
    from entrepot.federation.peers import identity_of

    with open_node(home) as node:
        data = identity_of(node).to_dict()
    emit(
        data,
        as_json,
        lambda: console.print(
            f"[bold]{esc(data['name'])}[/] at {esc(data['url'])}\n  key {esc(data['key'])}\n"
            f"  log checkpoints: {esc(data['log_vkey'])}\n"
            f"  cosignatures as a witness: {esc(data['witness_vkey'])}\n"
            f"  a peer adds it with: entrepot peer add {esc(data['url'])} --key {esc(data['key'])}"
        ),
    )


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.add_typer(node_app, name="node")
