"""Portal tests drive Debian's Chromium (Playwright) against a real `entrepot serve`.

One demo exchange is built per test session and copied for each module, which serves
its copy on a free loopback port; each module shares one browser, and each role signs
in in a browser context of its own (its own cookies).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.test_server import ENTREPOT, free_port, stop, wait_healthy

from entrepot.demo import run as run_demo
from entrepot.exchange import Exchange, Node
from entrepot.exchange.accounts import LOCAL
from entrepot.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Accounts the tests sign in with, besides the demo's consumer: name -> (role, org).
ACCOUNTS: dict[str, tuple[str, str | None]] = {
    "riverside-admin": ("provider", "riverside-hospitals"),
    "city-analyst": ("consumer", "city-analytics"),
    "log-auditor": ("auditor", "public-auditor"),
    "node-operator": ("operator", None),
}
CONSUMER = "lanshan-health-bureau"


@dataclass
class Served:
    """A served demo exchange: its URL, home, and a token per account."""

    url: str
    home: Path
    tokens: dict[str, str] = field(default_factory=dict)
    shots: Path = Path()


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo exchange, built once, with a provider, a second consumer and an auditor."""
    home = tmp_path_factory.mktemp("portal") / "exchange"
    run_demo(home, scale=0.1, fresh=True)
    tokens = {CONSUMER: (home / "demo" / "consumer.token").read_text().strip()}
    node = Node.open(Settings(home=home))
    try:
        accounts = Exchange(node).accounts
        for name, (role, org) in ACCOUNTS.items():
            _info, issued = accounts.create(LOCAL, name, role, org=org)
            tokens[name] = issued.secret
    finally:
        node.close()
    (home.parent / "tokens.json").write_text(json.dumps(tokens))
    return home


@pytest.fixture(scope="module")
def served(demo_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A copy of the demo exchange served by `entrepot serve` on a free port."""
    if not CHROMIUM.exists():
        pytest.skip("Chromium is absent: run `make system-deps` (tools/system-deps.sh)")
    copy = tmp_path_factory.mktemp("served") / "exchange"
    shutil.copytree(demo_home, copy)
    tokens = json.loads((demo_home.parent / "tokens.json").read_text())
    log = copy.parent / "serve.log"
    port = free_port()
    with log.open("w") as out:
        process = subprocess.Popen(
            [*ENTREPOT, "serve", "--home", str(copy), "--port", str(port), "--query-workers", "1"],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        yield Served(url, copy, tokens, tmp_path_factory.mktemp("screenshots"))
        assert process.poll() is None, f"the server died:\n{log.read_text()[-3000:]}"
    finally:
        stop(process)
    # The access log names routes: no token, no query string, ever.
    written = log.read_text()
    assert "method=GET route=/" in written
    for token in tokens.values():
        assert token not in written


@pytest.fixture(scope="module")
def browser(served: Served) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=ARGS, headless=True
        )
        yield launched
        launched.close()


class Person:
    """One account in a browser context of its own, signed in to the portal."""

    def __init__(self, browser: Any, exchange: Served, account: str | None) -> None:
        self.exchange = exchange
        self.context = browser.new_context(viewport={"width": 1200, "height": 900})
        self.context.set_default_timeout(30_000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        # A dialog is what injected script would open first: none may ever appear.
        self.page.on("dialog", self._dialog)
        if account is not None:
            self.sign_in(exchange.tokens[account])

    def _dialog(self, dialog: Any) -> None:
        self.errors.append(f"a {dialog.type} dialog opened: {dialog.message}")
        dialog.dismiss()

    def go(self, path: str) -> Any:
        return self.page.goto(self.exchange.url + path)

    def sign_in(self, token: str) -> None:
        self.go("/signin")
        self.page.get_by_label("API token").fill(token)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_load_state()

    def shot(self, name: str) -> Path:
        path = self.exchange.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        assert self.errors == [], f"script errors: {self.errors}"
        self.context.close()


@pytest.fixture(scope="module")
def person(browser: Any, served: Served) -> Iterator[Any]:
    """``person(account)``: a signed-in browser context; closed with the module."""
    made: list[Person] = []

    def make(account: str | None) -> Person:
        made.append(Person(browser, served, account))
        return made[-1]

    yield make
    for one in made:
        one.close()
