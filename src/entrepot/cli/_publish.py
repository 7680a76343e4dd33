"""`entrepot dataset publish`, `versions` and `verify` (added to the dataset app).

Logged in, a publish uploads the file and its mapping to the server, which
validates and stores them as the token's organization; otherwise the local node
does the same work in-process. Either way the answer is the API's body, so one
renderer prints it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

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

from entrepot.cli._common import (
    As,
    Home,
    Json,
    console,
    dispatch,
    emit,
    err_console,
    esc,
    open_node,
)
from entrepot.cli._report import render_report
from entrepot.cli.catalog import CONTENT_HIDDEN, dataset_path, versions_table
from entrepot.errors import InvalidInput, NotFound, ValidationFailed

if TYPE_CHECKING:
    from entrepot.api.client import Client
    from entrepot.exchange import Exchange
    from entrepot.exchange.accounts import Actor

__all__ = ["OnErrorChoice", "publish", "verify", "versions"]

Advance = Callable[[str, int, int], None]

_STEPS = {
    "upload": "uploading",
    "server": "validating and publishing on the server",
    "validate": "reading and validating",
    "write": "writing Parquet",
    "hash": "hashing",
    "commit": "committing",
}


class OnErrorChoice(StrEnum):
    """What to do with invalid rows (the library's OnError, without importing the vault)."""

    REJECT = "reject"
    QUARANTINE = "quarantine"


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


class _Upload:
    """A file httpx streams in chunks, reporting the bytes sent so far."""

    def __init__(self, handle: BinaryIO, total: int, advance: Advance | None) -> None:
        self._handle = handle
        self._total = total
        self._sent = 0
        self._advance = advance

    def fileno(self) -> int:
        # httpx reads the size from the descriptor to send a Content-Length.
        return self._handle.fileno()

    def seek(self, offset: int, whence: int = 0) -> int:
        self._sent = 0
        return self._handle.seek(offset, whence)

    def read(self, size: int = -1) -> bytes:
        chunk = self._handle.read(size)
        self._sent += len(chunk)
        if self._advance is not None:
            if chunk:
                self._advance("upload", self._sent, self._total)
            else:
                # Sent: what remains is the server's work, of unknown length.
                self._advance("server", 0, 0)
        return chunk


def _open(source: Path) -> BinaryIO:
    from entrepot._files import check_regular

    # Uploaded or read here, a raw file is named directly: no link, pipe or device.
    check_regular(source)
    return source.open("rb")


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
            "--dataset", "-d", help="Dataset slug (default: the title without a trailing year)."
        ),
    ] = None,
    description: Annotated[str, typer.Option("--description", help="What the dataset holds.")] = "",
    on_error: Annotated[
        OnErrorChoice,
        typer.Option(
            "--on-error",
            help="reject: publish nothing if any row is invalid; quarantine: publish the "
            "valid rows and keep the invalid ones, with reasons, under quarantine/.",
        ),
    ] = OnErrorChoice.REJECT,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Validate a file and publish it as a new, immutable version of a dataset.

    A new publish of the same dataset adds a version and never overwrites one; an
    interrupted publish leaves the complete version or nothing. Exit code 0 when
    published, 2 when rows are invalid under --on-error reject (nothing published)
    or the input cannot be read. Logged in, the file and mapping are uploaded and
    the server publishes them for the token's organization.

    Example: entrepot dataset publish visits.csv --provider riverside-hospitals
    --standard health.visit --mapping riverside.yaml --title "Outpatient visits 2025"
    """

    def local(exchange: Exchange, _actor: Actor) -> dict[str, Any]:
        from entrepot import standards
        from entrepot.exchange.catalog import publish_version
        from entrepot.schemas.datasets import PublishedOut
        from entrepot.vault import OnError, PublishRequest

        if provider is None:
            raise InvalidInput(
                "a local publish needs --provider",
                hint="name the publishing provider, e.g. --provider riverside-hospitals",
            )
        target = standards.get(standard)
        request = PublishRequest(
            provider=provider,
            standard=target,
            title=title,
            dataset=dataset,
            description=description,
            mapping=standards.load_mapping(mapping) if mapping is not None else None,
            mapping_text=mapping.read_text(encoding="utf-8-sig") if mapping is not None else None,
            on_error=OnError(on_error.value),
            filename=source.name,
        )
        with _open(source) as handle:
            published = publish_version(exchange.node, request, handle, progress=progress)
        return PublishedOut.model_validate(published.to_dict()).model_dump(mode="json")

    def remote(client: Client) -> dict[str, Any]:
        if Path(standard).is_file():
            raise InvalidInput(
                f"--standard {standard} is a file on this machine; a server publishes only "
                "in the standards it ships",
                hint="pick one from `entrepot standard list`, or `entrepot logout` to publish "
                "on the local node",
            )
        if provider is not None:
            org = client.get("/v1/me")["org"]
            if org != provider:
                raise InvalidInput(
                    f"--provider {provider}, but the logged-in token acts for {org}",
                    hint=f"drop --provider (the server publishes for {org}), or log in with "
                    f"a token of {provider}",
                )
        form = {"standard": standard, "title": title, "description": description}
        form["on_error"] = on_error.value
        if dataset is not None:
            form["dataset"] = dataset
        with _open(source) as handle:
            files: dict[str, Any] = {
                "file": (source.name, _Upload(handle, Path(source).stat().st_size, progress))
            }
            if mapping is not None:
                if not mapping.is_file():
                    raise NotFound(f"no mapping at {mapping}", hint="check the mapping's path")
                files["mapping"] = (mapping.name, mapping.read_bytes(), "application/yaml")
            data: dict[str, Any] = client.post("/v1/datasets", data=form, files=files)
            return data

    with _progress(err_console.is_terminal and not as_json) as progress:
        try:
            published = dispatch(home, None, local=local, remote=remote)
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

    def local(exchange: Exchange, actor: Actor) -> list[dict[str, Any]]:
        from entrepot.schemas.catalog import VersionOut

        found = exchange.catalog(actor).versions(dataset)
        return [VersionOut.of(v).model_dump(mode="json") for v in found]

    found: list[dict[str, Any]] = dispatch(
        home,
        as_,
        local=local,
        remote=lambda client: client.get(f"/v1/datasets/{dataset_path(dataset)}/versions"),
    )

    def render() -> None:
        console.print(versions_table(f"Versions of {dataset}", found))
        if not any(v["sha256"] is not None for v in found):
            console.print(CONTENT_HIDDEN, style="dim", highlight=False)

    emit(found, as_json, render)


def verify(home: Home = None, as_json: Json = False) -> None:
    """Re-hash every published version and delete files crashed publishes left behind.

    Runs on the machine holding the node's vaults, also when logged in to a server.
    Exit code 0 when every version's file matches the catalog (SHA-256 and row
    count), 1 when one does not.

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
        raise typer.Exit(1)
