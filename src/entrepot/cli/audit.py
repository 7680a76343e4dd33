"""`entrepot audit`: read, prove and verify the node's transparency log.

Logged in, the log is read from the server, and verification happens here: the
client fetches heads, proofs or every entry and checks them with the node's public
key (:mod:`entrepot.transparency.remote`), trusting nothing the server computed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from entrepot.cli._common import (
    Home,
    Json,
    console,
    emit,
    esc,
    is_local,
    open_node,
    session,
    settings,
    table,
)
from entrepot.errors import NotFound

__all__ = ["NodeKey", "register"]

audit_app = typer.Typer(
    help="The transparency log: who asked what, when and why; heads, proofs, verification.",
    no_args_is_help=True,
)

NodeKey = Annotated[
    str | None,
    typer.Option(
        "--node-key",
        help="The node's public key: its node.pub file or 64 hex digits "
        "\\[default: <home>/keys/node.pub; logged in: the server's].",
        show_default=False,
    ),
]


@contextmanager
def _progress(label: str, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    """A live count of entries verified (none for --json)."""
    if not enabled:
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True
    ) as bar:
        task = bar.add_task(label)
        yield lambda done: bar.update(task, description=f"{label}: {done:,} entries")


def _what(entry: dict[str, Any]) -> str:
    detail = entry.get("action") or entry.get("outcome")
    return f"{entry.get('kind')} {detail}" if detail else str(entry.get("kind"))


@audit_app.command("log")
def log_entries(
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Only entries about this dataset.")
    ] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only entries of this kind.")] = None,
    since: Annotated[
        datetime | None, typer.Option("--since", help="Only entries from this UTC time on.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=1000, help="Show the last N (at most 1000).")
    ] = 100,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Who did what, when, for which purpose, spending how much ε.

    Example: entrepot audit log --dataset riverside-hospitals/outpatient-visits --kind query
    """
    from entrepot.transparency.entries import entry_datasets

    with session(home) as client:
        found = client.audit_entries(dataset=dataset, kind=kind, since=since, limit=limit)
    data = [{"index": item["index"], **item["entry"]} for item in found]
    rows = [
        [
            d["index"],
            d.get("time"),
            d.get("actor"),
            _what(d),
            ", ".join(entry_datasets(d)),
            d.get("purpose"),
            d.get("epsilon"),
        ]
        for d in data
    ]
    columns = ["#", "when", "who", "what", "dataset", "purpose", "ε"]
    emit(data, as_json, lambda: console.print(table("Transparency log", columns, rows)))


