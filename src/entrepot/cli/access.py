"""`entrepot access`: request, grant, refuse, revoke and export access contracts."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from entrepot.cli._common import As, Home, Json, acting, console, emit, open_node, table
from entrepot.exchange.contracts import ACTIONS, Contracts, GrantInfo, RequestInfo, purposes

access_app = typer.Typer(
    help="Access contracts: consumers request datasets, providers grant or refuse.",
    no_args_is_help=True,
)

Day = Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="A date, YYYY-MM-DD.")]
Actions = Annotated[
    list[str] | None,
    typer.Option("--action", help=f"Permitted action, repeatable: {', '.join(ACTIONS)}."),
]


def _request_rows(requests: list[RequestInfo]) -> list[list[Any]]:
    return [
        [r.ref, r.consumer, r.dataset, r.purpose, f"{r.epsilon:g}", r.valid_until, r.state]
        for r in requests
    ]


def _grant_rows(grants: list[GrantInfo]) -> list[list[Any]]:
    return [
        [
            g.ref,
            g.consumer,
            g.dataset,
            g.purpose,
            f"{g.epsilon:g}",
            g.max_queries or "",
            g.valid_until,
            g.state,
        ]
        for g in grants
    ]


def _print_contract(info: RequestInfo | GrantInfo) -> None:
    for key, value in info.to_dict().items():
        if key != "history":
            console.print(f"[bold]{key:>17}[/] {value}", highlight=False)
    console.print(
        table(
            "History",
            ["when", "subject", "from", "to", "by", "reason"],
            [[t.at, t.subject, t.from_state, t.to_state, t.actor, t.reason] for t in info.history],
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
        typer.Option("--from", formats=["%Y-%m-%d"], help="Start of the period (default: today)."),
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
    with open_node(home) as node:
        info = Contracts(node.db, node.settings, log=node.log).request(
            acting(node, as_),
            dataset,
            purpose=purpose,
            epsilon=epsilon,
            until=until.date(),
            since=since.date() if since else None,
            actions=tuple(action or ("aggregate-query",)),
            note=note,
        )
    emit(
        info.to_dict(),
        as_json,
        lambda: console.print(f"[green]requested[/] {info.ref}: {dataset} for {purpose}"),
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
    with open_node(home) as node:
        contracts = Contracts(node.db, node.settings)
        actor = acting(node, as_)
        requests = contracts.requests(actor, pending=pending)
        grants = [] if pending else contracts.grants(actor)
    data = {
        "requests": [r.to_dict() for r in requests],
        "grants": [g.to_dict() for g in grants],
    }

    def render() -> None:
        head = ["id", "consumer", "dataset", "purpose", "ε", "until", "state"]
        console.print(table("Access requests", head, _request_rows(requests)))
        if not pending:
            head = [*head[:5], "max queries", *head[5:]]
            console.print(table("Grants", head, _grant_rows(grants)))

    emit(data, as_json, render)


@access_app.command("grant")
def grant(
    request_id: Annotated[str, typer.Argument(help="The request, e.g. REQ-7.")],
    epsilon: Annotated[
        float | None, typer.Option("--epsilon", help="ε budget (default: as requested).")
    ] = None,
    max_queries: Annotated[
        int | None, typer.Option("--max-queries", help="Most uses allowed (default: no limit).")
    ] = None,
    price_per_query: Annotated[
        str, typer.Option("--price-per-query", help="Price of each use.")
    ] = "0",
    price_per_epsilon: Annotated[
        str, typer.Option("--price-per-epsilon", help="Price of each ε spent.")
    ] = "0",
    until: Annotated[
        datetime | None,
        typer.Option("--until", formats=["%Y-%m-%d"], help="End (default: as requested)."),
    ] = None,
    action: Actions = None,
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Grant a pending request; its budget opens in the ledger at once.

    Example: entrepot access grant REQ-7 --epsilon 2 --max-queries 100 --price-per-epsilon 50
    """
    with open_node(home) as node:
        info = Contracts(node.db, node.settings, log=node.log).grant(
            acting(node, as_),
            request_id,
            epsilon=epsilon,
            max_queries=max_queries,
            price_per_query=price_per_query,
            price_per_epsilon=price_per_epsilon,
            actions=tuple(action) if action else None,
            until=until.date() if until else None,
        )
    emit(
        info.to_dict(),
        as_json,
        lambda: console.print(
            f"[green]granted[/] {info.ref} to {info.consumer}: {info.epsilon:g} ε on "
            f"{info.dataset} until {info.valid_until}"
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
    with open_node(home) as node:
        info = Contracts(node.db, node.settings, log=node.log).refuse(
            acting(node, as_), request_id, reason
        )
    emit(info.to_dict(), as_json, lambda: console.print(f"[yellow]refused[/] {info.ref}"))


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
    with open_node(home) as node:
        info = Contracts(node.db, node.settings, log=node.log).revoke(
            acting(node, as_), grant_id, reason
        )
    emit(info.to_dict(), as_json, lambda: console.print(f"[yellow]revoked[/] {info.ref}"))


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
    with open_node(home) as node:
        info = Contracts(node.db, node.settings).show(acting(node, as_), ident)
    emit(info.to_dict(), as_json, lambda: _print_contract(info))


@access_app.command("export-odrl")
def export_odrl(
    grant_id: Annotated[str, typer.Argument(help="The grant, e.g. GRANT-3.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")
    ] = None,
    as_: As = None,
    home: Home = None,
) -> None:
    """Export a grant as an ODRL 2.2 Agreement (JSON-LD).

    Example: entrepot access export-odrl GRANT-3 -o grant-3.jsonld
    """
    with open_node(home) as node:
        document = Contracts(node.db, node.settings).odrl(acting(node, as_), grant_id)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"[green]wrote[/] {output}")


@access_app.command("purposes")
def list_purposes(as_json: Json = False) -> None:
    """List the purposes a request may name (a grant covers narrower purposes too).

    Example: entrepot access purposes --json
    """
    known = sorted(purposes().values(), key=lambda p: p.id)
    emit(
        [
            {"id": p.id, "label": p.label, "broader": p.broader, "description": p.description}
            for p in known
        ],
        as_json,
        lambda: console.print(
            table(
                "Purposes", ["id", "broader", "label"], [[p.id, p.broader, p.label] for p in known]
            )
        ),
    )


def register(app: typer.Typer) -> None:
    app.add_typer(access_app, name="access")
