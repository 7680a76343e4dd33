"""The catalog, a dataset's page, sign-in and requesting access, in a real browser."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from entrepot.exchange import Exchange, Node
from entrepot.exchange.accounts import LOCAL
from entrepot.settings import Settings

pytestmark = pytest.mark.browser

DATASET = "riverside-hospitals/outpatient-visits"


def test_a_visitor_is_sent_to_sign_in_and_a_bad_token_is_told_why(person: Any) -> None:
    visitor = person(None)
    visitor.go("/")
    assert visitor.page.url.endswith("/signin?next=/")
    visitor.page.get_by_label("API token").fill("ent_000000000000_" + "x" * 43)
    visitor.page.get_by_role("button", name="Sign in").click()
    alert = visitor.page.get_by_role("alert")
    assert "not valid" in alert.inner_text()
    assert visitor.page.url.endswith("/signin")


def test_the_session_cookie_is_http_only_strict_and_renewed_at_sign_in(
    person: Any, served: Any
) -> None:
    visitor = person(None)
    visitor.go("/signin")
    [before] = visitor.context.cookies()
    visitor.sign_in(served.tokens["city-analyst"])
    [after] = visitor.context.cookies()
    assert after["httpOnly"]
    assert after["sameSite"] == "Strict"
    assert before["value"] != after["value"]
    assert served.tokens["city-analyst"] not in after["value"]
    assert served.tokens["city-analyst"] not in visitor.page.url
    # The cookie from before sign-in is still anonymous: planting it gains nothing.
    planted = httpx.get(
        served.url + "/", cookies={"entrepot_session": before["value"]}, follow_redirects=False
    )
    assert planted.status_code == 303
    assert planted.headers["location"].startswith("/signin")


def test_a_consumer_finds_a_dataset_by_search_and_facet(person: Any) -> None:
    analyst = person("city-analyst")
    page = analyst.page
    analyst.go("/")
    page.get_by_label("Search titles, descriptions and columns").fill("visits")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"q=visits"))
    expect(page.locator(".card")).to_have_count(2)
    page.get_by_role("checkbox", name=re.compile("Riverside Hospitals")).check()
    page.wait_for_url(re.compile(r"provider=riverside-hospitals"))
    assert page.locator(".card").count() == 1
    assert "groups under 50 hidden" in page.locator(".card .policy").inner_text()
    analyst.shot("catalog-search")
    page.get_by_role("link", name="Outpatient visits").click()
    assert page.get_by_role("heading", name="Outpatient visits", level=1).is_visible()
    schema = page.get_by_role("region", name="Schema table")
    patient = schema.get_by_role("row", name=re.compile("patient_id"))
    assert "identifier" in patient.inner_text()
    assert "One query spends at most ε 1" in page.locator(".plain").first.inner_text()
    # Content figures are the provider's: another account sees none.
    assert page.locator("meter").count() == 0


def test_a_consumer_narrows_the_catalog_by_region_and_sector(person: Any) -> None:
    analyst = person("city-analyst")
    page = analyst.page
    analyst.go("/")
    facets = page.locator(".facets")
    expect(facets.get_by_role("group", name="Region")).to_be_visible()
    expect(facets.get_by_role("group", name="Sector")).to_be_visible()
    page.get_by_role("checkbox", name=re.compile("Qinghe Province")).check()
    page.wait_for_url(re.compile(r"region=920000"))
    titles = sorted(page.locator(".card h2").all_inner_texts())
    assert titles == [
        "Card and mobile payments",
        "Clinic visits",
        "Phone presence per district and hour",
    ]
    page.get_by_role("checkbox", name=re.compile("Health and social work")).check()
    page.wait_for_url(re.compile(r"sector=Q"))
    expect(page.locator(".card")).to_have_count(1)
    card = page.locator(".card").inner_text()
    assert "Clinic visits" in card
    assert "Qinghe Province" in card
    assert "Health and social work" in card
    # The counts are of the whole catalog: another region can still be ticked.
    assert page.get_by_role("checkbox", name=re.compile("Lanshan Province")).is_visible()
    analyst.shot("catalog-region-sector")
    page.get_by_role("link", name="Clinic visits").click()
    facts = page.locator("dl.facts").inner_text()
    assert "Qinghe Province (920000)" in facts
    assert "Health and social work (Q)" in facts


def test_a_consumer_requests_access_and_sees_it_pending(person: Any) -> None:
    analyst = person("city-analyst")
    page = analyst.page
    analyst.go(f"/datasets/{DATASET}")
    page.get_by_label("Purpose").select_option("public-health-surveillance")
    page.get_by_label("Privacy budget (ε) you ask for").fill("2")
    page.get_by_label("Last day of use").fill("2027-06-30")
    page.get_by_label("Note to the provider (optional)").fill("weekly district counts")
    page.get_by_role("button", name="Request access").click()
    status = page.get_by_role("status")
    assert re.search(r"REQ-\d+ sent to the provider", status.inner_text())
    assert "requested" in page.locator("#access-h ~ ul").inner_text()
    analyst.shot("access-requested")


def test_a_request_with_an_empty_budget_is_refused_at_its_field(person: Any) -> None:
    analyst = person("city-analyst")
    page = analyst.page
    analyst.go(f"/datasets/{DATASET}")
    page.get_by_label("Privacy budget (ε) you ask for").fill("0")
    page.get_by_label("Last day of use").fill("2027-06-30")
    # The browser's own check is bypassed: the server's refusal is what is tested.
    page.locator("form.stack").evaluate("form => form.noValidate = true")
    page.get_by_role("button", name="Request access").click()
    assert "epsilon" in page.get_by_role("alert").inner_text()


def test_the_owner_sees_completeness_bars_of_each_version(person: Any) -> None:
    provider = person("riverside-admin")
    provider.go(f"/datasets/{DATASET}")
    meters = provider.page.locator("meter")
    assert meters.count() == 9
    assert "quarantined" in provider.page.get_by_role("region", name="Versions").inner_text()
    provider.shot("dataset-owner")


def test_a_form_without_its_csrf_token_is_refused(person: Any) -> None:
    analyst = person("city-analyst")
    analyst.go(f"/datasets/{DATASET}")
    answer = analyst.context.request.post(
        analyst.exchange.url + f"/datasets/{DATASET}/access",
        form={"purpose": "public-health-surveillance", "epsilon": "1", "until": "2027-01-01"},
    )
    assert answer.status == 403
    assert "security token" in answer.text()


def test_pages_forbid_framing_and_inline_script(person: Any) -> None:
    analyst = person("city-analyst")
    response = analyst.go("/")
    headers = response.headers
    assert headers["x-frame-options"] == "DENY"
    policy = headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy


def test_revoking_the_token_ends_its_session(person: Any, served: Any) -> None:
    node = Node.open(Settings(home=served.home))
    try:
        accounts = Exchange(node).accounts
        issued = accounts.issue_token(LOCAL, "city-analyst")
        analyst = person(None)
        analyst.sign_in(issued.secret)
        assert analyst.go("/").url.endswith("/")
        accounts.revoke_token(LOCAL, issued.info.token_id)
    finally:
        node.close()
    analyst.go(f"/datasets/{DATASET}")
    assert "/signin?next=" in analyst.page.url


def test_signing_out_ends_the_session(person: Any) -> None:
    analyst = person("city-analyst")
    analyst.go("/")
    analyst.page.get_by_role("button", name="Sign out").click()
    assert analyst.page.url.endswith("/signin")
    analyst.go("/")
    assert "/signin?next=" in analyst.page.url
