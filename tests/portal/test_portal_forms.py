"""The portal's forms take no more than the API's routes take from the same account: a
form's fields are read by the API's own request models, so a text the API refuses for
its size is refused by the form too, and changes nothing.

No browser is needed: the real app runs on uvicorn on a loopback port, and httpx keeps
the session cookie as a browser would.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from annotated_types import MaxLen
from tests.api.conftest import running
from tests.exchange.logged_world import DATASET, PROVIDER
from tests.exchange.release_world import seed, served_node
from tests.portal.pages import page_csrf, sign_in

from entrepot.api import create_app
from entrepot.exchange import Exchange
from entrepot.exchange.accounts import LOCAL
from entrepot.exchange.node import Node
from entrepot.schemas.policies import PolicyIn

_DOCUMENT = re.compile(r'<textarea id="document"[^>]*>(.*?)</textarea>', re.S)
ADMIN = "riverside-admin"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    with served_node(tmp_path / "node") as opened:
        yield opened


@pytest.fixture
def exchange(node: Node, tmp_path: Path) -> Exchange:
    made = seed(node, tmp_path)
    made.accounts.create(LOCAL, ADMIN, "provider", org=PROVIDER)
    return made


def test_a_policy_longer_than_the_api_takes_is_refused_by_the_editor(
    node: Node, exchange: Exchange
) -> None:
    token = exchange.accounts.issue_token(LOCAL, ADMIN).secret
    most = next(
        m.max_length for m in PolicyIn.model_fields["document"].metadata if isinstance(m, MaxLen)
    )
    bearer = {"Authorization": f"Bearer {token}"}
    with running(create_app(node)) as http:
        http.follow_redirects = False
        assert sign_in(http, token).status_code == 303
        editor = http.get(f"/provider/policy/{DATASET}")
        found = _DOCUMENT.search(editor.text)
        assert found is not None
        # The policy in force, still valid, made too long by a comment alone.
        document = html.unescape(found.group(1)).replace("per_query: 1.0", "per_query: 0.5")
        padded = document + "# " + "x" * (most - len(document)) + "\n"
        assert len(padded) > most
        before = http.get(f"/v1/policies/{DATASET}", headers=bearer).json()
        api = http.put(f"/v1/policies/{DATASET}", json={"document": padded}, headers=bearer)
        assert api.status_code == 400
        page = http.post(
            f"/provider/policy/{DATASET}", data={"document": padded, "csrf": page_csrf(editor)}
        )
        assert page.status_code == 400, page.text[:500]
        assert 'id="policy-problem"' in page.text
        assert f"at most {most} characters" in page.text
        assert "Policy saved" not in page.text
        after = http.get(f"/v1/policies/{DATASET}", headers=bearer).json()
        assert after["digest"] == before["digest"]
        # Within the limit, the same change is saved.
        page = http.post(
            f"/provider/policy/{DATASET}", data={"document": document, "csrf": page_csrf(editor)}
        )
        assert page.status_code == 200, page.text[:500]
        assert "Policy saved" in page.text
