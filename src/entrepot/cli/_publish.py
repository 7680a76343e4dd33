"""`entrepot dataset publish`, `versions` and `verify` (added to the dataset app).

Logged in, a publish uploads the file and its mapping to the server, which
validates and stores them as the token's organization; otherwise the local node
does the same work in-process. Either way the answer is the API's body, so one
renderer prints it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from entrepot.cli._common import As, Home, Json, console, emit, err_console, esc, open_node, session
from entrepot.cli._report import render_report
from entrepot.cli.catalog import CONTENT_HIDDEN, versions_table
from entrepot.client.protocol import Advance
from entrepot.errors import ExitCode, ValidationFailed

__all__ = ["OnErrorChoice", "publish", "verify", "versions"]

_STEPS = {
    "upload": "uploading",
    "server": "validating and publishing on the server",
    "validate": "reading and validating",
    "write": "writing Parquet",
    "bound": "estimating rows per unit (DP)",
    "hash": "hashing",
    "commit": "committing",
}


class OnErrorChoice(StrEnum):
    """What to do with invalid rows (the library's OnError, without importing the vault)."""

    REJECT = "reject"
    QUARANTINE = "quarantine"


class _Bytes(DownloadColumn):
    """Bytes done of the total, for a step that counts bytes; blank for one that cannot
    (the server's validation reports no progress until it answers)."""

    def render(self, task: Task) -> Text:
        return super().render(task) if task.fields.get("counted") else Text("")


@contextmanager
def _progress(enabled: bool) -> Iterator[Advance | None]:
    """A callback drawing one Rich progress line per publish step (none when disabled)."""
    if not enabled:
        yield None
        return
    bars = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        _Bytes(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def advance(step: str, done: int, total: int) -> None:
        for name, task in tasks.items():
            if name != step and not bars.tasks[task].finished:
                # A step of unknown length is done once the next one starts.
                known = bars.tasks[task].total
                bars.update(task, completed=known or 1, total=known or 1)
        if step not in tasks:
            tasks[step] = bars.add_task(
                _STEPS.get(step, step), total=total or None, counted=total > 0
            )
        bars.update(tasks[step], completed=done, total=total or None)

    with bars:
        yield advance


def _render_published(data: dict[str, Any]) -> None:
    if data["quarantined"]:
        render_report(console, data["report"])
    console.print(
        f"[green]published[/] {esc(data['dataset'])} version {esc(data['version'])}: "
        f"{data['rows']:,} rows ({data['size_bytes']:,} bytes, sha256 {esc(data['sha256'])})",
        highlight=False,
    )
    if data["quarantined"]:
        console.print(
            f"[yellow]quarantined[/] {data['quarantined']:,} invalid rows with their reasons; "
            f"{data['rows']:,} + {data['quarantined']:,} = {data['rows_total']:,} rows read",
            highlight=False,
        )
    if data.get("unit_bound") is not None:
        from entrepot.privacy.bounds import QUANTILE, Removal, percentile

        level = data["unit_level"]
        # a lower level: the data's units were too few for the mechanism to find the 95th
        lower = "" if level >= QUANTILE else ", the highest its units resolve at this ε"
        removes = ""
        if data.get("unit_kept") is not None and data.get("unit_removed") is not None:
            kept, removed = data["unit_kept"], data["unit_removed"]
            share = Removal(kept, removed, data["unit_removed_scale"]).share()
            removes = (
                f"; it removes an estimated {share.value:.1%} of the rows "
                f"({share.lo:.1%} to {share.hi:.1%}, at 95%)"
            )
        console.print(
            f"rows per unit: [bold]{data['unit_bound']}[/] (the {percentile(level)}{lower}, "
            f"estimated with differential privacy){removes}; ε {data['bound_epsilon']:g} spent "
            "of the dataset's cap on both; queries bound each unit by it unless the policy "
            "sets rows_per_unit",
            highlight=False,
        )


def publish(
    source: Annotated[Path, typer.Argument(help="The raw file (CSV or other delimited text).")],
    standard: Annotated[
        str,
        typer.Option(
            "--standard",
            "-s",
            help="A shipped standard, or (local only) a Table Schema file.",
        ),
    ],
    title: Annotated[str, typer.Option("--title", "-t", help="Title of this version.")],
    provider: Annotated[
        str | None,
        typer.Option(
            "--provider",
            "-p",
            help="The publishing provider (logged in: the token's organization).",
        ),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option("--mapping", "-m", help="A provider mapping (YAML) onto the standard."),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset", "-d", help="Dataset slug \\[default: the title without a trailing year]."
        ),
    ] = None,
    description: Annotated[str, typer.Option("--description", help="What the dataset holds.")] = "",
    region: Annotated[
        list[str] | None,
        typer.Option(
            "--region",
            help="A region the dataset covers, for the catalog: a code of region.province, "
            "region.city or region.district; repeat for several \\[default: the dataset's].",
            show_default=False,
        ),
    ] = None,
    sector: Annotated[
        str | None,
        typer.Option(
            "--sector",
            help="The dataset's sector of activity, for the catalog: a code of the sector "
            "list \\[default: the dataset's].",
            show_default=False,
        ),
    ] = None,
    on_error: Annotated[
        OnErrorChoice,
        typer.Option(
            "--on-error",
            help="reject: publish nothing if any row is invalid; quarantine: publish the "
            "valid rows and keep the invalid ones, with reasons, under quarantine/.",
        ),
    ] = OnErrorChoice.REJECT,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Add a version even when the latest one holds the same rows under the "
            "same standard and mapping (without it, that version is returned).",
        ),
    ] = False,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key",
            help="Logged in: the key of an earlier publish whose answer was lost (a time-out "
            "prints it); the server answers that publish again instead of adding a version "
            "\\[default: a new key per publish].",
            show_default=False,
        ),
    ] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Validate a file and publish it as a new, immutable version of a dataset.

    A new publish of the same dataset adds a version and never overwrites one; an
    interrupted publish leaves the complete version or nothing. Exit code 0 when
    published, 5 when rows are invalid under --on-error reject (nothing published)
    or the input cannot be read (docs/cli.md lists every exit code). Logged in, the
    file and mapping are uploaded and the server publishes them for the token's
    organization.

    Example: entrepot dataset publish visits.csv --provider riverside-hospitals
    --standard health.visit --mapping riverside.yaml --title "Outpatient visits 2025"
    --region 910000 --sector Q
    """

    with _progress(err_console.is_terminal and not as_json) as progress:
        try:
            with session(home) as client:
                published = client.publish(
                    source,
                    standard=standard,
                    title=title,
                    provider=provider,
                    mapping=mapping,
                    dataset=dataset,
                    description=description,
                    region=region or (),
                    sector=sector,
                    on_error=on_error.value,
                    progress=progress,
                    force=force,
                    idempotency_key=idempotency_key,
                )
        except ValidationFailed as error:
            if not as_json and "report" in error.details:
                render_report(console, error.details["report"])
            raise
    emit(published, as_json, lambda: _render_published(published))


def versions(
    dataset: Annotated[str, typer.Argument(help="The dataset, as <provider>/<dataset>.")],
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """List a dataset's versions; its provider also sees their row counts and hashes.

    Example: entrepot dataset versions riverside-hospitals/outpatient-visits
    """

    with session(home, as_) as client:
        found = client.dataset_versions(dataset)

    def render() -> None:
        console.print(versions_table(f"Versions of {dataset}", found))
        if not any(v["sha256"] is not None for v in found):
            console.print(CONTENT_HIDDEN, style="dim", highlight=False)

    emit(found, as_json, render)


def verify(home: Home = None, as_json: Json = False) -> None:
    """Re-hash every published version and delete files crashed publishes left behind.

    Runs on the machine holding the node's vaults, also when logged in to a server.
    Exit code 0 when every version's file matches the catalog (SHA-256 and row
    count), 7 when one does not.

    Example: entrepot dataset verify --home ./exchange
    """
    from entrepot.vault import LocalVault

    with open_node(home) as node:
        vault = LocalVault.of(node)
        removed = [vault.relative(path) for path in vault.recover()]
        problems = vault.check()
    data = {"removed": removed, "problems": problems}

    def render() -> None:
        for path in removed:
            console.print(f"[yellow]removed[/] {esc(path)} (left by an interrupted publish)")
        for problem in problems:
            console.print(f"[red]corrupt[/] {esc(problem['message'])}")
        if not problems:
            console.print("[green]every version matches its SHA-256 and row count[/]")

    emit(data, as_json, render)
    if problems:
        raise typer.Exit(int(ExitCode.VERIFY_FAILED))
