"""`entrepot access`: request, grant, refuse, revoke and export access contracts.

Every command runs against the logged-in server or, logged out, on the local node;
both print the API's request and grant bodies (``/v1/access``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from entrepot.cli._common import As, Home, Json, console, emit, esc, json_text, session, table

access_app = typer.Typer(
    help="Access contracts: consumers request datasets, providers grant or refuse.",
    no_args_is_help=True,
)

# Spelled out here so that `--help` needs no library import (the API's schema lists the same).
_ACTIONS = ("aggregate-query", "private-join", "release-download")
Day = Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="A date, YYYY-MM-DD.")]
Actions = Annotated[
    list[str] | None,
    typer.Option("--action", help=f"Permitted action, repeatable: {', '.join(_ACTIONS)}."),
]


def _request_rows(requests: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            r["id"],
            r["consumer"],
            r["dataset"],
            r["purpose"],
            f"{r['epsilon']:g}",
            r["valid_until"],
            r["state"],
        ]
        for r in requests
    ]


def _grant_rows(grants: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            g["id"],
            g["consumer"],
            g["dataset"],
            g["purpose"],
            f"{g['epsilon']:g}",
            g["max_queries"] or "",
            g["valid_until"],
            g["state"],
        ]
        for g in grants
    ]


def _print_contract(data: dict[str, Any]) -> None:
    for key, value in data.items():
        if key != "history":
            console.print(f"[bold]{key:>17}[/] {esc(value)}", highlight=False)
    console.print(
        table(
            "History",
            ["when", "subject", "from", "to", "by", "reason"],
            [
                [t["at"], t["subject"], t["from"], t["to"], t["actor"], t["reason"]]
                for t in data["history"]
            ],
        )
    )


@access_app.command("request")
def request(
    dataset: Annotated[str, typer.Argument(help="provider/dataset, e.g. riverside-hospitals/x.")],
    purpose: Annotated[str, typer.Option("--purpose", help="A purpose from `access purposes`.")],
    epsilon: Annotated[float, typer.Option("--epsilon", help="The ε budget asked for.")],
    until: Day,
    since: Annotated[
        datetime | None,
        typer.Option(
            "--from", formats=["%Y-%m-%d"], help="Start of the period \\[default: today]."
        ),
    ] = None,
    action: Actions = None,
    note: Annotated[str, typer.Option("--note", help="A word to the provider.")] = "",
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Ask a dataset's provider for access for a purpose, an ε budget and a period.

    Example: entrepot access request riverside-hospitals/outpatient-visits
    --as city-health-bureau --purpose public-health-surveillance --epsilon 3 --until 2026-12-31
    """
    actions = list(action or ("aggregate-query",))

    with session(home, as_) as client:
        data = client.request_access(
            dataset,
            purpose=purpose,
            epsilon=epsilon,
            until=until.date(),
            since=since.date() if since else None,
            actions=actions,
            note=note,
        )
    emit(
        data,
        as_json,
        lambda: console.print(
            f"[green]requested[/] {esc(data['id'])}: {esc(dataset)} for {esc(purpose)}"
        ),
    )


