"""`entrepot login` / `logout` / `whoami`: point the CLI at a server, or back at the local node."""

from __future__ import annotations

from typing import Annotated

import typer

from entrepot.cli._common import As, Home, Json, console, emit, esc, session
from entrepot.client import Remote, forget, save_remote
from entrepot.errors import InvalidInput
from entrepot.settings import Settings


def login(
    url: Annotated[str, typer.Argument(help="The server, e.g. http://127.0.0.1:8000.")],
    token: Annotated[
        str,
        typer.Option(
            "--token",
            envvar="ENTREPOT_TOKEN",
            prompt=True,
            hide_input=True,
            help="An API token from `entrepot account create`. Prefer ENTREPOT_TOKEN or "
            "the hidden prompt (when both are absent): a command line is seen by every "
            "user of the machine (ps) and kept in shell history.",
        ),
    ],
    as_json: Json = False,
) -> None:
    """Log the CLI in to a server: later commands call its API with this token.

    The token is checked against the server, then stored with the URL in the
    client config file (mode 0600). It is never printed. Without --token it is
    read from ENTREPOT_TOKEN, else asked for at a prompt that does not echo it.

    Example: entrepot login http://127.0.0.1:8000   (then paste the token at the prompt)
    """
    if not url.startswith(("http://", "https://")):
        raise InvalidInput(
            f"not a server URL: {url!r}", hint="give it as http://HOST:PORT or https://HOST"
        )
    from entrepot.client.http import HttpClient

    settings = Settings()
    with HttpClient(
        url,
        token.strip(),
        timeout_s=settings.http_timeout_s,
        plain_http=settings.allow_plain_http,
    ) as client:
        me = client.me()
    path = save_remote(Remote(url=client.url, token=token.strip()), settings)
    data = {"url": client.url, "account": me, "config": str(path)}
    emit(
        data,
        as_json,
        lambda: console.print(
            f"[green]logged in[/] to {esc(client.url)} as [bold]{esc(me['account'])}[/] "
            f"({esc(me['role'])} of {esc(me['org'])})",
            highlight=False,
        ),
    )


def logout(as_json: Json = False) -> None:
    """Forget the stored server and token: the CLI works on the local node again.

    Example: entrepot logout
    """
    removed = forget()
    emit(
        {"logged_out": removed},
        as_json,
        lambda: console.print("logged out" if removed else "was not logged in"),
    )


def whoami(as_: As = None, home: Home = None, as_json: Json = False) -> None:
    """Who the CLI acts as: the account behind the stored token, or the local node.

    Logged in, it asks the server for the token's account, role and organization;
    logged out, it names the node in --home and the organization of --as, if any.

    Example: entrepot whoami --json
    """

    with session(home, as_) as client:
        data = client.whoami()

    def render() -> None:
        if data["server"] is None:
            who = f" as [bold]{esc(data['org'])}[/] ({esc(data['role'])})" if data["org"] else ""
            console.print(f"local node at {esc(data['home'])}{who}", highlight=False)
        else:
            console.print(
                f"[bold]{esc(data['account'])}[/] ({esc(data['role'])} of {esc(data['org'])}) "
                f"on {esc(data['server'])}",
                highlight=False,
            )

    emit(data, as_json, render)


def register(app: typer.Typer) -> None:
    app.command()(login)
    app.command()(logout)
    app.command()(whoami)