@audit_app.command("head")
def head(
    new: Annotated[
        bool, typer.Option("--new", help="Sign a new head now (logged in: auditor or operator).")
    ] = False,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """The current signed tree head: size, root hash, time, signature.

    Example: entrepot audit head --json > head-2026-01-31.json
    """

    with session(home) as client:
        if new:
            data = client.audit_sign_head()
        else:
            try:
                data = client.audit_head()
            except NotFound:
                # The node's own holder signs a first head rather than show none.
                if not is_local(client):
                    raise
                data = client.audit_sign_head()
    emit(
        data,
        as_json,
        lambda: console.print(
            f"size {esc(data['size'])}\nroot {esc(data['root'])}\ntime {esc(data['time'])}\n"
            f"key  {esc(data['key'])}\nsig  {esc(data['signature'])}",
            highlight=False,
        ),
    )


@audit_app.command("prove")
def prove(
    index: Annotated[int, typer.Argument(help="The entry's index in the log.", min=0)],
    size: Annotated[
        int | None, typer.Option("--size", help="Prove against this tree size.", min=1)
    ] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Inclusion proof of one entry (RFC 9162), to the latest signed head by default.

    Example: entrepot audit prove 1234 --json > proof-1234.json
    """
    with session(home) as client:
        data = client.audit_inclusion(index, size)
    emit(
        data,
        as_json,
        lambda: console.print(
            f"entry {esc(data['index'])} of {esc(data['size'])}: {esc(data['entry'])}\n"
            f"leaf  {esc(data['leaf_hash'])}\nroot  {esc(data['root'])}\n"
            + "\n".join(f"  {esc(node)}" for node in data["inclusion"]),
            highlight=False,
        ),
    )


@audit_app.command("verify")
def verify(
    from_head: Annotated[
        Path | None,
        typer.Option("--from-head", help="A head saved earlier: prove the log still extends it."),
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Also rehash every entry and check every head.")
    ] = False,
    node_key: NodeKey = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Check the log is append-only since an earlier head, or rehash all of it.

    Rehashing also checks tree.bin and compares node.db with the log: every version,
    grant change, account change and policy has its entry, every ε spent its query
    entry and its use. What only a head saved elsewhere can show is printed too.

    Logged in, the heads, proofs and entries are fetched and checked here, with
    --node-key, else the key of the earlier head, else the key the server's heads
    name (printed: compare it with one you trust). --full needs an auditor or
    operator account.

    Example: entrepot audit verify --from-head head-2026-01-31.json
    """
    # The log's verifier and the signing library load with the commands that use them.
    from entrepot.transparency import read_head

    earlier = None if from_head is None else read_head(from_head)

    with session(home) as client, _progress("rehashing", not as_json) as progress:
        result = client.audit_verify(earlier, full=full, node_key=node_key, progress=progress)

    def render() -> None:
        if "consistency" in result:
            proof = result["consistency"]
            console.print(
                f"[green]append-only[/]: the log of {proof['size2']} entries extends the "
                f"earlier head of {proof['size1']}"
            )
        if "check" in result:
            check = result["check"]
            console.print(
                f"[green]verified[/] {check['entries']:,} entries against {check['heads']} "
                f"signed heads; root {esc(check['root'])}"
            )
        if "database" in result:
            checked = ", ".join(f"{n} {what}" for what, n in result["database"]["checked"].items())
            console.print(f"[green]agrees[/] with node.db: {esc(checked)}")
            console.print(f"[yellow]not provable here[/]: {esc(result['needs_witness'])}")
        console.print(f"node key {esc(result['key'])}", highlight=False)

    emit(result, as_json, render)


@audit_app.command("export")
def export(
    directory: Annotated[Path, typer.Argument(help="Directory to write the copy to.")],
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Copy the log (entries and signed heads) for anyone to verify without the node.

    Logged in, the copy is downloaded from the server (auditor or operator account).

    Example: entrepot audit export ./log-copy
    """

    with session(home) as client:
        data = client.audit_export(directory)
    emit(
        data,
        as_json,
        lambda: console.print(
            f"exported {data['entries']:,} entries and {data['heads']} heads to "
            f"{esc(directory)}\nverify with: entrepot audit verify-export {esc(directory)} "
            f"--node-key {esc(directory / 'node.pub')}",
            highlight=False,
        ),
    )


@audit_app.command("verify-export")
def verify_export_cmd(
    directory: Annotated[Path, typer.Argument(help="A directory made by `audit export`.")],
    node_key: NodeKey = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Verify an exported log offline: every entry rehashed, every head's signature checked.

    Needs no node and no server, logged in or not.

    Example: entrepot audit verify-export ./log-copy --node-key node.pub
    """
    from entrepot.transparency import read_verify_key, verify_export

    key = read_verify_key(node_key, settings(home).home / "keys" / "node.pub")
    with _progress("verifying", not as_json) as progress:
        data = verify_export(directory, key, progress).to_json()
    emit(
        data,
        as_json,
        lambda: console.print(
            f"[green]verified[/] {data['entries']:,} entries against {data['heads']} signed "
            f"heads ({data['unsigned_entries']} entries after the last head)\n"
            f"root {esc(data['root'])}"
        ),
    )


@audit_app.command("repair")
def repair(home: Home = None, as_json: Json = False) -> None:
    """Move a torn tail (a writer killed mid-append) aside and rebuild derived hashes.

    Runs on the machine holding the node's log, also when logged in to a server.

    Example: entrepot audit repair --home ./exchange
    """
    from entrepot.transparency import repair_log

    with open_node(home) as node:
        data = repair_log(node.path("log"))
    emit(
        data,
        as_json,
        lambda: console.print(
            f"repaired: {data['torn_bytes']} torn bytes moved to log/torn/, "
            f"{data['adopted']} whole entries adopted, {data['rehashed']} leaves rehashed"
        ),
    )


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
