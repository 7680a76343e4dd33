"""`entrepot catalog`: find datasets, read their public pages, export DCAT."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.panel import Panel
from rich.text import Text

from entrepot.cli._common import Home, Json, console, emit, open_node, table
from entrepot.exchange.catalog import Catalog, DatasetPage, DatasetSummary
from entrepot.exchange.dcat import export_dcat

catalog_app = typer.Typer(
    help="Search and show the datasets this node offers; export the catalog as DCAT.",
    no_args_is_help=True,
)


class ExportFormat(StrEnum):
    DCAT = "dcat"


def _summaries(title: str, found: list[DatasetSummary], empty: str) -> None:
    if not found:
        console.print(empty)
        return
    rows = [[s.ref, s.title, s.provider, s.standard, s.latest or "", s.rows or ""] for s in found]
    console.print(table(title, ["dataset", "title", "provider", "standard", "v", "rows"], rows))


@catalog_app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="Words to find; every word must match.")],
    limit: Annotated[int, typer.Option("--limit", help="Most results to show.", min=1)] = 20,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Full-text search over titles, descriptions, providers, standards and columns.

    Every word must match (as a word prefix); the best matches come first.

    Example: entrepot catalog search "visits district"
    """
    with open_node(home) as node:
        catalog = Catalog(node.db, max_results=node.settings.catalog_max_results)
        found = catalog.search(query, limit=limit)
    emit(
        [s.to_dict() for s in found],
        as_json,
        lambda: _summaries(f"Datasets matching {query!r}", found, f"nothing matches {query!r}"),
    )


@catalog_app.command("list")
def list_(
    provider: Annotated[str | None, typer.Option("--provider", help="Only this provider.")] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """List every dataset in the catalog.

    Example: entrepot catalog list --provider riverside-hospitals
    """
    with open_node(home) as node:
        found = Catalog(node.db).datasets(provider=provider)
    emit(
        [s.to_dict() for s in found],
        as_json,
        lambda: _summaries("Catalog", found, "the catalog is empty: publish a dataset first"),
    )


def _percent(share: Any) -> str:
    return f"{float(share) * 100:.2f} %"


def _render_page(page: DatasetPage) -> None:
    summary = page.summary
    head = Text()
    head.append(f"{summary.title}\n", style="bold")
    head.append(f"{summary.ref}  (SQL: {summary.ref.sql_name})\n", style="cyan")
    head.append(f"provider {summary.provider} · standard {page.standard.name} ")
    head.append(f"{page.standard.version}")
    if page.standard.privacy_unit:
        head.append(f" · privacy unit {page.standard.privacy_unit}")
    if summary.description:
        head.append(f"\n{summary.description}", style="dim")
    columns = [
        [
            c["name"],
            c["type"],
            c["role"],
            "required" if c["required"] else "",
            c.get("codelist") or (" – ".join(str(b) for b in c["bounds"]) if "bounds" in c else ""),
            c["description"],
        ]
        for c in page.schema()
    ]
    versions = [
        [
            v.number,
            v.created_at.date().isoformat(),
            v.rows,
            v.rows_rejected,
            v.size_bytes,
            v.sha256[:16] + "…",
        ]
        for v in page.versions
    ]
    parts: list[Any] = [
        Panel(head, expand=False),
        table(
            "Schema", ["column", "type", "role", "", "code list / bounds", "description"], columns
        ),
        table("Versions", ["v", "published", "rows", "rejected", "bytes", "sha256"], versions),
    ]
    completeness = page.quality.get("completeness", {})
    if completeness:
        rows = [[name, _percent(share)] for name, share in completeness.items()]
        parts.append(table("Completeness (newest version)", ["column", "non-empty"], rows))
    validation = page.quality.get("validation", {})
    if validation:
        counts = [[v["rule"], v["column"], v["count"]] for v in validation.get("violations", [])]
        title = (
            f"Validation: {validation['rows_total']} rows read, {validation['rows_valid']} "
            f"published, {validation['rows_invalid']} quarantined"
        )
        parts.append(
            table(title, ["rule", "column", "rows"], counts) if counts else Text(title + ".")
        )
    console.print(Group(*parts))


@catalog_app.command("show")
def show(
    dataset: Annotated[str, typer.Argument(help="The dataset, as <provider>/<dataset>.")],
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Show a dataset's public page: schema with roles, standard, versions, quality.

    Only figures a provider would show publicly: never a value of an individual row.

    Example: entrepot catalog show riverside-hospitals/outpatient-visits
    """
    with open_node(home) as node:
        page = Catalog(node.db).show(dataset)
    emit(page.to_dict(), as_json, lambda: _render_page(page))


@catalog_app.command("export")
def export(
    format_: Annotated[
        ExportFormat, typer.Option("--format", help="The export format.")
    ] = ExportFormat.DCAT,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="Where the node is reached (default: http://HOST:PORT/)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")
    ] = None,
    home: Home = None,
) -> None:
    """Export the whole catalog as DCAT-3 JSON-LD (datasets, versions, publishers).

    Example: entrepot catalog export --format dcat > catalog.jsonld
    """
    with open_node(home) as node:
        base = base_url or f"http://{node.settings.host}:{node.settings.port}/"
        document = export_dcat(Catalog(node.db), base_url=base)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"[green]wrote[/] {len(document['dcat:dataset'])} datasets to {output}")


def register(app: typer.Typer) -> None:
    app.add_typer(catalog_app, name="catalog")
