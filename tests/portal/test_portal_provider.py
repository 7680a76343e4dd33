"""The provider's pages in a real browser: publish with a mapping and a bad row, the
access inbox (grant, refuse, revoke), and the policy editor's errors at their key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

DATASET = "riverside-hospitals/outpatient-visits"
NOTE = "weekly <img src=x onerror=alert(1)> counts"
MAPPING = """\
standard: health.visit
columns:
  visit_id: Visit
  patient_id: Patient
  visit_date: {from: Day, date_format: "%d/%m/%Y"}
  district: District
  sex: {from: Sex, codes: {M: "1", F: "2"}}
  age_band: Age
  diagnosis_group: Chapter
  cost: Cost
  duration_hours: Hours
"""


def _file(folder: Path, bad: bool) -> Path:
    lines = ["Visit,Patient,Day,District,Sex,Age,Chapter,Cost,Hours"]
    for i in range(40):
        lines.append(f"W{i:05d},P-{i:05d},{1 + i % 28:02d}/03/2025,910101,M,25-34,XI,120.50,1.5")
    if bad:
        lines.append("W99999,P-99999,31/02/2025,999999,M,25-34,XI,120.50,1.5")
    path = folder / ("bad.csv" if bad else "good.csv")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_file_with_a_bad_row_shows_its_reason_then_publishes_the_rest(
    person: Any, tmp_path: Path
) -> None:
    riverside = person("riverside-admin")
    page = riverside.page
    riverside.go("/provider")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    page.get_by_label("Raw file").set_input_files(str(_file(tmp_path, bad=True)))
    page.get_by_label("Mapping onto the standard").set_input_files(str(mapping))
    page.get_by_label("Standard", exact=True).select_option("health.visit")
    page.get_by_label("Title", exact=True).fill("Walk-in visits <script>alert(1)</script>")
    page.get_by_label("Dataset name").fill("walk-in-visits")
    page.get_by_label("Regions the dataset covers").select_option(["910100", "910200"])
    page.get_by_label("Sector", exact=True).select_option("Q")
    page.get_by_role("button", name="Check and publish").click()
    rejected = page.get_by_role("region", name="Rejected rows")
    expect(rejected).to_contain_text("codelist:district")
    expect(rejected).to_contain_text("type:visit_date")
    expect(rejected.locator(".bad-value").first).to_be_visible()
    riverside.shot("publish-report")
    page.get_by_role("button", name="Publish the valid rows, quarantine the rest").click()
    done = page.locator("#publish-result .notice")
    expect(done).to_contain_text("Version 1 of riverside-hospitals/walk-in-visits published")
    expect(done).to_contain_text("40 rows, 1 quarantined")
    # The title is shown as text wherever it appears, never run.
    riverside.go("/?q=walk")
    expect(page.get_by_role("link", name=re.compile("Walk-in visits <script>"))).to_be_visible()
    riverside.shot("catalog-escaped-title")
    # The scope chosen in the form is the dataset's, and a facet of the catalog.
    riverside.go("/?region=910200&sector=Q")
    expect(page.locator(".card")).to_have_count(1)
    expect(page.locator(".card")).to_contain_text("Yunping City, Baishi City")
    expect(page.locator(".card")).to_contain_text("Health and social work")


def test_the_provider_grants_a_request_and_revokes_it(person: Any) -> None:
    analyst = person("city-analyst")
    analyst.go(f"/datasets/{DATASET}")
    analyst.page.get_by_label("Purpose").select_option("public-health-surveillance")
    analyst.page.get_by_label("Privacy budget (ε) you ask for").fill("2")
    analyst.page.get_by_label("Last day of use").fill("2027-06-30")
    analyst.page.get_by_label("Note to the provider (optional)").fill(NOTE)
    analyst.page.get_by_role("button", name="Request access").click()
    request = re.search(r"REQ-\d+", analyst.page.get_by_role("status").inner_text())
    assert request is not None
    ident = request.group(0)

    riverside = person("riverside-admin")
    page = riverside.page
    riverside.go("/provider")
    # The consumer's note is shown as text, never run.
    expect(page.locator(f"#{ident}")).to_contain_text(NOTE)
    granting = page.get_by_role("form", name=f"Grant {ident}")
    granting.get_by_label("ε to grant").fill("1.5")
    granting.get_by_label("Most queries (optional)").fill("20")
    riverside.shot("inbox")
    granting.get_by_role("button", name=f"Grant {ident}").click()
    expect(page.get_by_role("status")).to_contain_text("granted to city-analytics: ε 1.5")
    grant = re.search(r"GRANT-\d+", page.get_by_role("status").inner_text())
    assert grant is not None

    analyst.go("/query")
    expect(analyst.page.locator(f"li.budget:has-text('{grant.group(0)}')")).to_contain_text(
        "1.5 left"
    )

    revoking = page.get_by_role("form", name=f"Revoke {grant.group(0)}")
    revoking.get_by_placeholder("reason for revoking").fill("study ended")
    revoking.get_by_role("button", name=f"Revoke {grant.group(0)}").click()
    expect(page.get_by_role("status")).to_contain_text(f"{grant.group(0)} revoked")


def test_the_provider_refuses_a_request_with_a_reason(person: Any) -> None:
    # The demo's dataset: the published one may be in another worker's server.
    analyst = person("city-analyst")
    analyst.go(f"/datasets/{DATASET}")
    analyst.page.get_by_label("Last day of use").fill("2027-06-30")
    analyst.page.get_by_role("button", name="Request access").click()
    ident = re.search(r"REQ-\d+", analyst.page.get_by_role("status").inner_text())
    assert ident is not None
    riverside = person("riverside-admin")
    riverside.go("/provider")
    refusing = riverside.page.get_by_role("form", name=f"Refuse {ident.group(0)}")
    refusing.get_by_label("Reason for refusing").fill("not for this purpose")
    refusing.get_by_role("button", name=f"Refuse {ident.group(0)}").click()
    expect(riverside.page.get_by_role("status")).to_contain_text(f"{ident.group(0)} refused")
    analyst.go(f"/datasets/{DATASET}")
    expect(analyst.page.locator(f"#access-h ~ ul li:has-text('{ident.group(0)}')")).to_contain_text(
        "refused"
    )


def test_a_policy_error_is_shown_at_its_key(person: Any) -> None:
    riverside = person("riverside-admin")
    page = riverside.page
    riverside.go("/provider")
    page.get_by_role("link", name="Outpatient visits").click()
    editor = page.get_by_label("Policy (YAML)")
    text = editor.input_value()
    assert "per_query: 1.0" in text
    editor.fill(text.replace("per_query: 1.0", "per_query: -2"))
    page.get_by_role("button", name="Save the policy").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("epsilon.per_query")
    line = text.splitlines().index("  per_query: 1.0") + 1
    expect(alert).to_contain_text(f"At line {line}")
    assert page.get_by_label("Policy (YAML)").get_attribute("aria-invalid") == "true"
    riverside.shot("policy-error")
    page.get_by_label("Policy (YAML)").fill(text.replace("per_query: 1.0", "per_query: 0.8"))
    page.get_by_role("button", name="Save the policy").click()
    expect(page.get_by_role("status")).to_contain_text("Policy saved")
