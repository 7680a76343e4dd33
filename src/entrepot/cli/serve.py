"""`entrepot serve`: the HTTP API of a node, with uvicorn.

It writes an access log to standard output (one line per request: method, route
template, status, duration; see :mod:`entrepot.api.metrics`), names a taken port
plainly before uvicorn starts, and with several workers has them share one
Prometheus multiprocess directory, so ``/metrics`` sums every worker's requests.
"""

from __future__ import annotations

import copy
import errno
import os
import socket
from contextlib import ExitStack
from typing import Annotated, Any

import typer

from entrepot._urls import loopback
from entrepot.cli._common import Db, Home, console, err_console, esc, settings
from entrepot.errors import Conflict


def serve(
    home: Home = None,
    db: Db = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to bind \\[default: 127.0.0.1].")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=0, max=65535, help="Port to listen on \\[default: 8000]."),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Worker processes.")] = 1,
    query_workers: Annotated[
        int | None,
        typer.Option(
            "--query-workers",
            min=0,
            max=64,
            help="Processes per worker that run private queries (0: in-process) "
            "\\[default: ENTREPOT_API_QUERY_WORKERS, else one less than the cores shared "
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
    _check_free(bind_host, bind_port)
    console.print(
        f"serving [bold]{esc(chosen.home)}[/] on http://{esc(bind_host)}:{bind_port} "
        f"(OpenAPI at /docs, {workers} worker{'s' if workers > 1 else ''}, "
        f"{pool} query process{'es' if pool != 1 else ''} each)",
        highlight=False,
    )
    if not loopback(bind_host.strip("[]")):
        err_console.print(
            f"[yellow]warning:[/] plain HTTP on {esc(bind_host)} reaches beyond this "
            "machine: tokens and answers would cross the network unencrypted; put TLS in "
            "front (docs/deployment.md, 'TLS in front')",
            highlight=False,
        )
    with ExitStack() as cleanup:
        if workers > 1:
            from entrepot.vault._storage import temp_dir

            shared = cleanup.enter_context(temp_dir(chosen.home / "tmp"))
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(shared)
        uvicorn.run(
            "entrepot.api.app:from_environment",
            factory=True,
            host=bind_host,
            port=bind_port,
            workers=workers,
            log_level="info",
            log_config=_log_config(),
            # uvicorn's own access log prints the raw path and query string; ours
            # prints the route template only.
            access_log=False,
            server_header=False,
            **server_options(chosen),
        )


def _check_free(host: str, port: int) -> None:
    """Refuse a port another process listens on, by name, before uvicorn tries it."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise Conflict(
            f"cannot serve on {host}: {error.strerror}",
            hint="give --host an address of this machine (127.0.0.1 or 0.0.0.0)",
            setting="host",
        ) from error
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # As uvicorn binds: SO_REUSEADDR lets a port in TIME_WAIT be taken again.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            taken = error.errno == errno.EADDRINUSE
            raise Conflict(
                f"port {port} on {host} is already in use"
                if taken
                else f"cannot listen on {host}:{port}: {error.strerror}",
                hint="stop what listens there, or choose another port with --port "
                "(or ENTREPOT_PORT)",
                setting="port",
            ) from error


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, plus the access log of entrepot.api.metrics on standard output."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["entrepot_access"] = {
        "format": "%(asctime)s %(message)s",
        "datefmt": "%Y-%m-%dT%H:%M:%S%z",
    }
    config["handlers"]["entrepot_access"] = {
        "formatter": "entrepot_access",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout",
    }
    config["loggers"]["entrepot.access"] = {
        "handlers": ["entrepot_access"],
        "level": "INFO",
        "propagate": False,
    }
    return config


def register(app: typer.Typer) -> None:
    app.command()(serve)
