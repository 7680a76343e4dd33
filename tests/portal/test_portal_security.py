"""The portal under attack: forged forms (CSRF), a planted session (fixation), framing,
the content security policy, and script smuggled in through every text a page shows.

Requests that need no browser go to the live server with httpx; the script injection
tests run in Chromium, where a script that ran would open a dialog.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from playwright.sync_api import expect
from tests.portal.pages import page_csrf

from entrepot.client.local import LocalClient
from entrepot.exchange import Exchange, Node
from entrepot.exchange.accounts import LOCAL
from entrepot.portal import ROUTERS
from entrepot.portal.session import COOKIE
from entrepot.settings import Settings

pytestmark = pytest.mark.browser

DATASET = "riverside-hospitals/outpatient-visits"
RULE = '<code class="rule">csrf</code>'


def _routes(method: str) -> set[str]:
    """The portal's paths that answer ``method``, from its routers."""
    return {
        route.path
        for routes in ROUTERS
        for route in routes.routes
        if isinstance(route, APIRoute) and method in route.methods
    }


class Browserless:
    """An account's session held by httpx: its cookie and the pages' CSRF token."""

    def __init__(self, url: str, token: str | None) -> None:
        self.http = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
        self.csrf = page_csrf(self.http.get("/signin"))
        if token is not None:
            signed = self.http.post("/signin", data={"token": token, "csrf": self.csrf})
            assert signed.status_code == 303, signed.text[:500]
            self.csrf = page_csrf(self.http.get("/transparency"))


@pytest.fixture(scope="module")
def sessions(served: Any) -> Iterator[dict[str | None, Browserless]]:
    made = {
        account: Browserless(served.url, None if account is None else served.tokens[account])
        for account in (None, "lanshan-health-bureau", "riverside-admin", "log-auditor")
    }
    yield made
    for one in made.values():
        one.http.close()


# Each POST route of the portal: who may use it, a concrete path, and what it sends:
# "form" (urlencoded), "upload" (multipart) or "json" (a script's call). The body is
# harmless with a valid token (it fails further on), so the valid token is tried too.
FORMS: dict[str, tuple[str | None, str, str, dict[str, str]]] = {
    "/signin": (None, "/signin", "form", {"token": ""}),
    "/signout": ("lanshan-health-bureau", "/signout", "form", {}),
    "/datasets/{provider}/{dataset}/access": (
        "lanshan-health-bureau",
        f"/datasets/{DATASET}/access",
        "form",
        {"purpose": "", "epsilon": "1", "until": "2027-01-01"},
    ),
    "/provider/requests/{request_id}/grant": (
        "riverside-admin",
        "/provider/requests/REQ-999999/grant",
        "form",
        {"epsilon": "1"},
    ),
    "/provider/requests/{request_id}/refuse": (
        "riverside-admin",
        "/provider/requests/REQ-999999/refuse",
        "form",
        {"reason": "no"},
    ),
    "/provider/grants/{grant_id}/revoke": (
        "riverside-admin",
        "/provider/grants/GRANT-999999/revoke",
        "form",
        {"reason": "no"},
    ),
    "/provider/publish": ("riverside-admin", "/provider/publish", "upload", {"title": "x"}),
    "/provider/policy/{provider}/{dataset}": (
        "riverside-admin",
        f"/provider/policy/{DATASET}",
        "form",
        {"document": ""},
    ),
    "/transparency/head": ("log-auditor", "/transparency/head", "form", {}),
    "/portal/estimate": ("lanshan-health-bureau", "/portal/estimate", "json", {"sql": ""}),
    "/portal/query": ("lanshan-health-bureau", "/portal/query", "json", {"sql": ""}),
}


def _send(
    session: Browserless, path: str, kind: str, body: dict[str, str], token: str | None, how: str
) -> httpx.Response:
    """POST ``body`` with ``token`` as the form's field or as the scripts' header."""
    headers = {} if token is None or how == "field" else {"X-CSRF-Token": token}
    fields = dict(body) if token is None or how == "header" else {**body, "csrf": token}
    if kind == "json":
        return session.http.post(path, json=fields, headers=headers)
    if kind == "upload":
        return session.http.post(path, data=fields, files={"mapping": ("", b"")}, headers=headers)
    return session.http.post(path, data=fields, headers=headers)


