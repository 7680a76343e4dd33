"""`entrepot dataset validate`: the report as a table or JSON, exit 0 / 1 / 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from entrepot.cli.app import app
from entrepot.errors import ExitCode

FIXTURES = Path(__file__).parent.parent / "fixtures" / "standards"
HEADER = "visit_id,patient_id,visit_date,district,sex,age_band,diagnosis_group,cost,duration_hours"
GOOD = "V1,P-0001,2025-03-01,910101,1,25-34,X,120.5,1.5"

runner = CliRunner()


def entrepot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrepot", *args], capture_output=True, text=True, check=False
    )


def test_invalid_rows_exit_5_with_the_golden_json_report() -> None:
    result = runner.invoke(
        app,
        [
            "dataset",
            "validate",
            str(FIXTURES / "riverside.csv"),
            "--standard",
            "health.visit",
            "--mapping",
            str(FIXTURES / "riverside.yaml"),
            "--json",
        ],
    )
    assert result.exit_code == ExitCode.INVALID
    golden = json.loads((FIXTURES / "riverside.report.json").read_text(encoding="utf-8"))
    assert json.loads(result.output) == golden


def test_a_valid_file_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    path.write_text(f"{HEADER}\n{GOOD}\n")
    result = runner.invoke(app, ["dataset", "validate", str(path), "-s", "health.visit"])
    assert result.exit_code == 0, result.output
    assert "1 rows, 1 valid, 0 invalid" in result.output


def test_the_table_shows_lines_rules_and_values(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "dataset",
            "validate",
            str(FIXTURES / "riverside.csv"),
            "-s",
            "health.visit",
            "-m",
            str(FIXTURES / "riverside.yaml"),
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == ExitCode.INVALID
    assert "8 rows, 2 valid, 6 invalid" in result.output
    assert "codelist:district" in result.output
    assert "district=0999" in result.output


def test_a_table_schema_file_as_the_standard(tmp_path: Path) -> None:
    schema = tmp_path / "my-schema.json"
    schema.write_text(
        json.dumps({"fields": [{"name": "n", "type": "integer", "constraints": {"maximum": 9}}]})
    )
    data = tmp_path / "data.csv"
    data.write_text("n\n1\n10\n")
    result = runner.invoke(app, ["dataset", "validate", str(data), "-s", str(schema), "--json"])
    assert result.exit_code == ExitCode.INVALID
    assert json.loads(result.output)["violations"] == [
        {"rule": "maximum", "column": "n", "count": 1}
    ]


def test_bad_input_exits_5_with_one_paragraph_and_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text(f"{HEADER}\n{GOOD}\nV2,P-0002\n")
    result = entrepot("dataset", "validate", str(path), "--standard", "health.visit")
    assert result.returncode == ExitCode.INVALID
    assert f"{path}, line 3: this row has 2 values but the header has 9 columns" in " ".join(
        result.stderr.split()
    )
    assert "hint:" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_input_as_json(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    result = entrepot("dataset", "validate", str(path), "-s", "health.visit", "--json")
    assert result.returncode == ExitCode.INVALID
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "invalid_input"
    assert "empty" in error["message"]


def test_a_mapping_to_a_missing_column_exits_5(tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text("columns:\n  cost: {from: fee_fen, unit: fen_to_yuan}\n")
    data = tmp_path / "v.csv"
    data.write_text(f"{HEADER}\n{GOOD}\n")
    result = entrepot("dataset", "validate", str(data), "-s", "health.visit", "-m", str(mapping))
    assert result.returncode == ExitCode.INVALID
    message = " ".join(result.stderr.split())
    assert "reads column 'fee_fen'" in message
    assert str(mapping) in message
    assert "visit_id, patient_id" in message


def test_help_documents_exit_codes_and_an_example() -> None:
    result = runner.invoke(app, ["dataset", "validate", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.split())
    assert "Exit code 0 when every row is valid, 5 when some rows break the standard" in text
    assert "Example: entrepot dataset validate" in text
