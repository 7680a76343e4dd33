"""Where signing in sends a browser: back to the page it came from on this site, never to
another one, whatever `next` says (`//evil`, `/\\evil`, `https:evil`, a tab or newline a
browser's URL parser drops, percent-encoded slashes).

A browser reads a `Location` by the WHATWG URL standard, not by Python's `urljoin`: it
drops tabs and newlines anywhere in it, strips control characters and spaces at its
ends, and reads a backslash as a slash in an http(s) URL. :func:`_origin_in_browser`
does the same before resolving, so a target that is a path here but another site there
is caught.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.api.conftest import running
from tests.exchange.release_world import CONSUMER, seed, served_node

from entrepot.api import create_app
from entrepot.exchange.accounts import LOCAL
from entrepot.portal._web import local_path

_CSRF = re.compile(r'<meta name="csrf-token" content="([0-9a-f]{64})">')
_PAGE = "http://portal.test/signin"
_HOME = ("http", "portal.test")
# What open redirects are made of, joined in any order with text of any kind.
_PIECES = st.sampled_from(
    [
        "/",
        "//",
        "\\",
        "\t",
        "\n",
        "\r",
        "\x00",
        " ",
        "%2F",
        "%5C",
        "%09",
        "@",
        ":",
        "https:",
        "http:",
        "evil.example",
        ".",
        "..",
        "?",
        "#",
        "\u3000",
        "\uff0f",
    ]
)
_TARGETS = st.lists(_PIECES | st.text(max_size=4), max_size=8).map("".join)


def _origin_in_browser(location: str) -> tuple[str, str]:
    """The scheme and host a browser goes to for ``location``, read on the sign-in page."""
    read = re.sub("[\t\n\r]", "", location).strip("".join(map(chr, range(0x21))))
    resolved = urlsplit(urljoin(_PAGE, read.replace("\\", "/")))
    return resolved.scheme, resolved.netloc


@settings(max_examples=3000)
@given(_TARGETS)
def test_the_target_kept_is_a_path_of_this_site_as_a_browser_reads_it(target: str) -> None:
    kept = local_path(target)
    assert kept.startswith("/")
    assert _origin_in_browser(kept) == _HOME, repr(kept)


@pytest.mark.parametrize(
    "target", ["/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "/\\evil.example"]
)
def test_a_target_a_browser_reads_as_another_site_is_replaced(target: str) -> None:
    assert local_path(target) == "/"


def test_a_path_of_this_site_is_kept_with_its_query() -> None:
    for target in ("/query", "/?q=café visits&region=910000", "/datasets/a/b#schema"):
        assert local_path(target) == target


@pytest.fixture(scope="module")
def signing_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, str]]:
    """A browser on the live app, and an account's API token to sign in with."""
    folder = tmp_path_factory.mktemp("redirects")
    with served_node(folder / "node") as node:
        exchange = seed(node, folder)
        token = exchange.accounts.issue_token(LOCAL, CONSUMER).secret
        with running(create_app(node)) as http:
            http.follow_redirects = False
            yield http, token


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(target=_TARGETS)
def test_signing_in_never_sends_the_browser_to_another_site(
    signing_in: tuple[httpx.Client, str], target: str
) -> None:
    http, token = signing_in
    form = http.get("/signin", params={"next": target})
    found = _CSRF.search(form.text)
    assert found is not None, form.text[:500]
    signed = http.post("/signin", data={"token": token, "csrf": found.group(1), "next": target})
    assert signed.status_code == 303, signed.text[:500]
    assert _origin_in_browser(signed.headers["location"]) == _HOME, signed.headers["location"]
