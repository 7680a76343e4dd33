"""`entrepot receipt`: check a signed receipt offline (and against the server, logged in),
and put in it the checkpoint its node's peers cosigned."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from entrepot.cli._common import Home, Json, console, emit, esc, open_node, settings
from entrepot.cli.audit import NodeKey
from entrepot.client import current
from entrepot.errors import InvalidInput, NotFound
from entrepot.transparency import read_verify_key, verify_receipt
from entrepot.transparency.notes import NoteVerifier, parse_vkey, witness_verifier
from entrepot.transparency.remote import verify_served_receipt

if TYPE_CHECKING:
    from entrepot.exchange import Exchange

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

        with open_node(home) as node:
            exchange = Exchange(node)
            key = parse_key(exchange.peers.get(peer).public_key)
            nodes = _witnesses(exchange, witnesses)
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


def _witnesses(exchange: Exchange, witnesses: dict[str, NoteVerifier]) -> dict[str, str]:
    """Add this node and its peers to ``witnesses``; each one's node name, by key name."""
    from entrepot.federation.peers import identity_of

    nodes: dict[str, str] = {}
    known = [(identity_of(exchange.node).name, bytes(exchange.node.verify_key))] + [
        (p["name"], bytes.fromhex(p["key"])) for p in exchange.peers.list()
    ]
    for name, public in known:
        verifier = witness_verifier(public)
        witnesses[verifier.name], nodes[verifier.name] = verifier, name
    return nodes


@receipt_app.command("witness")
def witness_receipt(
    path: Annotated[Path, typer.Argument(help="The receipt JSON file; rewritten in place.")],
    peer: Annotated[
        str | None,
        typer.Option(
            "--peer",
            help="The trusted peer that signed the receipt (asked for its cosigned "
            "checkpoint); without it, a receipt this node signed.",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the receipt here instead.")
    ] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Put in a receipt the latest checkpoint its node's peers cosigned.

    An answer comes with its node's checkpoint signed by that node alone; its peers
    cosign it moments later, in the background. This asks the node for the latest
    checkpoint they cosigned, with a proof that it extends the receipt's head, checks
    the whole receipt as `receipt verify --peer` does and writes it.

    Example: entrepot receipt witness receipt.json --peer a
    """
    import json

    from entrepot.cli.query import write_receipt
    from entrepot.exchange import Exchange
    from entrepot.federation.envelope import parse_key
    from entrepot.federation.witness import upgraded_receipt

    if not path.is_file():
        raise NotFound(f"no receipt at {path}", hint="pass the receipt file the answer came with")
    try:
        body = json.loads(path.read_bytes())
    except (ValueError, RecursionError):
        raise InvalidInput(f"{path} is not JSON", hint="pass the receipt file") from None
    if not isinstance(body, dict):
        raise InvalidInput(f"{path} is not a receipt", hint="pass the receipt file")
    witnesses: dict[str, NoteVerifier] = {}
    with open_node(home) as node:
        exchange = Exchange(node)
        key = node.verify_key if peer is None else parse_key(exchange.peers.get(peer).public_key)
        nodes = _witnesses(exchange, witnesses)
        upgraded = upgraded_receipt(exchange, body, peer)
    receipt = verify_receipt(upgraded, key, tuple(witnesses.values()))
    target = out or path
    write_receipt({"receipt": upgraded}, target)
    cosigned = [
        {"witness": name, "node": nodes.get(name), "time": time}
        for name, time in sorted(receipt.cosigners.items())
    ]
    data = {"ok": True, "path": str(target), "cosigned_by": cosigned}

    def render() -> None:
        names = ", ".join(esc(each["node"] or each["witness"]) for each in cosigned)
        console.print(
            f"[green]witnessed[/] {esc(str(target))}: cosigned by {names or 'no peer yet'}",
            highlight=False,
        )

    emit(data, as_json, render)


def register(app: typer.Typer) -> None:
    app.add_typer(receipt_app, name="receipt")
