"""`entrepot dataset publish` and `entrepot dataset versions` (added to the dataset app)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from entrepot import standards
from entrepot.cli._common import Home, Json, console, emit, err_console, open_node, table
from entrepot.cli._report import render_report
from entrepot.errors import NotFound, ValidationFailed
from entrepot.exchange.catalog import publish_version
from entrepot.standards import OffendingRow, Report, Violation
from entrepot.vault import LocalVault, OnError, Published, PublishRequest

__all__ = ["publish", "verify", "versions"]

_STEPS = {
    "validate": "reading and validating",
    "write": "writing Parquet",
    "hash": "hashing",
    "commit": "committing",
}


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    """A callback drawing one Rich progress line per publish step (none when disabled)."""
    if not enabled:
        yield None
        return
    bars = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def advance(step: str, done: int, total: int) -> None:
        for name, task in tasks.items():
            if name != step:
                bars.update(task, completed=bars.tasks[task].total or 1, total=1)
        if step not in tasks:
            tasks[step] = bars.add_task(_STEPS.get(step, step), total=total or None)
        bars.update(tasks[step], completed=done, total=total or None)

    with bars:
        yield advance


def _report_of(data: dict[str, Any], columns: list[str]) -> Report:
    """Rebuild the report a publish returned (as JSON data) to render it."""
    return Report(
        source=data["source"],
        standard=data["standard"],
        mapping=data.get("mapping"),
        rows_total=data["rows_total"],
        rows_invalid=data["rows_invalid"],
        violations=tuple(Violation(**v) for v in data.get("violations", [])),
        rows=tuple(
            OffendingRow(r["line"], tuple(r["reasons"]), r["values"]) for r in data.get("rows", [])
        ),
        ignored_columns=tuple(data.get("ignored_columns", [])),
        columns=tuple(columns),
    )


def _render_published(published: Published, columns: list[str]) -> None:
    version = published.version
    if published.quarantined:
        render_report(console, _report_of(published.report, columns))
    console.print(
        f"[green]published[/] {version.ref} version {version.number}: "
        f"{version.rows:,} rows ({version.size_bytes:,} bytes, sha256 {version.sha256})"
    )
    if published.quarantined:
        console.print(
            f"[yellow]quarantined[/] {published.quarantined:,} invalid rows with their reasons; "
            f"{version.rows:,} + {published.quarantined:,} = {published.rows_total:,} rows read"
        )


def publish(
    source: Annotated[Path, typer.Argument(help="The raw file (CSV or other delimited text).")],
    provider: Annotated[str, typer.Option("--provider", "-p", help="The publishing provider.")],
    standard: Annotated[
        str,
        typer.Option("--standard", "-s", help="A shipped standard or a Table Schema file."),
    ],
    title: Annotated[str, typer.Option("--title", "-t", help="Title of this version.")],
    mapping: Annotated[
        Path | None,
        typer.Option("--mapping", "-m", help="A provider mapping (YAML) onto the standard."),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset", "-d", help="Dataset slug (default: the title without a trailing year)."
        ),
    ] = None,
    description: Annotated[str, typer.Option("--description", help="What the dataset holds.")] = "",
    on_error: Annotated[
        OnError,
        typer.Option(
            "--on-error",
            help="reject: publish nothing if any row is invalid; quarantine: publish the "
            "valid rows and keep the invalid ones, with reasons, under quarantine/.",
        ),
    ] = OnError.REJECT,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Validate a file and publish it as a new, immutable version of a dataset.

    A new publish of the same dataset adds a version and never overwrites one; an
    interrupted publish leaves the complete version or nothing. Exit code 0 when
    published, 2 when rows are invalid under --on-error reject (nothing published)
    or the input cannot be read.

    Example: entrepot dataset publish visits.csv --provider riverside-hospitals
    --standard health.visit --mapping riverside.yaml --title "Outpatient visits 2025"
    """
    target = standards.get(standard)
    parsed = standards.load_mapping(mapping) if mapping is not None else None
    request = PublishRequest(
        provider=provider,
        standard=target,
        title=title,
        dataset=dataset,
        description=description,
        mapping=parsed,
        mapping_text=mapping.read_text(encoding="utf-8-sig") if mapping is not None else None,
        on_error=on_error,
        filename=source.name,
    )
    with open_node(home) as node, _progress(err_console.is_terminal) as progress:
        try:
            handle = source.open("rb")
        except FileNotFoundError:
            raise NotFound(
                f"no file at {source}", hint="check the path of the file to publish"
            ) from None
        with handle:
            try:
                published = publish_version(node, request, handle, progress=progress)
            except ValidationFailed as error:
                if not as_json and "report" in error.details:
                    report = _report_of(error.details["report"], target.field_names)
                    render_report(console, report)
                raise
    emit(
        published.to_dict(),
        as_json,
        lambda: _render_published(published, target.field_names),
    )


def versions(
    dataset: Annotated[str, typer.Argument(help="The dataset, as <provider>/<dataset>.")],
    home: Home = None,
    as_json: Json = False,
) -> None:
    """List a dataset's versions with their row counts and content hashes.

    Example: entrepot dataset versions riverside-hospitals/outpatient-visits
    """
    with open_node(home) as node:
        found = LocalVault.of(node).versions(dataset)
    rows = [
        [
            v.number,
            v.title,
            v.created_at.isoformat(timespec="seconds"),
            v.rows,
            v.rows_rejected,
            v.sha256,
        ]
        for v in found
    ]
    emit(
        [v.to_dict() for v in found],
        as_json,
        lambda: console.print(
            table(
                f"Versions of {dataset}",
                ["v", "title", "published", "rows", "rejected", "sha256"],
                rows,
            )
        ),
    )


def verify(home: Home = None, as_json: Json = False) -> None:
    """Re-hash every published version and delete files crashed publishes left behind.

    Exit code 0 when every version's file matches the catalog (SHA-256 and row
    count), 1 when one does not.

    Example: entrepot dataset verify --home ./exchange
    """
    with open_node(home) as node:
        vault = LocalVault.of(node)
        removed = [vault.relative(path) for path in vault.recover()]
        problems = vault.check()
    data = {"removed": removed, "problems": problems}

    def render() -> None:
        for path in removed:
            console.print(f"[yellow]removed[/] {path} (left by an interrupted publish)")
        for problem in problems:
            console.print(f"[red]corrupt[/] {problem['message']}")
        if not problems:
            console.print("[green]every version matches its SHA-256 and row count[/]")

    emit(data, as_json, render)
    if problems:
        raise typer.Exit(1)
