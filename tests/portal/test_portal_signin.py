"""Signing in, and the forms around it: signing in again from a browser that is already
signed in checks the token pasted on its own, with its scope and the limits on guesses,
never on the strength of the session the browser already holds; and a forged form or
script call whose CSRF token is not ASCII is refused like any other forged one, with rule
``csrf``, never answered with a server error or a dropped connection.

No browser is needed: the real app runs on uvicorn on a loopback port, and httpx keeps
the session cookie as a browser would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.api.conftest import running
from tests.exchange.release_world import CONSUMER, OUTSIDER, seed, served_node
from tests.portal.pages import page_csrf, sign_in

from entrepot.api import create_app
from entrepot.exchange import Exchange
from entrepot.exchange.accounts import LOCAL
from entrepot.exchange.node import Node
from entrepot.portal.session import COOKIE

_RULE = '<code class="rule">csrf</code>'
# Tokens that are not ASCII, by name; a header's bytes are read as Latin-1, so only
# those within it can be a header.
_ODD = {"accented": "é" * 64, "snowman": "\u2603", "last-one-off": "0" * 63 + "é"}
_HEADERS = {name: odd for name, odd in _ODD.items() if max(odd) <= "\xff"}


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    with served_node(tmp_path / "node") as opened:
        yield opened


@pytest.fixture
def exchange(node: Node, tmp_path: Path) -> Exchange:
    return seed(node, tmp_path)


def _signed_in_as(http: httpx.Client) -> str | None:
    """The account the page's header names, or None when the visit is signed out."""
    page = http.get("/transparency")
    if page.status_code == 303:
        return None
    found = re.search(r'<form class="who"[^>]*>\s*<span>([^<]+) <small>', page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


def _wrong(token: str) -> str:
    """``token`` with its secret altered: its id is right, its secret is not."""
    return token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")


def test_a_share_profiles_token_is_refused_by_a_signed_in_browser(
    node: Node, exchange: Exchange
) -> None:
    account = exchange.accounts.issue_token(LOCAL, CONSUMER).secret
    sharing = exchange.sharing.issue_token(exchange.actor(CONSUMER)).secret
    with running(create_app(node)) as http:
        http.follow_redirects = False
        assert sign_in(http, account).status_code == 303
        assert _signed_in_as(http) == CONSUMER
        refused = sign_in(http, sharing)
        assert refused.status_code == 403
        assert '<code class="rule">token_scope</code>' in refused.text
        # The session the browser held goes on; no session of the sharing token was opened.
        assert _signed_in_as(http) == CONSUMER
        assert http.get("/query").status_code == 200


def test_a_signed_in_browser_guessing_tokens_is_held_back_like_a_signed_out_one(
    node: Node, exchange: Exchange
) -> None:
    own = exchange.accounts.issue_token(LOCAL, CONSUMER).secret
    target = exchange.accounts.issue_token(LOCAL, OUTSIDER).secret
    burst = node.settings.auth_failures_burst
    with running(create_app(node)) as http:
        http.follow_redirects = False
        assert sign_in(http, own).status_code == 303
        csrf = page_csrf(http.get("/transparency"))
        answers = [
            http.post("/signin", data={"token": _wrong(target), "csrf": csrf}).status_code
            for _ in range(burst + 3)
        ]
        assert answers[:burst] == [401] * burst
        assert set(answers[burst:]) == {429}
        assert _signed_in_as(http) == CONSUMER


def test_a_signed_in_browser_signs_in_as_the_account_of_the_token_pasted(
    node: Node, exchange: Exchange
) -> None:
    first = exchange.accounts.issue_token(LOCAL, CONSUMER).secret
    second = exchange.accounts.issue_token(LOCAL, OUTSIDER).secret
    with running(create_app(node)) as http:
        http.follow_redirects = False
        assert sign_in(http, first).status_code == 303
        assert sign_in(http, _wrong(second)).status_code == 401
        assert _signed_in_as(http) == CONSUMER
        assert sign_in(http, second).status_code == 303
        assert _signed_in_as(http) == OUTSIDER


def test_signing_in_again_ends_the_session_it_replaces(node: Node, exchange: Exchange) -> None:
    first = exchange.accounts.issue_token(LOCAL, CONSUMER).secret
    second = exchange.accounts.issue_token(LOCAL, OUTSIDER).secret
    with running(create_app(node)) as http:
        http.follow_redirects = False
        assert sign_in(http, first).status_code == 303
        copied = http.cookies[COOKIE]
        assert sign_in(http, second).status_code == 303
        assert _signed_in_as(http) == OUTSIDER
        # A copy of the replaced session's cookie, taken before, is signed out.
        with httpx.Client(base_url=http.base_url, follow_redirects=False) as thief:
            thief.cookies.set(COOKIE, copied)
            assert thief.get("/query").headers["location"].startswith("/signin")
        # The API token the replaced session was opened with lives on.
        me = http.get("/v1/me", headers={"Authorization": f"Bearer {first}"})
        assert me.status_code == 200


@pytest.mark.parametrize("odd", list(_ODD.values()), ids=list(_ODD))
def test_a_form_with_a_token_that_is_not_ascii_is_refused_forcsrf(
    node: Node, exchange: Exchange, odd: str
) -> None:
    token = exchange.accounts.issue_token(LOCAL, CONSUMER).secret
    with running(create_app(node)) as http:
        http.follow_redirects = False
        http.get("/signin")
        refused = http.post("/signin", data={"token": token, "csrf": odd})
        assert refused.status_code == 403
        assert _RULE in refused.text
        assert sign_in(http, token).status_code == 303
        refused = http.post("/signout", data={"csrf": odd})
        assert refused.status_code == 403
        assert _RULE in refused.text
        # Still signed in: the refused sign-out changed nothing.
        assert http.get("/query").status_code == 200


@pytest.mark.parametrize("odd", list(_HEADERS.values()), ids=list(_HEADERS))
def test_a_script_call_with_a_header_that_is_not_ascii_is_refused_forcsrf(
    node: Node, exchange: Exchange, odd: str
) -> None:
    token = exchange.accounts.issue_token(LOCAL, CONSUMER).secret
    with running(create_app(node)) as http:
        http.follow_redirects = False
        assert sign_in(http, token).status_code == 303
        header = {b"X-CSRF-Token": odd.encode("latin-1")}
        refused = http.post("/portal/estimate", json={"sql": "SELECT 1"}, headers=header)
        assert refused.status_code == 403
        assert refused.json()["error"]["rule"] == "csrf"
