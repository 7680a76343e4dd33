"""The portal as a script sees it, without a browser: httpx keeps the session cookie, and
each form and script call carries the CSRF token the pages hold."""

from __future__ import annotations

import re
from typing import Any

import httpx

CSRF = re.compile(r'<meta name="csrf-token" content="([0-9a-f]{64})">')


def page_csrf(page: httpx.Response) -> str:
    """The CSRF token ``page`` holds for its forms and scripts."""
    found = CSRF.search(page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


def sign_in(http: httpx.Client, token: str) -> httpx.Response:
    """Post ``token`` to the sign-in form with this browser's own CSRF token."""
    return http.post("/signin", data={"token": token, "csrf": page_csrf(http.get("/signin"))})


class Signed:
    """An account's session held by httpx, with the pages' CSRF token."""

    def __init__(self, url: str, token: str) -> None:
        self.http = httpx.Client(base_url=url, follow_redirects=False, timeout=60)
        signed = sign_in(self.http, token)
        assert signed.status_code == 303, signed.text[:500]
        self.csrf = page_csrf(self.http.get("/transparency"))

    def form(self, path: str, **fields: Any) -> httpx.Response:
        return self.http.post(path, data={**fields, "csrf": self.csrf})

    def script(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.http.post(path, json=body, headers={"X-CSRF-Token": self.csrf})
