"""`entrepot standard`: the shipped standards and their code lists."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from entrepot import standards
from entrepot.cli._common import Home, Json, console, emit, table

standard_app = typer.Typer(
    help="The common standards datasets are published in, and their code lists.",
    no_args_is_help=True,
)

NameOrPath = Annotated[
    str, typer.Argument(help="A shipped standard (e.g. health.visit) or a Table Schema file.")
]


@standard_app.command("list")
def list_standards(home: Home = None, as_json: Json = False) -> None:
    """List the standards shipped with entrepot.

    Example: entrepot standard list --json
    """
    rows = [standards.get(name) for name in standards.names()]
    data = [
        {
            "name": s.name,
            "title": s.title,
            "version": s.version,
            "columns": len(s.fields),
            "privacy_unit": s.privacy_unit,
        }
        for s in rows
    ]
    emit(
        data,
        as_json,
        lambda: console.print(
            table(
                "Standards",
                ["name", "title", "version", "columns", "privacy unit"],
                [
                    [d["name"], d["title"], d["version"], d["columns"], d["privacy_unit"]]
                    for d in data
                ],
            )
        ),
    )


def _constraints(column: dict[str, Any]) -> str:
    parts = []
    for key, value in column["constraints"].items():
        if value is True:
            parts.append(key)
        elif isinstance(value, list):
            parts.append(f"{key}: {', '.join(map(str, value))}")
        else:
            parts.append(f"{key}: {value}")
    return "\n".join(parts)


@standard_app.command("show")
def show(name: NameOrPath, home: Home = None, as_json: Json = False) -> None:
    """Show a standard's columns: type, role, constraints, bounds and code list.

    Example: entrepot standard show health.visit
    """
    data = standards.get(name).summary()

    def render() -> None:
        console.print(f"[bold]{data['name']}[/] {data['version']}: {data['title']}")
        console.print(data["description"], highlight=False)
        unit = data["privacy_unit"] or "none"
        keys = ", ".join(data["primary_key"]) or "none"
        console.print(f"privacy unit: {unit}; primary key: {keys}")
        rows = [
            [
                c["name"],
                c["type"] + (f" ({c['format']})" if c["format"] else ""),
                c["role"],
                _constraints(c),
                "" if c["bounds"] is None else f"[{c['bounds'][0]:g}, {c['bounds'][1]:g}]",
                c["codelist"] or "",
            ]
            for c in data["fields"]
        ]
        console.print(
            table(None, ["column", "type", "role", "constraints", "bounds", "code list"], rows)
        )
        for key in data["foreign_keys"]:
            console.print(
                f"foreign key: ({', '.join(key['fields'])}) in code list {key['codelist']} "
                f"({', '.join(key['columns'])})"
            )

    emit(data, as_json, render)


@standard_app.command("codes")
def codes(
    name: Annotated[str, typer.Argument(help="A code list, e.g. region.district or sex.")],
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Show a code list: codes, labels and parent codes.

    Example: entrepot standard codes region.city
    """
    listed = standards.codelist(name)
    data = {
        "name": listed.name,
        "codes": [{"code": c, "label": lb, "parent": p} for c, lb, p in listed.rows()],
    }
    emit(
        data,
        as_json,
        lambda: console.print(
            table(
                f"Code list {name}", ["code", "label", "parent"], [list(r) for r in listed.rows()]
            )
        ),
    )


def register(app: typer.Typer) -> None:
    app.add_typer(standard_app, name="standard")
