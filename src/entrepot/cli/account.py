"""`entrepot account`: organizations' accounts and their API tokens."""

from __future__ import annotations

from typing import Annotated

import typer

from entrepot.cli._common import (
    As,
    Home,
    Json,
    acting,
    console,
    emit,
    err_console,
    open_node,
    table,
)
from entrepot.exchange.accounts import Accounts, IssuedToken

account_app = typer.Typer(
    help="Accounts of providers, consumers, auditors and operators, and their API tokens.",
    no_args_is_help=True,
)


def _show_token(token: IssuedToken) -> None:
    console.print(f"API token (shown once, store it now):\n  {token.secret}", soft_wrap=True)
    err_console.print(
        f"token id {token.info.token_id}, expires {token.info.expires_at:%Y-%m-%d}; "
        "revoke it with `entrepot account revoke-token "
        f"{token.info.token_id}`",
        highlight=False,
    )


@account_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Account name (a slug).")],
    role: Annotated[str, typer.Option("--role", help="operator, provider, consumer or auditor.")],
    org: Annotated[
        str | None,
        typer.Option("--org", help="Its organization's slug (default: the account name)."),
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
    with open_node(home) as node:
        info, token = Accounts(node.db, node.settings, log=node.log).create(
            acting(node, as_), name, role, org=org, org_name=org_name
        )

    def render() -> None:
        console.print(f"[green]created[/] {info.role} account {info.name} in {info.org}")
        _show_token(token)

    emit(
        {"account": info.to_dict(), "token": token.secret, **token.info.to_dict()}, as_json, render
    )


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
    with open_node(home) as node:
        issued = Accounts(node.db, node.settings, log=node.log).issue_token(acting(node, as_), name)
    emit({"token": issued.secret, **issued.info.to_dict()}, as_json, lambda: _show_token(issued))


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

    Example: entrepot account list --tokens --json
    """
    with open_node(home) as node:
        service = Accounts(node.db, node.settings)
        actor = acting(node, as_)
        rows: list[list[object]]
        if tokens:
            found = service.tokens(actor)
            rows = [
                [
                    t.token_id,
                    t.account,
                    f"{t.expires_at:%Y-%m-%d}",
                    "revoked" if t.revoked_at else "",
                ]
                for t in found
            ]
            data = [t.to_dict() for t in found]
            view = table("API tokens", ["token id", "account", "expires", "state"], rows)
        else:
            accounts = service.list_accounts(actor)
            rows = [[a.name, a.role, a.org, a.active_tokens] for a in accounts]
            data = [a.to_dict() for a in accounts]
            view = table("Accounts", ["account", "role", "organization", "active tokens"], rows)
    emit(data, as_json, lambda: console.print(view if rows else "none yet"))


@account_app.command("revoke-token")
def revoke_token(
    token_id: Annotated[str, typer.Argument(help="The token's public id (12 hex digits).")],
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Revoke an API token by its public id; it stops working at once.

    Example: entrepot account revoke-token 3f9a0c1b2d4e
    """
    with open_node(home) as node:
        info = Accounts(node.db, node.settings, log=node.log).revoke_token(
            acting(node, as_), token_id
        )
    emit(
        info.to_dict(),
        as_json,
        lambda: console.print(f"[green]revoked[/] token {info.token_id} of {info.account}"),
    )


def register(app: typer.Typer) -> None:
    app.add_typer(account_app, name="account")
