"""Refusals a partner makes before its routes run, and answers forged on the path.

Node ``a`` calls its partner ``b`` through a proxy on loopback (real servers, the real
transport). A refusal ``b`` makes before any route runs (a body too large, a rate, a
request that fails validation, an unknown path or method) reaches ``a`` signed for
its request, and ``a`` raises it as ``b``'s own error. An answer that does not check
(forged on the path, signed for another request, a redirect, one too large to read)
is a failed call: its text is never shown nor kept, and the breaker counts it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from tests.api.conftest import running
from tests.federation.nodes import federation_node
from tests.federation.proxy import FaultProxy, fault_proxy

from entrepot.api import create_app
from entrepot.errors import EntrepotError, InvalidInput, LimitExceeded, NotFound, PeerError
from entrepot.exchange import Exchange
from entrepot.federation.envelope import SIGNATURE
from entrepot.federation.feed import FEED_PATH, sync
from entrepot.federation.remote import ACCESS_PATH, QUERY_PATH

# What an attacker on the path would have the caller show or keep.
FORGED_TEXT = "peer b is compromised: send your data to evil.example"


@dataclass
class Pair:
    """``a`` calls ``b`` through ``proxy``; each trusts the other."""

    a: Exchange
    b: Exchange
    proxy: FaultProxy


@contextmanager
def pair(tmp_path: Path, a: dict[str, Any], b: dict[str, Any]) -> Iterator[Pair]:
    nodes = {"a": federation_node(tmp_path, "a", **a), "b": federation_node(tmp_path, "b", **b)}
    try:
        with ExitStack() as stack:
            served = {
                name: stack.enter_context(running(create_app(n))) for name, n in nodes.items()
            }
            proxy = stack.enter_context(fault_proxy(served["b"].base_url.port or 0))
            ex = {name: Exchange(n) for name, n in nodes.items()}
            ex["a"].peers.add(proxy.url, bytes(nodes["b"].verify_key).hex())
            ex["b"].peers.add(str(served["a"].base_url), bytes(nodes["a"].verify_key).hex())
            yield Pair(ex["a"], ex["b"], proxy)
    finally:
        for node in nodes.values():
            node.close()


@pytest.fixture
def two(tmp_path: Path) -> Iterator[Pair]:
    with pair(tmp_path, {"peer_response_max_bytes": 50_000}, {"request_body_max_bytes": 4096}) as p:
        yield p


def http(status: int, body: bytes, *headers: str) -> bytes:
    """A whole HTTP/1.1 answer, as an attacker on the path writes one."""
    head = [f"HTTP/1.1 {status} Forged", f"Content-Length: {len(body)}", *headers]
    return "\r\n".join(head).encode() + b"\r\n\r\n" + body


def refusal(status: int, code: str, *headers: str) -> bytes:
    said = {"error": {"code": code, "message": FORGED_TEXT, "hint": FORGED_TEXT}}
    return http(status, json.dumps(said).encode(), "Content-Type: application/json", *headers)


@pytest.mark.parametrize(
    ("method", "path", "payload", "raised", "message", "detail"),
    [
        (
            "POST",
            ACCESS_PATH,
            {"note": "x" * 5000},
            LimitExceeded,
            "request body larger than 4096 bytes",
            ("setting", "request_body_max_bytes"),
        ),
        (
            "GET",
            f"{FEED_PATH}?limit=0",
            None,
            InvalidInput,
            "invalid request: query.limit",
            ("fields", ["query.limit"]),
        ),
        ("POST", "federation/v1/nowhere", {}, NotFound, "no such endpoint", None),
        ("GET", QUERY_PATH, None, InvalidInput, "method not allowed", None),
    ],
    ids=["body-too-large", "validation", "unknown-path", "wrong-method"],
)
def test_a_refusal_made_before_the_partners_routes_is_its_own_signed_word(
    two: Pair,
    method: str,
    path: str,
    payload: dict[str, Any] | None,
    raised: type[EntrepotError],
    message: str,
    detail: tuple[str, Any] | None,
) -> None:
    sent = len(two.proxy.seen)
    with two.a.peers.call("b") as call, pytest.raises(raised) as caught:
        call.call(method, path, payload, idempotent=True)
    assert type(caught.value) is raised
    assert caught.value.message.startswith(f"peer b: {message}")
    assert caught.value.details["peer"] == "b"
    if detail is not None:
        name, value = detail
        assert caught.value.details[name] == value
    # An answer, so not asked again, and the partner is healthy.
    assert len(two.proxy.seen) == sent + 1
    [peer] = two.a.peers.list()
    assert peer["health"] == "ok"


def test_a_partners_rate_limit_is_its_own_signed_word(tmp_path: Path) -> None:
    # The partner's identity, read when a adds it, is its first request of the burst.
    with pair(tmp_path, {}, {"rate_limit_burst": 2, "rate_limit_per_s": 0.001}) as p:
        with p.a.peers.call("b") as call:
            call.call("GET", FEED_PATH, idempotent=True)
            with pytest.raises(LimitExceeded, match=r"^peer b: rate limit reached") as caught:
                call.call("GET", FEED_PATH, idempotent=True)
        assert caught.value.details["setting"] == "rate_limit_per_s"
        assert caught.value.details["retry_after_s"] >= 1


@pytest.mark.parametrize(
    "forged",
    [
        refusal(413, "limit_exceeded"),
        refusal(400, "invalid_input"),
        refusal(429, "limit_exceeded", "Retry-After: 86400"),
        refusal(404, "not_found"),
        refusal(403, "forbidden", f"{SIGNATURE}: " + "A" * 88),
    ],
    ids=["413", "400", "429", "404", "403-bad-signature"],
)
def test_a_refusal_forged_on_the_path_is_never_taken_for_the_partners(
    two: Pair, forged: bytes
) -> None:
    two.proxy.forged = forged
    # The sync is repeated twice after a failed call: every answer is forged.
    two.proxy.then("forge", "forge", "forge")
    with pytest.raises(PeerError, match="without a valid signature") as caught:
        sync(two.a, "b")
    assert caught.value.details["rule"] == "response_signature"
    assert FORGED_TEXT not in json.dumps(caught.value.to_dict())
    [peer] = two.a.peers.list()
    assert FORGED_TEXT not in peer["status"]
    assert peer["health"] == "1 failed calls in a row"


def test_a_partners_signed_refusal_answers_its_own_request_only(two: Pair) -> None:
    with two.a.peers.call("b") as call:
        with pytest.raises(LimitExceeded, match=r"^peer b: request body larger"):
            call.call("POST", ACCESS_PATH, {"note": "x" * 5000})
        # The partner's signed refusal, captured on the path, handed back to another call.
        [*_, (_, asked)] = two.proxy.seen
        two.proxy.forged = two.proxy.replay(asked)
        assert SIGNATURE.lower().encode() in two.proxy.forged.lower()
        two.proxy.then("forge")
        with pytest.raises(PeerError, match="without a valid signature") as caught:
            call.call("POST", ACCESS_PATH, {"note": "x" * 5000})
    assert caught.value.details["rule"] == "response_signature"


def test_a_refusal_signed_before_the_envelope_is_checked_repeats_nothing_of_the_request(
    two: Pair,
) -> None:
    # The path rewritten on the way, the sender's signature kept: the partner refuses
    # the request with an answer signed for that signature, which the caller takes.
    forged = "/federation/v1/" + quote(FORGED_TEXT)
    two.proxy.substitute = lambda request: request.replace(
        f" /{QUERY_PATH} ".encode(), f" {forged} ".encode(), 1
    )
    two.proxy.then("substitute")
    with two.a.peers.call("b") as call, pytest.raises(NotFound) as caught:
        call.call("POST", QUERY_PATH, {"consumer": "desk", "sql": "SELECT 1"})
    assert caught.value.message == "peer b: no such endpoint: a federation path"
    assert "evil" not in json.dumps(caught.value.to_dict())


@pytest.mark.parametrize(
    ("forged", "rule"),
    [
        (http(307, b"", "Location: http://169.254.169.254/"), "response_redirect"),
        (
            http(200, b"{" + b" " * 60_000 + b"}", "Content-Type: application/json"),
            "response_too_large",
        ),
    ],
    ids=["redirect", "too-large"],
)
def test_an_answer_that_cannot_be_checked_is_a_failed_call(
    tmp_path: Path, forged: bytes, rule: str
) -> None:
    settings = {"peer_response_max_bytes": 50_000, "peer_retries": 0, "peer_breaker_failures": 2}
    with pair(tmp_path, settings, {}) as p:
        p.proxy.forged = forged
        p.proxy.then("forge", "forge")
        with p.a.peers.call("b") as call:
            for _ in range(2):
                with pytest.raises(PeerError, match=r"^peer b \(") as caught:
                    call.call("GET", FEED_PATH, idempotent=True)
                assert caught.value.details["rule"] == rule
            sent = len(p.proxy.seen)
            # Two failed calls in a row: the breaker pauses the partner.
            with pytest.raises(PeerError, match="not called until") as paused:
                call.call("GET", FEED_PATH, idempotent=True)
        assert paused.value.details["rule"] == "peer_paused"
        assert len(p.proxy.seen) == sent


def test_the_partners_identity_never_passes_for_the_answer_to_another_request(
    two: Pair,
) -> None:
    # On the path, the caller's request is sent on as a read of the partner's identity,
    # which anyone may ask for, with the caller's signature headers kept.
    two.proxy.substitute = lambda request: (
        request.partition(b"\r\n")[2]
        .partition(b"\r\n\r\n")[0]
        .join((b"GET /federation/v1/node HTTP/1.1\r\n", b"\r\n\r\n"))
        .replace(b"Content-Length:", b"X-Was-Length:")
    )
    two.proxy.then("substitute")
    with two.a.peers.call("b") as call:
        page = call.call("GET", FEED_PATH, idempotent=True)
    # Signed for no request of a's: a failed call, asked again, and the feed read.
    assert "dcat:dataset" in page
    assert [fault for fault, _ in two.proxy.seen[-2:]] == ["substitute", "pass"]


@pytest.mark.parametrize(
    ("rewrite", "rule"),
    [
        # The app's own redirect of a path with a trailing slash: never signed.
        ((f" /{FEED_PATH} ".encode(), f" /{FEED_PATH}/ ".encode()), "response_redirect"),
        # A request uvicorn refuses itself, before the app: never signed either.
        ((b" HTTP/1.1\r\n", b" HTTP/1.1 junk\r\n"), "response_signature"),
    ],
    ids=["redirect-of-the-app", "refusal-of-the-server"],
)
def test_an_answer_made_outside_the_partners_routes_is_a_failed_call(
    tmp_path: Path, rewrite: tuple[bytes, bytes], rule: str
) -> None:
    with pair(tmp_path, {"peer_retries": 0}, {}) as p:
        p.proxy.substitute = lambda request: request.replace(*rewrite, 1)
        p.proxy.then("substitute")
        with p.a.peers.call("b") as call, pytest.raises(PeerError, match=r"^peer b") as caught:
            call.call("GET", FEED_PATH, idempotent=True)
        assert caught.value.details["rule"] == rule
        [peer] = p.a.peers.list()
        assert peer["health"] == "1 failed calls in a row"
