"""`entrepot catalog`: find datasets, read their public pages, export DCAT."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from entrepot._text import printable
from entrepot.cli._common import As, Home, Json, console, emit, esc, json_text, session, table

__all__ = ["CONTENT_HIDDEN", "register", "versions_table"]

catalog_app = typer.Typer(
    help="Search and show the datasets this node offers; export the catalog as DCAT.",
    no_args_is_help=True,
)


class ExportFormat(StrEnum):
    DCAT = "dcat"


def _summaries(title: str, found: list[dict[str, Any]], empty: str) -> None:
    if not found:
        console.print(empty)
        return
    rows = [
        [
            f"{s['node']}:{s['dataset']}" if s.get("node") else s["dataset"],
            s["title"],
            s["provider"],
            s["standard"],
            " ".join(r["code"] for r in s.get("regions") or ()),
            s["sector"]["code"] if s.get("sector") else "",
            s["latest_version"] or "",
            s["rows"] or "",
        ]
        for s in found
    ]
    columns = ["dataset", "title", "provider", "standard", "regions", "sector", "v", "rows"]
    console.print(table(title, columns, rows))


Regions = Annotated[
    list[str] | None,
    typer.Option(
        "--region",
        help="Only datasets covering this region (a code of region.province, region.city or "
        "region.district); repeat for any of several.",
    ),
]
Sectors = Annotated[
    list[str] | None,
    typer.Option(
        "--sector", help="Only datasets of this sector (a code of the sector list); repeat."
    ),
]
Standards = Annotated[
    list[str] | None,
    typer.Option("--standard", help="Only datasets in this standard; repeat for several."),
]


@catalog_app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="Words to find; every word must match.")],
    limit: Annotated[int, typer.Option("--limit", help="Most results to show.", min=1)] = 20,
    federated: Annotated[
        bool,
        typer.Option(
            "--federated", help="Search every trusted peer's catalog too; results name their node."
        ),
    ] = False,
    region: Regions = None,
    sector: Sectors = None,
    standard: Standards = None,
    provider: Annotated[
        list[str] | None,
        typer.Option("--provider", help="Only this provider's datasets; repeat for several."),
    ] = None,
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Full-text search over titles, descriptions, providers, standards and columns.

    Every word must match (as a word prefix); the best matches come first. --region,
    --sector, --standard and --provider keep the datasets with any of the values given
    for each (codes: `entrepot standard codes region.province`, `... codes sector`).
    With --federated, the node pulls each peer's signed catalog feed and lists its
    datasets too, marked with the peer's name, kept to the same facets.

    Example: entrepot catalog search "visits" --region 910000 --sector Q
    """

    with session(home, as_) as client:
        search = client.catalog_search_federated if federated else client.catalog_search
        found = search(
            query,
            limit,
            provider=provider or (),
            standard=standard or (),
            region=region or (),
            sector=sector or (),
        )
    emit(
        found,
        as_json,
        lambda: _summaries(f"Datasets matching {query!r}", found, f"nothing matches {query!r}"),
    )


