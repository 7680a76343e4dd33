"""What each account's pages show: never a row or an identifier of another's data; every
page usable at a phone's width, and without a serious accessibility fault (axe-core)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The demo's identifiers: patients (all providers), and each provider's visit ids.
IDENTIFIERS = re.compile(r"ZR\d{10}|RV2025\d{6}|HH-25-\d{7}")
OWN = "riverside-hospitals/outpatient-visits"
PHONE = {"width": 390, "height": 844}
# axe-core's impacts that fail a page: all but "minor" (best-practice hints).
FAILING = {"moderate", "serious", "critical"}


def _pages(person: Any, role_pages: tuple[str, ...]) -> list[str]:
    person.go("/")
    links = person.page.locator(".card h2 a").evaluate_all("links => links.map(a => a.pathname)")
    return ["/", "/?q=visits", *links, "/transparency", *role_pages]


@pytest.mark.parametrize(
    ("account", "role_pages"),
    [
        ("lanshan-health-bureau", ("/query", "/usage")),
        ("city-analyst", ("/query",)),
        ("log-auditor", ()),
        ("riverside-admin", ("/provider", "/provider/policy/" + OWN, "/usage")),
        ("node-operator", ("/federation", "/?q=visits&nodes=all")),
    ],
)
def test_no_page_shows_an_identifier_each_fits_a_phone_and_passes_axe(
    person: Any, account: str, role_pages: tuple[str, ...]
) -> None:
    visitor = person(account)
    pages = _pages(visitor, role_pages)
    axe = Axe()
    assert len(pages) >= 7
    visitor.page.set_viewport_size(PHONE)
    for path in pages:
        response = visitor.go(path)
        assert response.status == 200, path
        html = visitor.page.content()
        assert IDENTIFIERS.search(html) is None, path
        # An operator administers the node and sees every version's figures, never a row.
        if (
            account != "node-operator"
            and path.startswith("/datasets/")
            and not path.startswith("/datasets/riverside-")
        ):
            assert visitor.page.locator("meter").count() == 0, path  # not its own data
        width = visitor.page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} is {width} px wide"
        found = axe.run(visitor.page).response["violations"]
        faults = [(v["id"], v["impact"], v["help"]) for v in found if v["impact"] in FAILING]
        assert faults == [], path
    visitor.shot(f"phone-{account}")
