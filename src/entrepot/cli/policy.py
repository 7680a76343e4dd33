"""`entrepot policy`: the analysis rules a provider sets on a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from entrepot.cli._common import As, Home, Json, cell, console, emit, esc, session
from entrepot.errors import NotFound

policy_app = typer.Typer(
    help="Show or set a dataset's analysis policy (what queries may touch and spend).",
    no_args_is_help=True,
)

Dataset = Annotated[str, typer.Argument(help="The dataset, as provider/dataset.")]


def _render(data: dict[str, Any]) -> None:
    origin = (
        f"set by {esc(data['set_by'])}"
        if data["explicit"]
        else "the default of the standard's roles"
    )
    console.print(f"[bold]{esc(data['dataset'])}[/] — {origin}\n", highlight=False)
    # YAML escapes control characters itself; as plain text, brackets are not markup.
    console.print(
        cell(yaml.safe_dump(data["policy"], sort_keys=False), multiline=True), highlight=False
    )


@policy_app.command("show")
def show(dataset: Dataset, home: Home = None, as_json: Json = False) -> None:
    """Show the policy in force on a dataset (policies are public to every account).

    Example: entrepot policy show riverside-hospitals/outpatient-visits
    """

    with session(home) as client:
        data = client.policy(dataset)
    emit(data, as_json, lambda: _render(data))


@policy_app.command("set")
def set_(
    dataset: Dataset,
    file: Annotated[Path, typer.Argument(help="The policy, as YAML.", dir_okay=False)],
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Set a dataset's policy from a YAML file; it also sets the dataset's global ε cap.

    Logged in, the account must be the dataset's provider.

    Example: entrepot policy set riverside-hospitals/outpatient-visits policy.yaml
    """
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"no policy file at {file}", hint="check the path") from None

    with session(home, as_) as client:
        data = client.set_policy(dataset, text, where=str(file))
    emit(data, as_json, lambda: _render(data))


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")
