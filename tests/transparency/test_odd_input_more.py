"""Odd input to the log's HTTP surfaces is refused with a 4xx that says what and why.

Real nodes served by uvicorn on loopback: the audit routes' ``since`` filter, and the
C2SP witness route of a node that has a peer.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.api.conftest import running
from tests.federation.nodes import federation_node

from entrepot.api import create_app
from entrepot.exchange import Exchange
from entrepot.exchange.accounts import LOCAL, Accounts
from entrepot.exchange.node import Node
from entrepot.federation.witness import SUBMIT_PATH
from entrepot.transparency import make_entry
from entrepot.transparency.notes import Checkpoint, Note, checkpoint_origin, sign_note


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, str]]:
    """A node with a few entries, served on loopback, and an auditor's token."""
    node = federation_node(tmp_path_factory.mktemp("since"), "a")
    accounts = Accounts(node.db, node.settings, log=node.log)
    _info, issued = accounts.create(LOCAL, "auditor-1", "auditor")
    node.log.sign_head()
    with running(create_app(node)) as client:
        yield client, issued.secret
    node.close()


@pytest.mark.parametrize(
    "since", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:30:00+00:31"]
)
def test_a_since_that_leaves_the_calendar_in_utc_is_a_400(
    served: tuple[httpx.Client, str], since: str
) -> None:
    client, token = served
    answer = client.get(
        "/v1/audit/entries",
        params={"since": since},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 400, answer.text
    message = answer.json()["error"]["message"]
    assert "outside the years 1 to 9999" in message
    assert since in message


def test_a_since_inside_the_calendar_still_filters(served: tuple[httpx.Client, str]) -> None:
    client, token = served
    auth = {"Authorization": f"Bearer {token}"}
    early = client.get(
        "/v1/audit/entries", params={"since": "0001-01-01T05:00:00+01:00"}, headers=auth
    )
    late = client.get(
        "/v1/audit/entries", params={"since": "9999-12-30T00:00:00-01:00"}, headers=auth
    )
    assert early.status_code == late.status_code == 200
    assert early.json()["total"] >= 1
    assert late.json()["total"] == 0


@dataclass
class Witnessed:
    """Node b witnesses node a's log; the test signs checkpoints with a's key."""

    log: Node
    url: str


@pytest.fixture(scope="module")
def witnessed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Witnessed]:
    tmp = tmp_path_factory.mktemp("witness")
    a, b = federation_node(tmp, "a"), federation_node(tmp, "b")
    with running(create_app(a)) as served_a, running(create_app(b)) as served_b:
        Exchange(b).peers.add(str(served_a.base_url), bytes(a.verify_key).hex())
        yield Witnessed(a, str(served_b.base_url).rstrip("/") + "/")
    a.close()
    b.close()


def submission(log: Node, old: int, size: int, root: bytes, proof: list[bytes]) -> str:
    origin = checkpoint_origin(bytes(log.verify_key))
    text = Checkpoint(origin, size, root).text()
    note = Note(text, (sign_note(text, origin, log.signing_key),)).to_text()
    lines = "".join(base64.b64encode(node).decode() + "\n" for node in proof)
    return f"old {old}\n{lines}\n{note}"


def post(url: str, body: str) -> httpx.Response:
    return httpx.post(url + SUBMIT_PATH, content=body.encode(), timeout=60)


ROOT = hashlib.sha256(b"some root").digest()


@pytest.mark.parametrize("size", [2**53, 2**63 - 1, 2**63, 9_999_999_999_999_999_999])
def test_a_checkpoint_too_large_to_record_is_malformed_not_a_500(
    witnessed: Witnessed, size: int
) -> None:
    answer = post(witnessed.url, submission(witnessed.log, 0, size, ROOT, []))
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["rule"] == "witness_malformed"
    assert f"size {size}" in error["message"]
    assert "largest size this witness records" in error["message"]


def test_a_fork_to_a_huge_size_is_refused_as_malformed_before_any_evidence(
    witnessed: Witnessed, tmp_path: Path
) -> None:
    log = witnessed.log.log
    for number in range(3):
        log.append(make_entry("peer", "operator", action="test", n=number))
    head = log.sign_head()
    first = post(witnessed.url, submission(witnessed.log, 0, head.size, head.root, []))
    assert first.status_code == 200, first.text
    huge = post(witnessed.url, submission(witnessed.log, head.size, 2**60, ROOT, [ROOT] * 3))
    assert huge.status_code == 400, huge.text
    assert huge.json()["error"]["rule"] == "witness_malformed"
    # The witness still holds the checkpoint it cosigned, and extends it as before.
    again = post(witnessed.url, submission(witnessed.log, head.size, head.size, head.root, []))
    assert again.status_code == 200, again.text


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    old=st.integers(min_value=0, max_value=10**19 - 1),
    size=st.integers(min_value=0, max_value=10**19 - 1),
)
def test_any_sizes_get_a_protocol_status_never_a_500(
    witnessed: Witnessed, old: int, size: int
) -> None:
    answer = post(witnessed.url, submission(witnessed.log, old, size, ROOT, []))
    assert answer.status_code in (200, 400, 409, 422), answer.text