def _refused_forcsrf(answer: httpx.Response) -> bool:
    if answer.status_code != 403:
        return False
    if answer.headers["content-type"].startswith("application/json"):
        return bool(answer.json()["error"].get("rule") == "csrf")
    return RULE in answer.text


def test_every_post_route_of_the_portal_is_listed_here() -> None:
    # A new form must be added to FORMS, and so to the CSRF test below.
    assert _routes("POST") == set(FORMS)


@pytest.mark.parametrize("route", sorted(FORMS))
def test_every_form_is_refused_without_its_own_session_s_token(
    route: str, sessions: dict[str | None, Browserless], served: Any
) -> None:
    account, path, kind, body = FORMS[route]
    session = sessions[account]
    other = Browserless(served.url, served.tokens["city-analyst"])  # another session's token
    forged = {
        "none": None,
        "empty": "",
        "made up": "0" * 64,
        "another session's": other.csrf,
        "the anonymous session's": sessions[None].csrf,
    }
    other.http.close()
    if account is None:
        forged.pop("the anonymous session's")
    for how in ("field", "header"):
        for name, token in forged.items():
            answer = _send(session, path, kind, body, token, how)
            assert _refused_forcsrf(answer), f"{route} with {name} token as {how}: {answer}"
    # The session's own token passes the check (the harmless body then fails further on).
    if route != "/signout":
        how = "header" if kind == "json" else "field"
        answer = _send(session, path, kind, body, session.csrf, how)
        assert not _refused_forcsrf(answer), route


def test_a_refused_form_changes_nothing(sessions: dict[str | None, Browserless]) -> None:
    consumer = sessions["lanshan-health-bureau"]
    before = consumer.http.get(f"/datasets/{DATASET}").text.count("<li><strong>REQ-")
    fields = {"purpose": "public-health-surveillance", "epsilon": "1", "until": "2027-06-30"}
    answer = consumer.http.post(f"/datasets/{DATASET}/access", data=fields)
    assert _refused_forcsrf(answer)
    after = consumer.http.get(f"/datasets/{DATASET}").text.count("<li><strong>REQ-")
    assert after == before
    # Signed in still: a refused sign-out does not sign out.
    assert _refused_forcsrf(consumer.http.post("/signout", data={"csrf": "0" * 64}))
    assert consumer.http.get("/query").status_code == 200


def test_signing_in_starts_a_new_session_and_the_planted_one_stays_anonymous(
    served: Any,
) -> None:
    with httpx.Client(base_url=served.url, follow_redirects=False, timeout=30) as http:
        planted_token = page_csrf(http.get("/signin"))
        planted = http.cookies[COOKIE]
        signed = http.post(
            "/signin", data={"token": served.tokens["city-analyst"], "csrf": planted_token}
        )
        assert signed.status_code == 303
        assert http.cookies[COOKIE] != planted
        # The CSRF token is the keyed hash of the session id: a new one means a new id.
        token = page_csrf(http.get("/query"))
        assert token != planted_token
        stale = http.post(
            "/portal/estimate", json={"sql": ""}, headers={"X-CSRF-Token": planted_token}
        )
        assert _refused_forcsrf(stale)
        # Whoever planted the cookie before sign-in holds an anonymous session still.
        with httpx.Client(base_url=served.url, follow_redirects=False, timeout=30) as attacker:
            attacker.cookies.set(COOKIE, planted)
            assert attacker.get("/query").headers["location"].startswith("/signin")
            assert planted_token in attacker.get("/signin").text
        # Signing out starts yet another session id.
        assert http.post("/signout", data={"csrf": token}).status_code == 303
        assert page_csrf(http.get("/signin")) not in (token, planted_token)


