"""`entrepot policy`: the analysis rules a provider sets on a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from entrepot.cli._common import As, Home, Json, console, emit, open_node
from entrepot.errors import NotFound
from entrepot.exchange.accounts import LOCAL, Accounts
from entrepot.exchange.policies import Policies, PolicyInfo

policy_app = typer.Typer(
    help="Show or set a dataset's analysis policy (what queries may touch and spend).",
    no_args_is_help=True,
)

Dataset = Annotated[str, typer.Argument(help="The dataset, as provider/dataset.")]


def _render(info: PolicyInfo) -> None:
    origin = f"set by {info.set_by}" if info.explicit else "the default of the standard's roles"
    console.print(f"[bold]{info.dataset}[/] — {origin}\n")
    console.print(info.policy.to_yaml(), highlight=False)


@policy_app.command("show")
def show(dataset: Dataset, home: Home = None, as_json: Json = False) -> None:
    """Show the policy in force on a dataset.

    Example: entrepot policy show riverside-hospitals/outpatient-visits
    """
    with open_node(home) as node:
        info = Policies(node).get(dataset)
    emit(info.to_dict(), as_json, lambda: _render(info))


@policy_app.command("set")
def set_(
    dataset: Dataset,
    file: Annotated[Path, typer.Argument(help="The policy, as YAML.", dir_okay=False)],
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Set a dataset's policy from a YAML file; it also sets the dataset's global ε cap.

    Example: entrepot policy set riverside-hospitals/outpatient-visits policy.yaml
    """
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"no policy file at {file}", hint="check the path") from None
    with open_node(home) as node:
        actor = Accounts(node.db, node.settings).actor(as_) if as_ else LOCAL
        info = Policies(node).set(actor, dataset, text, where=str(file))
    emit(info.to_dict(), as_json, lambda: _render(info))


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")
