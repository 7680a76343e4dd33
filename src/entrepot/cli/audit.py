"""`entrepot audit`: read, prove and verify the node's transparency log.

Logged in, the log is read from the server, and verification happens here: the
client fetches heads, proofs or every entry and checks them with the node's public
key, trusting nothing the server computed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from nacl.signing import VerifyKey
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from entrepot.cli._common import (
    Home,
    Json,
    console,
    dispatch,
    emit,
    esc,
    open_node,
    settings,
    table,
)
from entrepot.errors import NotFound, ProofInvalid
from entrepot.transparency import (
    TreeHead,
    load_verify_key,
    read_head,
    read_verify_key,
    repair_log,
    verify_entries,
    verify_export,
    verify_head,
)
from entrepot.transparency.canonical import parse_hash
from entrepot.transparency.merkle import verify_consistency

if TYPE_CHECKING:
    from entrepot.api.client import Client
    from entrepot.exchange import Exchange
    from entrepot.exchange.accounts import Actor

__all__ = ["NodeKey", "register", "server_extends"]

audit_app = typer.Typer(
    help="The transparency log: who asked what, when and why; heads, proofs, verification.",
    no_args_is_help=True,
)

NodeKey = Annotated[
    str | None,
    typer.Option(
        "--node-key",
        help="The node's public key: its node.pub file or 64 hex digits "
        "[default: <home>/keys/node.pub; logged in: the server's].",
        show_default=False,
    ),
]

_README = (
    "A copy of an entrepot transparency log: entries.jsonl (one canonical JSON entry\n"
    "per line, in log order), heads.jsonl (the node's signed tree heads), node.pub.\n"
    "Verify it without the node (compare node.pub with a key you trust):\n\n"
    "    entrepot audit verify-export . --node-key node.pub\n"
)


@contextmanager
def _progress(label: str, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    """A live count of entries verified (none for --json)."""
    if not enabled:
        yield None
        return
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True
    ) as bar:
        task = bar.add_task(label)
        yield lambda done: bar.update(task, description=f"{label}: {done:,} entries")


def _remote_heads(client: Client) -> list[TreeHead]:
    return [
        TreeHead.from_bytes(line, what=f"tree head #{position}")
        for position, line in enumerate(client.lines("/v1/audit/export/heads"))
    ]


def _server_head(client: Client) -> TreeHead:
    return TreeHead.from_json(client.get("/v1/audit/head"), what="the server's tree head")


def server_extends(client: Client, earlier: TreeHead, key: VerifyKey) -> dict[str, Any]:
    """Check on this side that the server's latest signed head extends ``earlier``.

    Both heads must carry ``key``'s signature and the consistency proof must lead
    from one root to the other; nothing the server says is taken on trust.
    """
    verify_head(earlier, key, what="earlier tree head")
    latest = _server_head(client)
    verify_head(latest, key, what="the server's tree head")
    if latest.size < earlier.size:
        raise ProofInvalid(
            f"the server's latest head covers {latest.size} entries, fewer than the "
            f"{earlier.size} of the earlier head: entries were removed",
            hint="this log is not append-only; keep the earlier head as evidence",
            part="consistency proof",
        )
    path: list[bytes] = []
    if 0 < earlier.size < latest.size:
        proof = client.get("/v1/audit/proofs/consistency", size1=earlier.size, size2=latest.size)
        path = [
            parse_hash(node, what=f"consistency proof[{position}]")
            for position, node in enumerate(proof["consistency"])
        ]
    if earlier.size > 0:
        verify_consistency(earlier.size, latest.size, path, earlier.root, latest.root)
    return {
        "size1": earlier.size,
        "size2": latest.size,
        "root1": earlier.root.hex(),
        "root2": latest.root.hex(),
        "consistency": [node.hex() for node in path],
    }


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

    def local(exchange: Exchange, _actor: Actor) -> list[dict[str, Any]]:
        found = exchange.node.log.search(dataset=dataset, kind=kind, since=since, limit=limit)
        return [{"index": index, **entry} for index, entry in found]

    def remote(client: Client) -> list[dict[str, Any]]:
        found = client.get(
            "/v1/audit/entries",
            dataset=dataset,
            kind=kind,
            since=None if since is None else since.isoformat(),
            limit=limit,
        )
        return [{"index": item["index"], **item["entry"]} for item in found]

    data = dispatch(home, None, local=local, remote=remote)
    rows = [
        [
            d["index"],
            d.get("time"),
            d.get("actor"),
            _what(d),
            d.get("dataset") or ", ".join(p.get("dataset", "") for p in d.get("datasets", [])),
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

    def local(exchange: Exchange, _actor: Actor) -> dict[str, Any]:
        latest = exchange.node.log.latest_head()
        signed = exchange.node.log.sign_head() if new or latest is None else latest
        return signed.to_json()

    def remote(client: Client) -> dict[str, Any]:
        signed: dict[str, Any] = (
            client.post("/v1/audit/heads") if new else client.get("/v1/audit/head")
        )
        return signed

    data = dispatch(home, None, local=local, remote=remote)
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
    data: dict[str, Any] = dispatch(
        home,
        None,
        local=lambda exchange, _actor: exchange.node.log.prove(index, size).to_json(),
        remote=lambda client: client.get(f"/v1/audit/proofs/inclusion/{index}", size=size),
    )
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


def _trusted_key(node_key: str | None, fallback: TreeHead | None) -> VerifyKey:
    """--node-key, else the key a head the user holds (or the server's first) names."""
    if node_key is not None:
        return read_verify_key(node_key, Path(node_key))
    if fallback is None:
        raise NotFound(
            "the server has no signed head to take the node key from",
            hint="pass --node-key with the node's public key, or ask an auditor to sign a head",
        )
    return load_verify_key(fallback.key.hex(), where="tree head")


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
    earlier = None if from_head is None else read_head(from_head)

    def local(exchange: Exchange, _actor: Actor) -> dict[str, Any]:
        from entrepot.exchange.reconcile import WITNESS_NOTE

        key = bytes(exchange.node.log.verify_key)
        if node_key is not None and bytes(read_verify_key(node_key, Path(node_key))) != key:
            raise ProofInvalid(
                f"this node signs its log with key {key.hex()}, not the --node-key given",
                hint="the home is not the node you meant, or its key was replaced: "
                "compare the key with one you trust",
                part="node key",
            )
        data: dict[str, Any] = {"ok": True, "key": key.hex()}
        if earlier is not None:
            data["consistency"] = exchange.node.log.verify_from(earlier).to_json()
        if full or earlier is None:
            with _progress("rehashing", not as_json) as progress:
                data["check"] = exchange.node.log.check(progress).to_json()
            found = exchange.reconcile()
            found.raise_for_differences()
            data["database"] = found.to_json()
            data["needs_witness"] = WITNESS_NOTE
        return data

    def remote(client: Client) -> dict[str, Any]:
        from entrepot.exchange.reconcile import WITNESS_NOTE, Reconciliation

        heads = _remote_heads(client) if full or earlier is None else []
        key = _trusted_key(node_key, earlier or (heads[0] if heads else None))
        data: dict[str, Any] = {"ok": True, "key": bytes(key).hex()}
        if earlier is not None:
            data["consistency"] = server_extends(client, earlier, key)
        if full or earlier is None:
            # Heads first: every entry they cover is then in the stream that follows.
            with _progress("rehashing", not as_json) as progress:
                records = client.lines("/v1/audit/export/entries")
                data["check"] = verify_entries(records, heads, key, progress).to_json()
            # The server compares its own database with its own log: reported, not proved.
            found = Reconciliation.from_json(client.get("/v1/audit/reconciliation"))
            found.raise_for_differences()
            data["database"] = found.to_json()
            data["needs_witness"] = WITNESS_NOTE
        return data

    result = dispatch(home, None, local=local, remote=remote)

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

    def remote(client: Client) -> dict[str, Any]:
        directory.mkdir(parents=True, exist_ok=True)
        heads = list(client.lines("/v1/audit/export/heads"))
        entries = 0
        with (directory / "entries.jsonl").open("wb") as out:
            for line in client.lines("/v1/audit/export/entries"):
                out.write(line + b"\n")
                entries += 1
        (directory / "heads.jsonl").write_bytes(b"".join(line + b"\n" for line in heads))
        if heads:
            key = TreeHead.from_bytes(heads[-1], what="the server's latest head").key
            (directory / "node.pub").write_text(key.hex() + "\n")
        (directory / "README.txt").write_text(_README)
        return {"directory": str(directory), "entries": entries, "heads": len(heads)}

    data = dispatch(
        home,
        None,
        local=lambda ex, _actor: ex.node.log.export(directory),
        remote=remote,
    )
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