def _replayed(url: str, cookie: str) -> httpx.Response:
    """A visit to the query console with a copy of ``cookie``, from another client."""
    with httpx.Client(base_url=url, follow_redirects=False, timeout=30) as thief:
        thief.cookies.set(COOKIE, cookie)
        return thief.get("/query")


def test_a_copied_cookie_is_signed_out_by_the_sign_out(served: Any) -> None:
    with httpx.Client(base_url=served.url, follow_redirects=False, timeout=30) as http:
        csrf = page_csrf(http.get("/signin"))
        signed = http.post("/signin", data={"token": served.tokens["city-analyst"], "csrf": csrf})
        assert signed.status_code == 303
        copied = http.cookies[COOKIE]
        assert served.tokens["city-analyst"] not in copied
        assert _replayed(served.url, copied).status_code == 200
        token = page_csrf(http.get("/query"))
        assert http.post("/signout", data={"csrf": token}).status_code == 303
    assert _replayed(served.url, copied).headers["location"].startswith("/signin")
    # The API token itself lives on: a sign-out ends a session, not the account's token.
    with httpx.Client(base_url=served.url, timeout=30) as api:
        me = api.get("/v1/me", headers={"Authorization": f"Bearer {served.tokens['city-analyst']}"})
    assert me.status_code == 200


def test_revoking_the_api_token_signs_out_its_sessions(served: Any) -> None:
    node = Node.open(Settings(home=served.home))
    try:
        accounts = Exchange(node).accounts
        _info, issued = accounts.create(LOCAL, "short-lived", "consumer", org="city-analytics")
    finally:
        node.close()
    cookies = []
    for _ in range(2):
        with httpx.Client(base_url=served.url, follow_redirects=False, timeout=30) as http:
            csrf = page_csrf(http.get("/signin"))
            assert http.post("/signin", data={"token": issued.secret, "csrf": csrf}).is_redirect
            cookies.append(http.cookies[COOKIE])
    assert all(_replayed(served.url, c).status_code == 200 for c in cookies)
    with httpx.Client(base_url=served.url, timeout=30) as api:
        revoked = api.post(
            f"/v1/tokens/{issued.info.token_id}/revoke",
            headers={"Authorization": f"Bearer {issued.secret}"},
        )
    assert revoked.status_code == 200, revoked.text
    for cookie in cookies:
        assert _replayed(served.url, cookie).headers["location"].startswith("/signin")


def test_a_share_profiles_token_does_not_sign_in(served: Any) -> None:
    node = Node.open(Settings(home=served.home))
    try:
        exchange = Exchange(node)
        issued = exchange.sharing.issue_token(exchange.accounts.actor("lanshan-health-bureau"))
    finally:
        node.close()
    with httpx.Client(base_url=served.url, follow_redirects=False, timeout=30) as http:
        csrf = page_csrf(http.get("/signin"))
        refused = http.post("/signin", data={"token": issued.secret, "csrf": csrf})
        assert refused.status_code == 403
        assert '<code class="rule">token_scope</code>' in refused.text
        assert "lanshan" not in refused.text
        assert http.get("/query").headers["location"].startswith("/signin")
        # The account's own token still signs in.
        csrf = page_csrf(http.get("/signin"))
        signed = http.post(
            "/signin", data={"token": served.tokens["lanshan-health-bureau"], "csrf": csrf}
        )
        assert signed.status_code == 303


def test_a_forged_or_altered_cookie_is_an_anonymous_visit(served: Any) -> None:
    with httpx.Client(base_url=served.url, follow_redirects=False, timeout=30) as http:
        http.get("/signin")
        sealed = http.cookies[COOKIE]
        altered = sealed[:-2] + ("AA" if not sealed.endswith("AA") else "BB")
        for cookie in (altered, "x" * 5000, json.dumps({"s": "1", "t": "t", "e": 9e9})):
            http.cookies.clear()
            http.cookies.set(COOKIE, cookie)
            assert http.get("/query").headers["location"].startswith("/signin")


