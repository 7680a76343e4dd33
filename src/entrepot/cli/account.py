"""`entrepot account`: organizations' accounts and their API tokens.

Every command runs against the logged-in server (as an operator, or for one's own
organization) or, logged out, on the local node.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from entrepot.cli._common import As, Home, Json, console, emit, err_console, esc, session, table

account_app = typer.Typer(
    help="Accounts of providers, consumers, auditors and operators, and their API tokens.",
    no_args_is_help=True,
)


def _issued(new_token: dict[str, Any]) -> dict[str, Any]:
    """What the CLI prints of an API ``NewToken``: the secret beside its public fields."""
    return {"token": new_token["token"], **new_token["info"]}


def _show_token(issued: dict[str, Any]) -> None:
    console.print(
        f"API token (shown once, store it now):\n  {esc(issued['token'])}", soft_wrap=True
    )
    token_id = esc(issued["token_id"])
    err_console.print(
        f"token id {token_id}, expires {esc(issued['expires_at'][:10])}; "
        f"revoke it with `entrepot account revoke-token {token_id}`",
        highlight=False,
    )


@account_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Account name (a slug).")],
    role: Annotated[str, typer.Option("--role", help="operator, provider, consumer or auditor.")],
    org: Annotated[
        str | None,
        typer.Option("--org", help="Its organization's slug \\[default: the account name]."),
    ] = None,
    org_name: Annotated[
        str | None, typer.Option("--org-name", help="The organization's full name, if new.")
    ] = None,
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Create an account (and its organization if new); prints its API token once.

    A provider account's organization is the vault provider of the same slug.

    Example: entrepot account create city-health-bureau --role consumer
    """

    with session(home, as_) as client:
        created = client.create_account(name, role, org=org, org_name=org_name)
    account = created["account"]
    data = {**_issued(created["token"]), "role": account["role"], "org": account["org"]}

    def render() -> None:
        console.print(
            f"[green]created[/] {esc(account['role'])} account {esc(account['name'])} "
            f"in {esc(account['org'])}"
        )
        _show_token(data)

    emit(data, as_json, render)


@account_app.command("token")
def token(
    name: Annotated[str, typer.Argument(help="The account to issue a token for.")],
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Issue another API token for an account; prints it once.

    Example: entrepot account token city-health-bureau
    """
    with session(home, as_) as client:
        issued = client.issue_token(name)
    data = _issued(issued)
    emit(data, as_json, lambda: _show_token(data))


@account_app.command("list")
def list_(
    tokens: Annotated[
        bool, typer.Option("--tokens", help="List tokens (ids only, never secrets).")
    ] = False,
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """List the accounts (or their tokens) you may see.

    A token's scope is full (everything its account may do) or sharing (a share
    profile's token: the Delta Sharing routes only).

    Example: entrepot account list --tokens --json
    """

    with session(home, as_) as client:
        data = client.tokens() if tokens else client.accounts()
    if tokens:
        rows = [
            [
                t["token_id"],
                t["account"],
                t["scope"],
                t["expires_at"][:10],
                "revoked" if t["revoked_at"] else "",
            ]
            for t in data
        ]
        columns = ["token id", "account", "scope", "expires", "state"]
        view = table("API tokens", columns, rows)
    else:
        rows = [[a["name"], a["ref"], a["role"], a["org"], a["active_tokens"]] for a in data]
        columns = ["account", "in the log", "role", "organization", "active tokens"]
        view = table("Accounts", columns, rows)
    emit(data, as_json, lambda: console.print(view if rows else "none yet"))


@account_app.command("revoke-token")
def revoke_token(
    token_id: Annotated[str, typer.Argument(help="The token's public id (12 hex digits).")],
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Revoke an API token by its public id; it stops working at once, on every worker.

    Example: entrepot account revoke-token 3f9a0c1b2d4e
    """

    with session(home, as_) as client:
        data = client.revoke_token(token_id)
    emit(
        data,
        as_json,
        lambda: console.print(
            f"[green]revoked[/] token {esc(data['token_id'])} of {esc(data['account'])}"
        ),
    )


def register(app: typer.Typer) -> None:
    app.add_typer(account_app, name="account")
