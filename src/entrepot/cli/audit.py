"""`entrepot audit`: read, prove and verify the node's transparency log."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from entrepot.cli._common import Home, Json, console, emit, open_node, settings, table
from entrepot.transparency import read_head, read_verify_key, repair_log, verify_export

audit_app = typer.Typer(
    help="The transparency log: who asked what, when and why; heads, proofs, verification.",
    no_args_is_help=True,
)

NodeKey = Annotated[
    str | None,
    typer.Option(
        "--node-key",
        help="The node's public key: its node.pub file or 64 hex digits "
        "[default: <home>/keys/node.pub].",
        show_default=False,
    ),
]


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
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show the last N.")] = 100,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Who did what, when, for which purpose, spending how much ε.

    Example: entrepot audit log --dataset riverside-hospitals/outpatient-visits --kind query
    """
    with open_node(home) as node:
        found = node.log.search(dataset=dataset, kind=kind, since=since, limit=limit)
    data = [{"index": index, **entry} for index, entry in found]
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
    new: Annotated[bool, typer.Option("--new", help="Sign a new head now.")] = False,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """The current signed tree head: size, root hash, time, signature.

    Example: entrepot audit head --json > head-2026-01-31.json
    """
    with open_node(home) as node:
        latest = node.log.latest_head()
        signed = node.log.sign_head() if new or latest is None else latest
        data = signed.to_json()
    emit(
        data,
        as_json,
        lambda: console.print(
            f"size {data['size']}\nroot {data['root']}\ntime {data['time']}\n"
            f"key  {data['key']}\nsig  {data['signature']}",
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
    with open_node(home) as node:
        data = node.log.prove(index, size).to_json()
    emit(
        data,
        as_json,
        lambda: console.print(
            f"entry {data['index']} of {data['size']}: {data['entry']}\n"
            f"leaf  {data['leaf_hash']}\nroot  {data['root']}\n"
            + "\n".join(f"  {node}" for node in data["inclusion"]),
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
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Check the log is append-only since an earlier head, or rehash all of it.

    Example: entrepot audit verify --from-head head-2026-01-31.json
    """
    data: dict[str, Any] = {"ok": True}
    with open_node(home) as node:
        if from_head is not None:
            data["consistency"] = node.log.verify_from(read_head(from_head)).to_json()
        if full or from_head is None:
            with _progress("rehashing", not as_json) as progress:
                data["check"] = node.log.check(progress).to_json()

    def render() -> None:
        if "consistency" in data:
            proof = data["consistency"]
            console.print(
                f"[green]append-only[/]: the log of {proof['size2']} entries extends the "
                f"earlier head of {proof['size1']}"
            )
        if "check" in data:
            check = data["check"]
            console.print(
                f"[green]verified[/] {check['entries']:,} entries against {check['heads']} "
                f"signed heads; root {check['root']}"
            )

    emit(data, as_json, render)


@audit_app.command("export")
def export(
    directory: Annotated[Path, typer.Argument(help="Directory to write the copy to.")],
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Copy the log (entries and signed heads) for anyone to verify without the node.

    Example: entrepot audit export ./log-copy
    """
    with open_node(home) as node:
        data = node.log.export(directory)
    emit(
        data,
        as_json,
        lambda: console.print(
            f"exported {data['entries']:,} entries and {data['heads']} heads to {directory}\n"
            f"verify with: entrepot audit verify-export {directory} "
            f"--node-key {directory / 'node.pub'}",
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
            f"heads ({data['unsigned_entries']} entries after the last head)\nroot {data['root']}"
        ),
    )


@audit_app.command("repair")
def repair(home: Home = None, as_json: Json = False) -> None:
    """Move a torn tail (a writer killed mid-append) aside and rebuild derived hashes.

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