# Every GET route, with a concrete path; and pages a visit may end on besides.
PAGES = {
    "/": "/",
    "/signin": "/signin",
    "/datasets/{provider}/{dataset}": f"/datasets/{DATASET}",
    "/query": "/query",
    "/provider": "/provider",
    "/provider/policy/{provider}/{dataset}": f"/provider/policy/{DATASET}",
    "/transparency": "/transparency",
    "/usage": "/usage",
    "/usage.csv": "/usage.csv",
    "/federation": "/federation",
    "/portal/audit/proof/{index}": "/portal/audit/proof/0",
    "/portal/static/{name}": "/portal/static/portal.js",
}
ERROR_PAGES = ("/datasets/riverside-hospitals/no-such-data", "/transparency?since=yesterday")
# A script only from the portal's own files: no inline script, no eval, no other origin.
SCRIPT_SRC = re.compile(r"(?:^|;)\s*script-src ([^;]*)")


def test_every_get_route_is_listed_here() -> None:
    assert _routes("GET") == set(PAGES)


@pytest.mark.parametrize(
    "account", [None, "lanshan-health-bureau", "riverside-admin", "log-auditor"]
)
def test_every_page_forbids_framing_and_inline_script(
    account: str | None, sessions: dict[str | None, Browserless]
) -> None:
    session = sessions[account]
    for path in (*PAGES.values(), *ERROR_PAGES):
        answer = session.http.get(path)
        if path.startswith("/portal/static/"):
            assert answer.headers["x-content-type-options"] == "nosniff"
            continue
        headers = answer.headers
        assert headers["x-frame-options"] == "DENY", path
        policy = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy, path
        scripts = SCRIPT_SRC.search(policy)
        assert scripts is not None, path
        assert scripts.group(1).split() == ["'self'"], path
        assert "default-src 'self'" in policy
        if headers.get("content-type", "").startswith("text/html"):
            # The pages need no exemption: no inline script, no handler attribute.
            assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", answer.text) is None, path
            assert re.search(r"<[^>]+\son[a-z]+\s*=", answer.text) is None, path


# -- script smuggled in through text --------------------------------------------------


def _payload(where: str) -> str:
    return f"<script>alert('{where}')</script><img src=x onerror=alert('{where}')>"


