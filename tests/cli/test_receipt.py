"""`entrepot receipt verify` works offline, with only the node's public key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from entrepot.cli.app import app
from entrepot.errors import ExitCode
from entrepot.exchange.node import Node
from entrepot.settings import Settings
from entrepot.transparency import DatasetVersion, QueryOpening, ReceiptFields, issue_receipt


def entrepot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrepot", *args], capture_output=True, text=True, check=False
    )


def test_receipt_verify_accepts_the_original_and_names_what_was_altered(tmp_path: Path) -> None:
    node = Node.init(Settings(home=tmp_path / "node"))
    fields = ReceiptFields.build(
        "query",
        opening=QueryOpening.fresh("SELECT COUNT(*) FROM visits"),
        answer=b'{"count": 42}',
        epsilon=0.25,
        datasets=[DatasetVersion("riverside/visits", "2026-01", "ab" * 32)],
    )
    index = node.log.append(fields.entry("acme", purpose="planning"))
    receipt = tmp_path / "receipt.json"
    receipt.write_bytes(issue_receipt(node.log, index, fields).to_bytes())
    pub = node.path("keys", "node.pub")
    node.close()
    # Nothing of the node is needed but its public key.
    ok = CliRunner().invoke(
        app, ["receipt", "verify", str(receipt), "--node-key", str(pub), "--json"]
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["statement"]["epsilon"] == "0.25"
    body = json.loads(receipt.read_text())
    body["statement"]["epsilon"] = "0.025"
    receipt.write_text(json.dumps(body))
    bad = entrepot("receipt", "verify", str(receipt), "--node-key", pub.read_text().strip())
    assert bad.returncode == ExitCode.VERIFY_FAILED
    assert "log entry records another epsilon" in bad.stderr
    assert "Traceback" not in bad.stderr
    as_json = entrepot("receipt", "verify", str(receipt), "--node-key", str(pub), "--json")
    assert json.loads(as_json.stdout)["error"]["part"] == "log entry"