@catalog_app.command("list")
def list_(
    provider: Annotated[str | None, typer.Option("--provider", help="Only this provider.")] = None,
    region: Regions = None,
    sector: Sectors = None,
    standard: Standards = None,
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """List every dataset in the catalog (within the regions, sectors and standards given).

    Example: entrepot catalog list --provider riverside-hospitals
    """

    with session(home, as_) as client:
        found = client.catalog_datasets(
            provider, standard=standard or (), region=region or (), sector=sector or ()
        )
    emit(
        found,
        as_json,
        lambda: _summaries("Catalog", found, "the catalog is empty: publish a dataset first"),
    )


# Said where content figures would be, to a reader who does not own the dataset.
CONTENT_HIDDEN = (
    "Row counts, sizes, hashes and quality figures are shown to the dataset's provider only."
)


def versions_table(title: str, versions: list[dict[str, Any]]) -> Table:
    """A table of versions, with the content columns only for a reader who owns them,
    and each one's rows-per-unit bound (a private release, public) with its percentile."""
    owned = any(v["sha256"] is not None for v in versions)
    columns = ["v", "title", "published", "rows/unit"]
    if owned:
        columns += ["rows", "rejected", "bytes", "sha256"]
    rows = [
        [v["version"], v["title"], v["created_at"][:19], _bound(v)]
        + ([v["rows"], v["rows_rejected"], v["size_bytes"], v["sha256"]] if owned else [])
        for v in versions
    ]
    return table(title, columns, rows)


def _bound(version: dict[str, Any]) -> str:
    """``11 (p95)``: the bound, and the percentile of rows per unit it estimates."""
    if version.get("unit_bound") is None:
        return "-"
    return f"{version['unit_bound']} (p{round(version['unit_level'] * 100)})"


def _percent(share: Any) -> str:
    return f"{float(share) * 100:.2f} %"


def _render_page(page: dict[str, Any]) -> None:
    standard = page["standard"]
    # Plain text appended, never markup; what a provider typed is escaped.
    head = Text()
    head.append(f"{printable(page['title'])}\n", style="bold")
    head.append(printable(f"{page['dataset']}  (SQL: {page['sql_name']})") + "\n", style="cyan")
    head.append(printable(f"provider {page['provider']} · standard {standard['name']} "))
    head.append(printable(f"{standard['version']}"))
    if standard["privacy_unit"]:
        head.append(printable(f" · privacy unit {standard['privacy_unit']}"))
    if page["regions"]:
        places = ", ".join(f"{r['label']} ({r['code']})" for r in page["regions"])
        head.append("\n" + printable(f"regions {places}"))
    if page["sector"]:
        head.append(printable(f"\nsector {page['sector']['label']} ({page['sector']['code']})"))
    if page["description"]:
        head.append("\n" + printable(page["description"], multiline=True), style="dim")
    columns = [
        [
            c["name"],
            c["type"],
            c["role"],
            "required" if c["required"] else "",
            c.get("codelist") or (" – ".join(str(b) for b in c["bounds"]) if "bounds" in c else ""),
            c["description"],
        ]
        for c in page["schema"]
    ]
    parts: list[Any] = [
        Panel(head, expand=False),
        table(
            "Schema", ["column", "type", "role", "", "code list / bounds", "description"], columns
        ),
        versions_table("Versions", page["versions"]),
    ]
    if page["quality"] is None:
        parts.append(Text(CONTENT_HIDDEN, style="dim"))
        console.print(Group(*parts))
        return
    completeness = page["quality"].get("completeness", {})
    if completeness:
        rows = [[name, _percent(share)] for name, share in completeness.items()]
        parts.append(table("Completeness (newest version)", ["column", "non-empty"], rows))
    validation = page["quality"].get("validation", {})
    if validation:
        counts = [[v["rule"], v["column"], v["count"]] for v in validation.get("violations", [])]
        title = (
            f"Validation: {validation['rows_total']} rows read, {validation['rows_valid']} "
            f"published, {validation['rows_invalid']} quarantined"
        )
        parts.append(
            table(title, ["rule", "column", "rows"], counts)
            if counts
            else Text(printable(title) + ".")
        )
    console.print(Group(*parts))


@catalog_app.command("show")
def show(
    dataset: Annotated[str, typer.Argument(help="The dataset, as <provider>/<dataset>.")],
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Show a dataset's page: schema with roles, standard, versions, and quality.

    Row counts, sizes, hashes and quality figures are shown to the dataset's provider
    and the node's operators only; never a value of an individual row, to anyone.

    Example: entrepot catalog show riverside-hospitals/outpatient-visits
    """

    with session(home, as_) as client:
        page = client.catalog_show(dataset)
    emit(page, as_json, lambda: _render_page(page))


@catalog_app.command("export")
def export(
    format_: Annotated[
        ExportFormat, typer.Option("--format", help="The export format.")
    ] = ExportFormat.DCAT,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="Where the node is reached \\[default: http://HOST:PORT/, or the server's URL "
            "when logged in].",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")
    ] = None,
    home: Home = None,
) -> None:
    """Export the whole catalog as DCAT-3 JSON-LD (datasets, versions, publishers).

    Example: entrepot catalog export --format dcat > catalog.jsonld
    """

    with session(home) as client:
        document = client.catalog_dcat(base_url)
    text = json_text(document) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"[green]wrote[/] {len(document['dcat:dataset'])} datasets to {esc(output)}")


def register(app: typer.Typer) -> None:
    app.add_typer(catalog_app, name="catalog")
