"""A refusal's hint names the request's parameter: the API as its field, the CLI as its flag."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from tests.api.remote import Served
from tests.api.remote import entrepot as run_cli

import entrepot
import entrepot.errors
from entrepot.errors import InvalidInput, from_body, param

if TYPE_CHECKING:
    from tests.api.conftest import World

DATASET = "riverside-hospitals/outpatient-visits"


def test_the_api_names_the_field_and_the_cli_its_flag(
    world: World, api: httpx.Client, tmp_path: Path
) -> None:
    # The dataset follows health.visit: a version in another standard is refused.
    source = tmp_path / "moves.csv"
    source.write_text("cell_id,hour\nC1,3\n", encoding="utf-8")
    form = {"standard": "mobility.presence", "title": "Visits", "dataset": "outpatient-visits"}
    answered = api.post(
        "/v1/datasets",
        data=form,
        files={"file": ("moves.csv", source.read_bytes(), "text/csv")},
        headers=world.auth("provider"),
    )
    assert answered.status_code == 409, answered.text
    error = answered.json()["error"]
    assert error["hint"] == (
        "publish with `standard` health.visit, or under another `dataset` slug"
    )
    assert error["parameters"] == ["dataset", "standard"]
    assert "--" not in error["message"] + error["hint"]
    # The same refusal on the command line, logged in to the server: the flags.
    served = Served(str(api.base_url), world, tmp_path)
    run = run_cli(
        served.login("provider"),
        *("dataset", "publish", str(source), "--standard", "mobility.presence"),
        *("--title", "Visits", "--dataset", "outpatient-visits"),
    )
    assert "publish with --standard health.visit, or under another --dataset slug" in " ".join(
        run.stderr.split()
    ), run.stderr


def test_a_parameter_survives_the_round_trip_through_the_wire() -> None:
    error = InvalidInput(
        f"{param('max_queries')} must be at least 1",
        hint=f"e.g. {param('epsilon')} 2, or act ({param('as')} ORG)",
    )
    body = error.to_dict()["error"]
    assert body["message"] == "`max_queries` must be at least 1"
    # `as` is no field of the API: a client acts as its token's organization.
    assert body["hint"] == "e.g. `epsilon` 2, or act (a token of ORG)"
    assert body["parameters"] == ["epsilon", "max_queries"]
    again = from_body(body)
    assert (again.message, again.hint) == (
        error.message,
        f"e.g. {param('epsilon')} 2, or act (a token of ORG)",
    )
    assert "parameters" not in again.details
    assert str(again) == body["message"]


# Modules whose errors never cross the API: the doors themselves, and what only a
# process on the node's machine meets (its home, its database URL, files it reads).
_LOCAL_ONLY = (
    "cli/",
    "client/",
    "demo/",
    "portal/",
    "transparency/",
    "exchange/node.py",
    "exchange/move.py",
    "standards/mapping.py",
)
# A flag outside backquotes (a whole command in backquotes is an instruction to run).
_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*")


def _texts(node: ast.expr) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_texts(v) for v in node.values)
    if isinstance(node, ast.BinOp):
        return _texts(node.left) + _texts(node.right)
    return " "


def test_no_error_the_api_can_answer_names_a_command_line_flag() -> None:
    package = Path(entrepot.__file__).parent
    errors = {name for name in dir(entrepot.errors) if name[0].isupper()}
    found = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).as_posix()
        if relative.startswith(_LOCAL_ONLY):
            continue
        for call in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
                continue
            if call.func.id not in errors:
                continue
            parts = [*call.args[:1], *(k.value for k in call.keywords if k.arg == "hint")]
            for part in parts:
                text = re.sub(r"`[^`]*`", "", _texts(part))
                if _FLAG.search(text):
                    found.append(f"{relative}:{call.lineno}: {text.strip()}")
    assert found == [], "write the parameter with entrepot.errors.param:\n" + "\n".join(found)
