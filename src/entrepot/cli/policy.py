"""`entrepot policy`: the analysis rules a provider sets on a dataset."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from entrepot._text import printable
from entrepot.cli._common import As, Home, Json, emit, session
from entrepot.errors import NotFound

policy_app = typer.Typer(
    help="Show or set a dataset's analysis policy (what queries may touch and spend).",
    no_args_is_help=True,
)

Dataset = Annotated[str, typer.Argument(help="The dataset, as provider/dataset.")]


def _policy_file(data: dict[str, Any]) -> str:
    """The policy in force as a file `policy set` reads back: a comment line, then YAML."""
    origin = f"set by {data['set_by']}" if data["explicit"] else "the default of its standard"
    head = f"# The analysis policy of {data['dataset']}: {origin}.\n" + _bound_line(data)
    return head + yaml.safe_dump(data["policy"], sort_keys=False, allow_unicode=True)


def _bound_line(data: dict[str, Any]) -> str:
    """A comment saying which rows-per-unit bound queries on the latest version use."""
    bound = data.get("bound")
    if not bound:
        return ""
    line = f"# Rows per unit on version {bound['version']}: {bound['rows_per_unit']}, "
    spent = f"ε {bound['estimate_epsilon']:g} of the dataset's cap"
    if bound["source"] == "estimate":
        from entrepot.privacy.bounds import percentile

        line += f"estimated privately at publish ({percentile(bound['estimate_level'])}, {spent})"
    elif bound["source"] == "policy" and bound["estimate"] is not None:
        line += f"set by the policy (the private estimate: {bound['estimate']}, {spent})"
    elif bound["source"] == "policy":
        line += "set by the policy"
    else:
        line += "the default: the version has no estimate"
    return line + ".\n"


def _render(data: dict[str, Any]) -> None:
    # Plain text, not Rich: redirected to a file, the YAML must not be wrapped or styled.
    # YAML escapes control characters itself; printable() is the net under the comment.
    sys.stdout.write(printable(_policy_file(data), multiline=True))


def _notes() -> dict[str, str]:
    """What each key means, from the example in the policy module's own docstring."""
    found: dict[str, str] = {}
    for key, note in re.findall(r"^ {4,}(\w+):[^#\n]*#\s*(.+)$", _policy_doc(), re.M):
        found.setdefault(key, note.strip())
    return found


def _commented(dataset: str, origin: str, document: dict[str, Any]) -> str:
    """``document`` as a policy file whose every line is commented out, with notes."""
    notes = _notes()
    lines = [
        f"# The analysis policy of {dataset}: {origin}.",
        "# Every key is optional and each line shows its default. To change one, remove",
        "# its '# ' (and its parents'), edit the value, then set the file:",
        f"#   entrepot policy set {dataset} policy.yaml",
        "# docs/privacy.md explains the keys, the roles and the limits.",
        "",
    ]
    dumped = yaml.safe_dump(document, sort_keys=False, allow_unicode=True).splitlines()
    documented = {line.split(":")[0].strip() for line in dumped if not line.startswith(" ")}
    for line in dumped:
        key = line.strip().split(":")[0]
        note = notes.get(key) if ":" in line and not line.lstrip().startswith("-") else None
        lines.append(f"# {line}" + (f"  # {note}" if note else ""))
    top = re.findall(r"^ {4}(\w+):[^#\n]*#\s*(.+)$", _policy_doc(), re.M)
    for key, note in top:
        # A key whose default is "unset" (it follows the data) is not in the document.
        if key not in documented:
            lines.append(f"# {key}:  # unset by default; {note.strip()}")
    return "\n".join(lines) + "\n"


def _policy_doc() -> str:
    from entrepot.privacy import policy

    return policy.__doc__ or ""


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

    Only the dataset's provider sets it: logged in, with one of its accounts; on the
    node's home, --as it (or as the home's holder). An operator is refused.

    Example: entrepot policy set riverside-hospitals/outpatient-visits policy.yaml
    """
    try:
        text = _document(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"no policy file at {file}", hint="check the path") from None

    with session(home, as_) as client:
        data = client.set_policy(dataset, text, where=str(file))
    emit(data, as_json, lambda: _render(data))


def _document(text: str) -> str:
    """The policy a file holds: YAML, or the JSON `policy show --json` prints (JSON is YAML)."""
    if not text.lstrip().startswith("{"):
        return text
    try:
        shown = json.loads(text)
    except (ValueError, RecursionError):
        return text  # the policy parser names what is wrong with it
    if isinstance(shown, dict) and "dataset" in shown and isinstance(shown.get("policy"), dict):
        # As YAML, not JSON text: PyYAML reads JSON's 1e-10 as a string, not a number.
        return yaml.safe_dump(shown["policy"], sort_keys=False, allow_unicode=True)
    return text


@policy_app.command("init")
def init(
    dataset: Dataset,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write to this file \\[default: stdout].", dir_okay=False),
    ] = None,
    as_: As = None,
    home: Home = None,
) -> None:
    """Print a policy file for a dataset: every key with its default, commented out.

    The defaults are those the dataset's standard implies (its column roles), as the
    node applies them when no policy is set. Uncomment and edit, then `policy set`.

    Example: entrepot policy init riverside-hospitals/outpatient-visits > policy.yaml
    """
    with session(home, as_) as client:
        data = client.policy(dataset)
        standard = client.catalog_show(dataset)["standard"]["name"] if data["explicit"] else None
    origin, document = "the defaults of its standard", data["policy"]
    if standard is not None:
        from entrepot import standards
        from entrepot.privacy.policy import default_policy

        try:
            document = default_policy(standards.get(standard)).to_dict()
        except NotFound:
            origin = f"the policy in force (its standard {standard} is not shipped)"
    text = printable(_commented(data["dataset"], origin, document), multiline=True)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")
