"""`entrepot standard`: the standards datasets are published in, and their code lists."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from entrepot.cli._common import Home, Json, cell, console, emit, esc, table
from entrepot.client import Standards, current

T = TypeVar("T")

standard_app = typer.Typer(
    help="The common standards datasets are published in, and their code lists.",
    no_args_is_help=True,
)

NameOrPath = Annotated[
    str,
    typer.Argument(
        help="A standard (e.g. health.visit) or a Table Schema file, which is read on this "
        "machine even when logged in."
    ),
]


@standard_app.command("list")
def list_standards(home: Home = None, as_json: Json = False) -> None:
    """List the standards shipped with entrepot (the server's, when logged in).

    Example: entrepot standard list --json
    """

    data = _shipped(lambda client: client.standards())
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


def _shipped(call: Callable[[Standards], T]) -> T:
    """Standards ship with the package: without a login they need no node, nor a home."""
    remote = current()
    if remote is None:
        from entrepot.client.shipped import ShippedStandards

        return call(ShippedStandards())
    with remote:
        return call(remote)


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

    if Path(name).is_file():
        from entrepot.client.shipped import ShippedStandards

        data = ShippedStandards().standard(name)
    else:
        data = _shipped(lambda client: client.standard(name))

    def render() -> None:
        console.print(f"[bold]{esc(data['name'])}[/] {esc(data['version'])}: {esc(data['title'])}")
        console.print(cell(data["description"], multiline=True), highlight=False)
        unit = data["privacy_unit"] or "none"
        keys = ", ".join(data["primary_key"]) or "none"
        console.print(cell(f"privacy unit: {unit}; primary key: {keys}"))
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
                cell(
                    f"foreign key: ({', '.join(key['fields'])}) in code list {key['codelist']} "
                    f"({', '.join(key['columns'])})"
                )
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

    data = _shipped(lambda client: client.codelist(name))
    emit(
        data,
        as_json,
        lambda: console.print(
            table(
                f"Code list {name}",
                ["code", "label", "parent"],
                [[c["code"], c["label"], c["parent"]] for c in data["codes"]],
            )
        ),
    )


def register(app: typer.Typer) -> None:
    app.add_typer(standard_app, name="standard")
