"""`entrepot dataset`: check and publish a provider's files, list and verify versions."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Annotated

import typer

from entrepot.cli._common import Home, Json, console, emit, esc, settings
from entrepot.cli._publish import publish, verify, versions
from entrepot.cli._report import render_report
from entrepot.errors import ExitCode

dataset_app = typer.Typer(
    help="Validate provider files against a standard, and publish them.",
    no_args_is_help=True,
)

StandardOption = Annotated[
    str,
    typer.Option(
        "--standard", "-s", help="A shipped standard (e.g. health.visit) or a Table Schema file."
    ),
]
MappingOption = Annotated[
    Path | None,
    typer.Option("--mapping", "-m", help="A provider mapping (YAML) onto the standard."),
]


@dataset_app.command("validate")
def validate(
    source: Annotated[Path, typer.Argument(help="The raw file (CSV or other delimited text).")],
    standard: StandardOption,
    mapping: MappingOption = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Check a file against a standard and report every broken rule; publish nothing.

    Exit code 0 when every row is valid, 5 when some rows break the standard (the
    report says which and why) or the file or mapping cannot be read, 4 when the
    standard or a file does not exist.

    It reads a file on this machine, so it runs here also when logged in to a server.

    Example: entrepot dataset validate visits.csv --standard health.visit --mapping riverside.yaml
    """
    from entrepot import standards

    config = settings(home)
    target = standards.get(standard)
    busy: AbstractContextManager[object] = (
        nullcontext()
        if as_json
        else console.status(f"validating {esc(source.name)}", spinner="dots")
    )
    with busy:
        run = standards.validate(
            source,
            target,
            mapping,
            report_rows=config.report_rows,
            max_bytes=config.max_upload_bytes,
            memory_limit=config.ingest_memory_limit,
            threads=config.engine_threads,
        )
    with run:
        report = run.report.to_dict()
    emit(report, as_json, lambda: render_report(console, report))
    if not report["valid"]:
        raise typer.Exit(int(ExitCode.INVALID))


dataset_app.command("publish")(publish)
dataset_app.command("versions")(versions)
dataset_app.command("verify")(verify)


def register(app: typer.Typer) -> None:
    app.add_typer(dataset_app, name="dataset")
