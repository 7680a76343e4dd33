"""`entrepot peer`: the other nodes this one trusts (the operator, at the node's home)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from entrepot.cli._common import Home, Json, console, emit, esc, open_node, table

if TYPE_CHECKING:
    from entrepot.exchange import Exchange

__all__ = ["register"]

peer_app = typer.Typer(
    help="Trust other nodes, list them and pull their catalogs (operators, on the node).",
    no_args_is_help=True,
)


@contextmanager
def _exchange(home: Home) -> Iterator[Exchange]:
    # Peers are the operator's: managed where the node's home and key are, never by token.
    from entrepot.exchange import Exchange

    with open_node(home) as node:
        yield Exchange(node)


@peer_app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="The peer's base URL.")],
    key: Annotated[
        str, typer.Option("--key", help="The peer's public key, from its `entrepot node id`.")
    ],
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Trust the node at URL whose key is KEY; it must prove it holds the key.

    Get both from the peer's operator (`entrepot node id` on the peer), never from
    the peer itself.

    Example: entrepot peer add http://127.0.0.1:8002 --key 3b6a27bc…
    """
    with _exchange(home) as exchange:
        added = exchange.peers.add(url, key)
    emit(
        added,
        as_json,
        lambda: console.print(f"[green]trusted[/] {esc(added['name'])} at {esc(added['url'])}"),
    )


def _render(peers: list[dict[str, Any]]) -> None:
    if not peers:
        console.print("no peers: add one with `entrepot peer add URL --key KEY`")
        return
    rows = [
        [
            p["name"],
            p["url"],
            p["key"][:16] + "…",
            p["last_sync_at"] or "",
            p["status"] if p["health"] == "ok" else f"{p['health']}; {p['status']}",
        ]
        for p in peers
    ]
    console.print(table("Peers", ["name", "url", "key", "last sync", "health"], rows))


@peer_app.command("list")
def list_(home: Home = None, as_json: Json = False) -> None:
    """List the trusted peers: name, URL, key, last catalog pull and how it went.

    Example: entrepot peer list --json
    """
    with _exchange(home) as exchange:
        peers = exchange.peers.list()
    emit(peers, as_json, lambda: _render(peers))


@peer_app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="The peer's name.")],
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Stop trusting a peer; its cached catalog is deleted with it.

    Example: entrepot peer remove node-b
    """
    with _exchange(home) as exchange:
        removed = exchange.peers.remove(name)
    emit(removed, as_json, lambda: console.print(f"[green]removed[/] {esc(removed['name'])}"))


@peer_app.command("sync")
def sync(
    name: Annotated[str | None, typer.Argument(help="One peer \\[default: every peer].")] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Pull the signed catalog feed of a peer (or of every peer) since the last pull.

    Example: entrepot peer sync node-b
    """
    from entrepot.federation.feed import sync as pull
    from entrepot.federation.feed import sync_all

    with _exchange(home) as exchange:
        results = [pull(exchange, name)] if name else sync_all(exchange)
    emit(
        results,
        as_json,
        lambda: _per_peer(results, lambda r: f"{r['updated']} updated, {r['removed']} removed"),
    )


def _per_peer(results: list[dict[str, Any]], done: Callable[[dict[str, Any]], str]) -> None:
    """One line per peer: what ``done`` says of it, or its error in red."""
    console.print(
        "\n".join(
            f"{esc(r['peer'])}: "
            + (f"[red]{esc(r['error']['message'])}[/]" if "error" in r else done(r))
            for r in results
        )
        or "no peers"
    )


@peer_app.command("witness")
def witness(
    name: Annotated[str | None, typer.Argument(help="One peer \\[default: every peer].")] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Fetch a peer's checkpoint (or every peer's), check that it extends the one this node
    cosigned last, and cosign it; a peer that shows two histories is refused and logged.

    Example: entrepot peer witness node-b
    """
    from entrepot.errors import EntrepotError
    from entrepot.federation.witness import Witness

    with _exchange(home) as exchange:
        witness = Witness(exchange)
        names = [name] if name else [p["name"] for p in exchange.peers.list()]
        results: list[dict[str, Any]] = []
        for each in names:
            try:
                results.append(witness.pull(each))
            except EntrepotError as error:
                if name:
                    raise
                results.append({"peer": each, "error": error.to_dict()["error"]})
    emit(
        results,
        as_json,
        lambda: _per_peer(results, lambda r: f"cosigned size {r['size']} (from {r['old']})"),
    )


def register(app: typer.Typer) -> None:
    app.add_typer(peer_app, name="peer")
