"""The query console in a real browser: the expected error before running, the answer
with its error bars, the receipt, the budget, and refusals with their rule."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from entrepot.transparency import load_verify_key, verify_receipt

pytestmark = pytest.mark.browser

TABLE = "riverside_hospitals.outpatient_visits"
# Two of the sex code list's groups hold every visit: their counts stand far above the noise.
COUNT = f"SELECT sex, COUNT(*) AS visits FROM {TABLE} GROUP BY sex"


def _ask(page: Any, sql: str, epsilon: str) -> None:
    page.get_by_label("SQL").fill(sql)
    page.get_by_label("ε to spend", exact=True).fill(epsilon)


def test_the_expected_error_shows_before_running_and_matches_the_answer(
    person: Any, served: Any
) -> None:
    bureau = person("lanshan-health-bureau")
    page = bureau.page
    bureau.go("/query")
    budget = page.locator("li.budget").first
    left_before = budget.locator(".left").inner_text()
    _ask(page, COUNT, "0.4")
    expected = page.locator(".expected[data-aggregate=visits]")
    expected.wait_for()
    expect(page.locator("#estimate")).to_contain_text("at ε 0.4")
    halfwidth = float(expected.get_attribute("data-halfwidth") or "nan")
    with page.expect_response("**/portal/query") as answered:
        page.get_by_role("button", name="Run the query").click()
    result = answered.value.json()
    page.locator("svg.chart").wait_for()
    rows = result["answer"]["rows"]
    assert page.locator("svg.chart .error-bar").count() == len(rows) > 0
    # The intervals the answer carries are those announced before it ran: a count's high
    # end lies the half-width above its value (its low end may be cut at 0).
    counted = [row["values"][0] for row in rows if row["values"][0][0] > 0]
    assert counted, rows
    for value, _low, high in counted:
        assert high - value == pytest.approx(halfwidth)
    assert result["epsilon_spent"] == pytest.approx(0.4)
    assert budget.locator(".left").inner_text() != left_before
    region = page.get_by_role("region", name="Answer table")
    shown = region.get_by_role("row")
    assert shown.count() == len(rows) + 1
    # what bounding removed (from this answer, or the version's rows where it could put
    # nothing back), and each group with it put back where the answer gives it
    told = {"answer": "removed an estimated visits", "version": "of the version's rows"}
    expect(page.locator("#removed")).to_contain_text(told[result["answer"]["removed_of"]])
    put = [row["asked"][0] for row in rows if row.get("asked") and row["asked"][0]]
    header = region.get_by_role("columnheader", name="visits, removed put back")
    expect(header).to_have_count(1 if put else 0)
    bureau.shot("console-answer")

    with page.expect_download() as downloaded:
        page.get_by_role("link", name="Download the signed receipt").click()
    receipt = json.loads(Path(downloaded.value.path()).read_text())
    key = load_verify_key((served.home / "keys" / "node.pub").read_text(), where="node.pub")
    checked = verify_receipt(receipt, key)
    assert checked.index == result["receipt"]["log"]["index"]


def test_a_refused_query_shows_its_rule_and_hint(person: Any) -> None:
    bureau = person("lanshan-health-bureau")
    page = bureau.page
    bureau.go("/query")
    _ask(page, f"SELECT patient_id, COUNT(*) AS n FROM {TABLE} GROUP BY patient_id", "0.5")
    page.locator("#estimate .problem").wait_for()
    assert "identifier" in page.locator("#estimate .rule").inner_text()
    page.get_by_role("button", name="Run the query").click()
    refusal = page.locator("#answer .problem")
    refusal.wait_for()
    assert refusal.locator(".rule").inner_text() == "identifier"
    assert "COUNT(DISTINCT patient_id)" in refusal.locator(".hint").inner_text()
    bureau.shot("console-refused")


def test_an_epsilon_above_the_policy_is_refused_before_running(person: Any) -> None:
    bureau = person("lanshan-health-bureau")
    page = bureau.page
    bureau.go("/query")
    _ask(page, COUNT, "5")
    expect(page.locator("#estimate .rule")).to_have_text("epsilon_cap")


def test_the_console_is_for_consumers(person: Any) -> None:
    provider = person("riverside-admin")
    response = provider.go("/query")
    assert response.status == 403
    assert re.search("has no use for this page", provider.page.content())


def test_the_month_s_usage_shows_and_downloads_as_csv(person: Any) -> None:
    bureau = person("lanshan-health-bureau")
    page = bureau.page
    bureau.go("/usage")
    line = page.get_by_role("region", name=re.compile("lanshan-health-bureau")).get_by_role(
        "row", name=re.compile("GRANT-1 .*aggregate-query")
    )
    expect(line).to_contain_text("riverside-hospitals/outpatient-visits")
    with page.expect_download() as downloaded:
        page.get_by_role("link", name="Download as CSV").click()
    text = Path(downloaded.value.path()).read_text(encoding="utf-8")
    assert "GRANT-1" in text
    assert downloaded.value.suggested_filename.startswith("usage-")


def test_the_keyboard_reaches_the_content_first(person: Any) -> None:
    bureau = person("lanshan-health-bureau")
    page = bureau.page
    bureau.go("/query")
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Skip to content")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile("#main$"))
    page.get_by_label("SQL").focus()
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_attribute("id", "epsilon")


def test_the_answer_shows_what_bounding_removed_put_back(person: Any) -> None:
    # Riverside bounds each patient to one visit: about half of the demo's rows are
    # bounded away, a removed total told from zero in every answer at ε 1
    riverside = person("riverside-admin")
    riverside.go("/provider")
    riverside.page.get_by_role("link", name="Outpatient visits").click()
    editor = riverside.page.get_by_label("Policy (YAML)")
    editor.fill(editor.input_value().replace("rows_per_unit: auto", "rows_per_unit: 1"))
    riverside.page.get_by_role("button", name="Save the policy").click()
    expect(riverside.page.get_by_role("status")).to_contain_text("Policy saved")
    bureau = person("lanshan-health-bureau")
    page = bureau.page
    bureau.go("/query")
    _ask(page, f"SELECT COUNT(*) AS visits FROM {TABLE}", "1")
    with page.expect_response("**/portal/query") as answered:
        page.get_by_role("button", name="Run the query").click()
    body = answered.value.json()
    (row,) = body["answer"]["rows"]
    value, low, high = row["asked"][0]
    region = page.get_by_role("region", name="Answer table")
    expect(region.get_by_role("columnheader", name="visits, removed put back")).to_have_count(1)
    expect(page.locator("#removed")).to_contain_text("Removed put back")
    cells = region.locator("tbody tr td")
    # no key: the value and its interval, then the value put back and its interval
    assert float(cells.nth(2).inner_text().replace(",", "")) == pytest.approx(value, rel=1e-3)
    assert value > 1.5 * row["values"][0][0]
    assert low <= value
    assert high is None or value <= high
    bureau.shot("console-put-back")
