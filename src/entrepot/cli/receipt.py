"""`entrepot receipt`: check a signed receipt offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from entrepot.cli._common import Home, Json, console, emit, settings
from entrepot.cli.audit import NodeKey
from entrepot.errors import NotFound
from entrepot.transparency import read_verify_key, verify_receipt

receipt_app = typer.Typer(help="Signed receipts that come with every answer.", no_args_is_help=True)


@receipt_app.command("verify")
def verify(
    path: Annotated[Path, typer.Argument(help="The receipt JSON file.")],
    node_key: NodeKey = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Verify a receipt with the node's public key only: no server, no network.

    Example: entrepot receipt verify receipt.json --node-key node.pub
    """
    key = read_verify_key(node_key, settings(home).home / "keys" / "node.pub")
    if not path.is_file():
        raise NotFound(f"no receipt at {path}", hint="pass the receipt file the answer came with")
    receipt = verify_receipt(path.read_bytes(), key)
    data = {
        "ok": True,
        "statement": receipt.statement,
        "log_index": receipt.index,
        "head": receipt.head.to_json(),
    }
    statement = receipt.statement
    emit(
        data,
        as_json,
        lambda: console.print(
            f"[green]valid[/] {statement['kind']} receipt: ε {statement['epsilon']}, "
            f"answer sha256 {statement['answer_sha256']}\n"
            f"logged as entry {receipt.index} under the head of size {receipt.head.size} "
            f"signed {receipt.head.time}",
            highlight=False,
        ),
    )


def register(app: typer.Typer) -> None:
    app.add_typer(receipt_app, name="receipt")