@access_app.command("list")
def list_(
    pending: Annotated[
        bool, typer.Option("--pending", help="Only requests waiting for a decision.")
    ] = False,
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """List the requests and grants you may see (a provider's inbox with --pending).

    Example: entrepot access list --pending --as riverside-hospitals
    """

    with session(home, as_) as client:
        data = {
            "requests": client.access_requests(pending=pending),
            "grants": [] if pending else client.access_grants(),
            "remote": [] if pending else client.access_remote(),
        }

    def render() -> None:
        head = ["id", "consumer", "dataset", "purpose", "ε", "until", "state"]
        console.print(table("Access requests", head, _request_rows(data["requests"])))
        if not pending:
            head = [*head[:5], "max queries", *head[5:]]
            console.print(table("Grants", head, _grant_rows(data["grants"])))
        if data["remote"]:
            head = ["node:id", "dataset", "purpose", "ε", "until", "state", "read"]
            rows = [
                [
                    f"{c['node']}:{c['id']}",
                    f"{c['node']}:{c['dataset']}",
                    c["purpose"],
                    f"{c['epsilon']:g}",
                    c["valid_until"],
                    c["state"],
                    "now" if c["fresh"] else f"last copy, {c['refreshed_at'][:16]}",
                ]
                for c in data["remote"]
            ]
            console.print(table("On other nodes (read-only copies)", head, rows))

    emit(data, as_json, render)


@access_app.command("grant")
def grant(
    request_id: Annotated[str, typer.Argument(help="The request, e.g. REQ-7.")],
    epsilon: Annotated[
        float | None, typer.Option("--epsilon", help="ε budget \\[default: as requested].")
    ] = None,
    max_queries: Annotated[
        int | None, typer.Option("--max-queries", help="Most uses allowed \\[default: no limit].")
    ] = None,
    price_per_query: Annotated[
        str, typer.Option("--price-per-query", help="Price of each use.")
    ] = "0",
    price_per_epsilon: Annotated[
        str, typer.Option("--price-per-epsilon", help="Price of each ε spent.")
    ] = "0",
    until: Annotated[
        datetime | None,
        typer.Option("--until", formats=["%Y-%m-%d"], help="End \\[default: as requested]."),
    ] = None,
    action: Actions = None,
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Grant a pending request; its budget opens in the ledger at once.

    Example: entrepot access grant REQ-7 --epsilon 2 --max-queries 100 --price-per-epsilon 50
    """

    with session(home, as_) as client:
        data = client.grant_access(
            request_id,
            epsilon=epsilon,
            max_queries=max_queries,
            price_per_query=price_per_query,
            price_per_epsilon=price_per_epsilon,
            actions=action or None,
            until=until.date() if until else None,
        )
    emit(
        data,
        as_json,
        lambda: console.print(
            f"[green]granted[/] {esc(data['id'])} to {esc(data['consumer'])}: "
            f"{data['epsilon']:g} ε on {esc(data['dataset'])} until {esc(data['valid_until'])}"
        ),
    )


@access_app.command("refuse")
def refuse(
    request_id: Annotated[str, typer.Argument(help="The request, e.g. REQ-7.")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the consumer.")] = "",
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Refuse a pending request.

    Example: entrepot access refuse REQ-7 --reason "purpose outside our mandate"
    """
    with session(home, as_) as client:
        data = client.refuse_access(request_id, reason)
    emit(data, as_json, lambda: console.print(f"[yellow]refused[/] {esc(data['id'])}"))


@access_app.command("revoke")
def revoke(
    grant_id: Annotated[str, typer.Argument(help="The grant, e.g. GRANT-3.")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the consumer.")] = "",
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Revoke a grant now; no further query can spend its budget.

    Example: entrepot access revoke GRANT-3 --reason "contract ended"
    """
    with session(home, as_) as client:
        data = client.revoke_grant(grant_id, reason)
    emit(data, as_json, lambda: console.print(f"[yellow]revoked[/] {esc(data['id'])}"))


@access_app.command("show")
def show(
    ident: Annotated[str, typer.Argument(help="REQ-n or GRANT-n.")],
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Show a request or a grant with every state change: who, when, why.

    Example: entrepot access show GRANT-3 --as city-health-bureau
    """

    with session(home, as_) as client:
        data = client.access_show(ident)
    emit(data, as_json, lambda: _print_contract(data))


@access_app.command("export-odrl")
def export_odrl(
    grant_id: Annotated[str, typer.Argument(help="The grant, e.g. GRANT-3.")],
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="Where the node is reached, which names the agreement and its targets "
            "\\[default: http://HOST:PORT/, or the server's URL when logged in].",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file \\[default: stdout].")
    ] = None,
    as_: As = None,
    home: Home = None,
) -> None:
    """Export a grant as an ODRL 2.2 Agreement (JSON-LD).

    Example: entrepot access export-odrl GRANT-3 -o grant-3.jsonld
    """
    with session(home, as_) as client:
        document = client.grant_odrl(grant_id, base_url)
    text = json_text(document) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"[green]wrote[/] {esc(output)}")


@access_app.command("purposes")
def list_purposes(as_: As = None, home: Home = None, as_json: Json = False) -> None:
    """List the purposes a request may name (a grant covers narrower purposes too).

    Example: entrepot access purposes --json
    """

    with session(home, as_) as client:
        known = sorted(client.purposes(), key=lambda p: p["id"])
    emit(
        known,
        as_json,
        lambda: console.print(
            table(
                "Purposes",
                ["id", "broader", "label"],
                [[p["id"], p["broader"], p["label"]] for p in known],
            )
        ),
    )


def register(app: typer.Typer) -> None:
    app.add_typer(access_app, name="access")
