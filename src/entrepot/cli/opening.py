"""`entrepot opening`: open a commitment of the public log, and check an opening offline.

The log and receipts name queries and dataset versions by commitments a guess cannot
confirm. Their openings go to those entitled to them (the organization that asked,
auditors and operators for a query; the dataset's provider for a version), who may
hand them to anyone; `opening verify` checks one with no node and no network.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from entrepot.cli._common import As, Home, Json, console, emit, esc, session, settings
from entrepot.errors import InvalidInput, NotFound
from entrepot.transparency import parse_opening, read_verify_key, verify_opening, verify_receipt
from entrepot.transparency.canonical import parse_canonical

__all__ = ["register"]

opening_app = typer.Typer(
    help="Open the commitments the public log shows; check an opening offline.",
    no_args_is_help=True,
)

Out = Annotated[
    Path | None,
    typer.Option("--out", help="Also write the opening to this file (JSON).", show_default=False),
]


def _write(data: dict[str, Any], out: Path | None) -> None:
    if out is not None:
        out.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


@opening_app.command("query")
def query(
    index: Annotated[int, typer.Argument(min=0, help="The query's log entry index.")],
    out: Out = None,
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """The text and nonce behind a query entry's commitment.

    For the organization that asked, an auditor or an operator.

    Example: entrepot opening query 1234 --out opening.json
    """

    with session(home, as_) as client:
        data = client.query_opening(index)
    _write(data, out)
    emit(
        data,
        as_json,
        lambda: console.print(
            f"entry {index} asked: {esc(data['query_text'])}\nnonce {esc(data['nonce'])}",
            highlight=False,
        ),
    )


@opening_app.command("version")
def version(
    dataset: Annotated[str, typer.Argument(help="provider/dataset")],
    number: Annotated[int, typer.Argument(min=1, help="The version number.")],
    out: Out = None,
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """The file hash and key behind a version's content commitment (its provider only).

    Give it to an auditor: with the version's file it proves which data answers used.

    Example: entrepot opening version riverside-hospitals/outpatient-visits 3 --out v3.json
    """

    with session(home, as_) as client:
        data = client.version_opening(dataset, number)
    _write(data, out)
    emit(
        data,
        as_json,
        lambda: console.print(
            f"{esc(data['dataset'])} version {esc(data['version'])}: "
            f"sha256 {esc(data['content_sha256'])}\nkey {esc(data['key'])}",
            highlight=False,
        ),
    )


@opening_app.command("verify")
def verify(
    opening: Annotated[Path, typer.Argument(help="The opening JSON file.")],
    receipt: Annotated[
        Path | None,
        typer.Option("--receipt", help="Check against this receipt (verified with --node-key)."),
    ] = None,
    entry: Annotated[
        Path | None,
        typer.Option(
            "--entry",
            help="Check against this log entry: its JSON, or `audit prove --json` output.",
        ),
    ] = None,
    node_key: Annotated[
        str | None,
        typer.Option(
            "--node-key",
            help="The node's public key (node.pub or 64 hex digits), for --receipt "
            "\\[default: <home>/keys/node.pub].",
            show_default=False,
        ),
    ] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Check offline that an opening opens a receipt's or a log entry's commitment.

    Example: entrepot opening verify opening.json --receipt receipt.json --node-key node.pub
    """
    if (receipt is None) == (entry is None):
        raise InvalidInput(
            "give exactly one of --receipt and --entry",
            hint="the opening is checked against a receipt or a log entry",
        )
    target = receipt if receipt is not None else entry
    assert target is not None
    for path in (opening, target):
        if not path.is_file():
            raise NotFound(f"no file at {path}", hint="pass the JSON file the node gave you")
    parsed = parse_opening(opening.read_bytes())
    if receipt is not None:
        key = read_verify_key(node_key, settings(home).home / "keys" / "node.pub")
        against = verify_receipt(receipt.read_bytes(), key).statement
    else:
        against = _entry(target.read_bytes())
    commitment = verify_opening(parsed, against)
    shown = parsed.to_json()
    data = {"ok": True, "opening": shown, "commitment": commitment}
    emit(
        data,
        as_json,
        lambda: console.print(
            f"[green]opens[/] the {shown['kind']} commitment {esc(commitment)}",
            highlight=False,
        ),
    )


def _entry(data: bytes) -> dict[str, Any]:
    """A log entry from its JSON, or from output that holds it under "entry"."""
    try:
        body = json.loads(data)
    except ValueError as error:
        raise InvalidInput(
            f"the entry file is not JSON ({error})",
            hint="save one with `entrepot audit prove INDEX --json`",
        ) from error
    if isinstance(body, dict) and isinstance(body.get("entry"), str):
        body = parse_canonical(body["entry"].encode("utf-8"), what="log entry")
    elif isinstance(body, dict) and isinstance(body.get("entry"), dict):
        body = body["entry"]
    if not isinstance(body, dict) or "kind" not in body:
        raise InvalidInput(
            "the entry file holds no log entry",
            hint="save one with `entrepot audit prove INDEX --json`",
        )
    return body


def register(app: typer.Typer) -> None:
    app.add_typer(opening_app, name="opening")