# CSP violations are recorded by a script the browser runs before the page's own
# (Playwright's init script, which the page's policy does not govern).
WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
  (event) => window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`));
"""
HOSTILE_SCRIPTS = """() => [...document.querySelectorAll("script")]
  .filter((s) => !(s.getAttribute("src") || "").startsWith("/portal/static/")).length"""
HANDLERS = """() => [...document.querySelectorAll("*")]
  .filter((e) => [...e.attributes].some((a) => a.name.startsWith("on"))).length"""
MAPPING = """\
standard: health.visit
columns:
  visit_id: "<script>alert('mapping')</script>"
  patient_id: Patient
  visit_date: {from: Day, date_format: "%d/%m/%Y"}
  district: District
  sex: {from: Sex, codes: {M: "1", F: "2"}}
  age_band: Age
  diagnosis_group: Chapter
  cost: Cost
  duration_hours: Hours
"""


def _inert(visitor: Any, *texts: str) -> None:
    """Each of ``texts`` is on the page as text, and no script of it ran or was blocked."""
    page = visitor.page
    page.wait_for_load_state()
    for text in texts:
        expect(page.locator("main")).to_contain_text(text)
    assert page.evaluate(HOSTILE_SCRIPTS) == 0, page.url
    assert page.evaluate(HANDLERS) == 0, page.url
    assert page.evaluate("window.__violations") == [], page.url
    assert visitor.errors == [], page.url


@pytest.fixture(scope="module")
def hostile(served: Any) -> str:
    """A provider whose registered name is a script, and its account's token."""
    node = Node.open(Settings(home=served.home))
    try:
        exchange = Exchange(node)
        LocalClient(exchange, LOCAL).add_provider("hostile-clinic", _payload("provider"))
        _info, issued = exchange.accounts.create(
            LOCAL, "hostile-admin", "provider", org="hostile-clinic"
        )
    finally:
        node.close()
    return issued.secret


def _watched(person: Any, token: str) -> Any:
    visitor = person(None)
    visitor.context.add_init_script(WATCH)
    visitor.sign_in(token)
    return visitor


def test_script_in_a_provider_name_title_mapping_purpose_or_note_is_only_text(
    person: Any, served: Any, hostile: str, tmp_path: Path
) -> None:
    clinic = _watched(person, hostile)
    page = clinic.page
    lines = ["<script>alert('mapping')</script>,Patient,Day,District,Sex,Age,Chapter,Cost,Hours"]
    lines += [
        f"H{i:05d},P-{i:05d},{1 + i % 28:02d}/03/2025,910101,M,25-34,XI,9.5,1" for i in range(30)
    ]
    raw, mapping, bad = tmp_path / "raw.csv", tmp_path / "mapping.yaml", tmp_path / "bad.yaml"
    raw.write_text("\n".join(lines) + "\n", encoding="utf-8")
    mapping.write_text(MAPPING, encoding="utf-8")
    bad.write_text(MAPPING.replace("visit_id:", "'<script>alert(\"key\")</script>':"), "utf-8")

    clinic.go("/provider")
    _inert(clinic)
    # A mapping naming a column that is not the standard's: refused, the name as text.
    page.get_by_label("Raw file").set_input_files(str(raw))
    page.get_by_label("Mapping onto the standard").set_input_files(str(bad))
    page.get_by_label("Title", exact=True).fill(_payload("title"))
    page.get_by_label("Dataset name").fill("hostile-visits")
    page.get_by_role("button", name="Check and publish").click()
    expect(page.locator("#publish-result [role=alert]")).to_contain_text('<script>alert("key")')
    _inert(clinic)
    # A mapping whose raw column is a script: published, the title as text everywhere.
    page.get_by_label("Mapping onto the standard").set_input_files(str(mapping))
    page.get_by_role("button", name="Check and publish").click()
    expect(page.locator("#publish-result .notice")).to_contain_text("hostile-clinic/hostile-visits")
    _inert(clinic)

    analyst = _watched(person, served.tokens["city-analyst"])
    analyst.go("/?q=hostile")
    _inert(analyst, _payload("provider"), _payload("title"))
    analyst.go("/datasets/hostile-clinic/hostile-visits")
    _inert(analyst, _payload("provider"), _payload("title"))
    # A purpose that is not the vocabulary's: refused, and shown as text in the refusal.
    form = analyst.page.locator("form.stack")
    analyst.page.get_by_label("Purpose").evaluate(
        "(select, value) => { select.options[0].value = value; select.value = value; }",
        _payload("purpose"),
    )
    analyst.page.get_by_label("Last day of use").fill("2027-06-30")
    analyst.page.get_by_label("Note to the provider (optional)").fill(_payload("note"))
    form.get_by_role("button", name="Request access").click()
    expect(analyst.page.get_by_role("alert")).to_contain_text("<script>alert('purpose')")
    _inert(analyst)
    analyst.page.get_by_label("Purpose").select_option("public-health-surveillance")
    analyst.page.get_by_label("Last day of use").fill("2027-06-30")
    analyst.page.get_by_label("Note to the provider (optional)").fill(_payload("note"))
    form.get_by_role("button", name="Request access").click()
    expect(analyst.page.get_by_role("status")).to_contain_text("sent to the provider")
    _inert(analyst)

    clinic.go("/provider")
    _inert(clinic, _payload("note"), _payload("title"))
    clinic.go("/datasets/hostile-clinic/hostile-visits")
    _inert(clinic, _payload("provider"), _payload("title"))
    clinic.go("/transparency?dataset=hostile-clinic/hostile-visits")
    _inert(clinic)
    clinic.go("/?q=" + "<script>alert('search')</script>")
    _inert(clinic, "<script>alert('search')</script>")
    clinic.shot("script-as-text")
