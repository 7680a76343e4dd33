"""The transparency page in a real browser: the timeline, and proofs checked by the
browser's own WebCrypto, which a tampered proof, head or receipt fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

DATASET = "riverside-hospitals/outpatient-visits"


def _flip(hex_text: str) -> str:
    return ("0" if hex_text[0] != "0" else "1") + hex_text[1:]


def test_the_timeline_filters_by_dataset_and_kind(person: Any) -> None:
    auditor = person("log-auditor")
    page = auditor.page
    auditor.go("/transparency")
    page.get_by_label("Dataset").select_option(DATASET)
    page.get_by_label("What").select_option("query")
    page.get_by_role("button", name="Filter").click()
    entries = page.locator(".timeline .entry")
    assert entries.count() >= 2  # the demo's answer and its refusal
    for text in entries.all_inner_texts():
        assert text.startswith("#")
        assert "query" in text
        assert DATASET in text
    expect(page.locator(".timeline")).to_contain_text("rule identifier")
    auditor.shot("log-filtered")


def test_an_entry_and_the_head_verify_in_the_browser(person: Any) -> None:
    analyst = person("city-analyst")
    page = analyst.page
    analyst.go(f"/datasets/{DATASET}")
    page.get_by_role("link", name="access history").click()
    first = page.locator(".timeline .entry").first
    first.get_by_role("button").click()
    expect(first.locator(".proof")).to_contain_text("✓ verified")
    page.get_by_role("button", name="Verify the head's signature").click()
    expect(page.locator("#head-result")).to_contain_text("✓ verified")
    analyst.shot("log-verified")


def test_a_tampered_proof_or_head_fails_in_the_browser(person: Any) -> None:
    auditor = person("log-auditor")
    page = auditor.page
    tampering: dict[str, Any] = {}

    def tamper(route: Any) -> None:
        proof = route.fetch().json()
        tampering["change"](proof)
        route.fulfill(json=proof)

    page.route("**/portal/audit/proof/*", tamper)
    auditor.go("/transparency")
    entry = page.locator(".timeline .entry").nth(1)
    cases = [
        (lambda p: p["inclusion"].__setitem__(0, _flip(p["inclusion"][0])), "signed root"),
        (lambda p: p.__setitem__("entry", p["entry"].replace('"kind"', '"kind" ')), "signed root"),
        (lambda p: p["head"].__setitem__("root", _flip(p["head"]["root"])), "signature"),
        (lambda p: p["head"].__setitem__("size", p["head"]["size"] + 1), "signature"),
    ]
    for change, failure in cases:
        tampering["change"] = change
        entry.get_by_role("button").click()
        expect(entry.locator(".proof")).to_contain_text("✗ failed")
        expect(entry.locator(".proof")).to_contain_text(failure)
    auditor.shot("log-tampered")
    # A key other than the node's: nothing verifies, whatever the server says.
    tampering["change"] = lambda p: None
    page.get_by_label("Node public key you trust").fill("ab" * 32)
    entry.get_by_role("button").click()
    expect(entry.locator(".proof")).to_contain_text("another key")


def test_a_receipt_verifies_and_a_tampered_one_fails(
    person: Any, served: Any, tmp_path: Path
) -> None:
    auditor = person("log-auditor")
    page = auditor.page
    auditor.go("/transparency")
    receipt = served.home / "demo" / "receipt.json"
    page.get_by_label("Receipt file (JSON)").set_input_files(str(receipt))
    expect(page.locator("#receipt-result")).to_contain_text("✓ verified")
    body = json.loads(receipt.read_text())
    body["statement"]["epsilon"] = "0.1"
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(body))
    page.get_by_label("Receipt file (JSON)").set_input_files(str(forged))
    expect(page.locator("#receipt-result")).to_contain_text("✗ failed")
