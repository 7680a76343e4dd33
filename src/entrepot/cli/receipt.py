"""`entrepot receipt`: check a signed receipt offline (and against the server, logged in)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from entrepot.cli._common import Home, Json, console, emit, esc, open_node, settings
from entrepot.cli.audit import NodeKey
from entrepot.client import current
from entrepot.errors import NotFound
from entrepot.transparency import read_verify_key, verify_receipt
from entrepot.transparency.notes import parse_vkey, witness_verifier
from entrepot.transparency.remote import verify_served_receipt

receipt_app = typer.Typer(help="Signed receipts that come with every answer.", no_args_is_help=True)


@receipt_app.command("verify")
def verify(
    path: Annotated[Path, typer.Argument(help="The receipt JSON file.")],
    node_key: NodeKey = None,
    peer: Annotated[
        str | None,
        typer.Option(
            "--peer",
            help="Verify with the key of this trusted peer, for a receipt another node signed "
            "(read from the local node; no network).",
        ),
    ] = None,
    witness: Annotated[
        list[str] | None,
        typer.Option(
            "--witness",
            help="A witness's verifier key (name+id+key, from its `entrepot node id`) whose "
            "cosignature of the receipt's checkpoint to check; repeat for several. With "
            "--peer, this node and every peer are witnesses already.",
        ),
    ] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Verify a receipt with the node's public key only: no server, no network.

    Logged in, the key defaults to the one the server's signed head names, and the
    server's latest head is checked to extend the head in the receipt (the answer's
    log entry is still in the log). A receipt's opening, when present, must open its
    query commitment; drop it from the file to show the receipt without the query.

    Example: entrepot receipt verify receipt.json --node-key node.pub
    """
    if not path.is_file():
        raise NotFound(f"no receipt at {path}", hint="pass the receipt file the answer came with")
    client = current()
    server: dict[str, Any] | None = None
    witnesses = {v.name: v for v in map(parse_vkey, witness or [])}
    nodes: dict[str, str] = {}
    if peer is not None:
        from entrepot.exchange import Exchange
        from entrepot.federation.envelope import parse_key
        from entrepot.federation.peers import identity_of

        with open_node(home) as node:
            exchange = Exchange(node)
            key = parse_key(exchange.peers.get(peer).public_key)
            known = [(identity_of(node).name, bytes(node.verify_key))] + [
                (p["name"], bytes.fromhex(p["key"])) for p in exchange.peers.list()
            ]
        for name, public in known:
            verifier = witness_verifier(public)
            witnesses[verifier.name], nodes[verifier.name] = verifier, name
        receipt = verify_receipt(path.read_bytes(), key, tuple(witnesses.values()))
    elif client is None:
        key = read_verify_key(node_key, settings(home).home / "keys" / "node.pub")
        receipt = verify_receipt(path.read_bytes(), key, tuple(witnesses.values()))
    else:
        with client:
            given = None if node_key is None else read_verify_key(node_key, Path(node_key))
            receipt, extends = verify_served_receipt(path.read_bytes(), client, given)
            server = {"url": client.url, **extends}
    cosigned = [
        {"witness": name, "node": nodes.get(name), "time": time}
        for name, time in sorted(receipt.cosigners.items())
    ]
    data: dict[str, Any] = {
        "ok": True,
        "statement": receipt.statement,
        "query_text": None if receipt.opening is None else receipt.opening.text,
        "log_index": receipt.index,
        "head": receipt.head.to_json(),
        "cosigned_by": cosigned,
    }
    if server is not None:
        data["server"] = server
    statement = receipt.statement

    def render() -> None:
        console.print(
            f"[green]valid[/] {esc(statement['kind'])} receipt: ε {esc(statement['epsilon'])}, "
            f"answer commitment {esc(statement['answer_commitment'])}\n"
            + (
                "no opening: the query stays sealed\n"
                if receipt.opening is None
                else f"query (opens its commitment): {esc(receipt.opening.text)}\n"
            )
            + f"logged as entry {receipt.index} under the head of size {receipt.head.size} "
            f"signed {esc(receipt.head.time)}",
            highlight=False,
        )
        for each in cosigned:
            console.print(
                f"[green]cosigned[/] by {esc(each['node'] or each['witness'])}: it saw this log "
                "extend the receipt's head, with no other history",
                highlight=False,
            )
        if server is not None:
            console.print(
                f"[green]still logged[/]: {esc(server['url'])}'s head of size {server['size2']} "
                f"extends the receipt's head of size {server['size1']}",
                highlight=False,
            )

    emit(data, as_json, render)


def register(app: typer.Typer) -> None:
    app.add_typer(receipt_app, name="receipt")
