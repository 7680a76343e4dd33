"""`entrepot serve`: the HTTP API of a node, with uvicorn."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from entrepot.cli._common import Db, Home, console, esc, settings


def serve(
    home: Home = None,
    db: Db = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to bind [default: 127.0.0.1].")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=0, max=65535, help="Port to listen on [default: 8000]."),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Worker processes.")] = 1,
    query_workers: Annotated[
        int | None,
        typer.Option(
            "--query-workers",
            min=0,
            max=64,
            help="Processes per worker that run private queries (0: in-process) "
            "[default: ENTREPOT_API_QUERY_WORKERS, else one less than the cores shared "
            "by the workers, at least 1 each].",
        ),
    ] = None,
) -> None:
    """Serve the node's HTTP API (OpenAPI at /docs) until Ctrl-C.

    With --workers N, N processes share the node: use a PostgreSQL --db for
    many writers; SQLite serializes them. Each worker runs private queries in
    its own --query-workers processes, so N x (1 + query workers) in all.

    Example: entrepot serve --home ./exchange --port 8000 --workers 4 --query-workers 2
    """
    import uvicorn

    from entrepot.api.app import server_options
    from entrepot.exchange.node import Node

    chosen = settings(home, db)
    # Open once here: a missing node fails with a friendly message, and migrations run
    # once before any worker starts rather than racing in each of them.
    Node.open(chosen).close()
    os.environ["ENTREPOT_HOME"] = str(chosen.home.resolve())
    if db is not None:
        os.environ["ENTREPOT_DB"] = db
    if query_workers is None and "api_query_workers" not in chosen.model_fields_set:
        # The default is per machine: N workers share it rather than each taking it all.
        query_workers = max(1, chosen.api_query_workers // workers)
    if query_workers is not None:
        os.environ["ENTREPOT_API_QUERY_WORKERS"] = str(query_workers)
    pool = chosen.api_query_workers if query_workers is None else query_workers
    bind_host = host or chosen.host
    bind_port = chosen.port if port is None else port
    console.print(
        f"serving [bold]{esc(chosen.home)}[/] on http://{esc(bind_host)}:{bind_port} "
        f"(OpenAPI at /docs, {workers} worker{'s' if workers > 1 else ''}, "
        f"{pool} query process{'es' if pool != 1 else ''} each)",
        highlight=False,
    )
    uvicorn.run(
        "entrepot.api.app:from_environment",
        factory=True,
        host=bind_host,
        port=bind_port,
        workers=workers,
        log_level="info",
        # Query strings never carry secrets here, but access logs are kept minimal anyway.
        access_log=False,
        server_header=False,
        **server_options(chosen),
    )


def register(app: typer.Typer) -> None:
    app.command()(serve)
