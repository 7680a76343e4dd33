"""`entrepot standard list / show / codes`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from entrepot.cli.app import app
from entrepot.errors import ExitCode

runner = CliRunner()


def test_list_names_every_shipped_standard() -> None:
    result = runner.invoke(app, ["standard", "list", "--json"])
    assert result.exit_code == 0, result.output
    names = [s["name"] for s in json.loads(result.output)]
    assert {"health.visit", "mobility.presence", "payments.transaction", "org.registry"} <= set(
        names
    )


def test_list_renders_a_table_for_people() -> None:
    result = runner.invoke(app, ["standard", "list"], env={"COLUMNS": "160"})
    assert result.exit_code == 0
    assert "Outpatient visit" in result.output


def test_show_gives_types_roles_constraints_bounds_and_code_lists() -> None:
    result = runner.invoke(app, ["standard", "show", "health.visit", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["privacy_unit"] == "patient_id"
    links = {f["name"]: f["link_key"] for f in shown["fields"] if f["link_key"]}
    assert links == {"patient_id": "resident-number"}
    cost = next(f for f in shown["fields"] if f["name"] == "cost")
    assert cost == {
        "name": "cost",
        "type": "number",
        "format": None,
        "role": "measure",
        "title": "Cost (yuan)",
        "description": "Total billed cost of the visit in yuan.",
        "constraints": {"required": True, "minimum": 0, "maximum": 1000000},
        "bounds": [0.0, 5000.0],
        "codelist": None,
        "link_key": None,
    }
    table = runner.invoke(app, ["standard", "show", "health.visit"], env={"COLUMNS": "200"})
    assert "region.district" in table.output
    assert "[0, 5000]" in table.output


def test_show_reads_a_table_schema_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"name": "mine", "fields": [{"name": "n", "type": "integer"}]}))
    result = runner.invoke(app, ["standard", "show", str(path), "--json"])
    assert json.loads(result.output)["fields"][0]["type"] == "integer"


def test_codes_lists_a_code_list_with_parents() -> None:
    result = runner.invoke(app, ["standard", "codes", "region.district", "--json"])
    codes = json.loads(result.output)["codes"]
    assert codes[0] == {"code": "910101", "label": "Yunping Old Town", "parent": "910100"}


def test_unknown_standard_is_one_paragraph_and_exit_4() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "entrepot", "standard", "show", "health.vist"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == ExitCode.NOT_FOUND
    assert "no standard named 'health.vist'" in result.stderr
    assert "health.visit" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_command_documents_an_example() -> None:
    for command in ("list", "show", "codes"):
        result = runner.invoke(app, ["standard", command, "--help"], env={"COLUMNS": "200"})
        assert "Example: entrepot standard" in result.output, command
