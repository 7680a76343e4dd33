"""Signed messages between nodes: what checks, and what is refused with which rule."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from entrepot.errors import PeerError, Unauthorized
from entrepot.federation.envelope import (
    HEADERS,
    KEY,
    NONCE,
    SIGNATURE,
    TIMESTAMP,
    _request_text,
    check_response,
    key_hex,
    open_request,
    request_digest,
    sign_request,
    sign_response,
)

SENDER = SigningKey(bytes(range(32)))
RECIPIENT = SigningKey(bytes(range(1, 33)))
STRANGER = SigningKey(bytes(range(2, 34)))
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SKEW = 300.0

methods = st.sampled_from(["GET", "POST"])
targets = st.from_regex(r"/v1/[a-z/]{1,30}(\?since=[0-9a-z:+-]{0,20})?", fullmatch=True)
bodies = st.binary(max_size=200)


def opened(
    headers: dict[str, str],
    method: str,
    target: str,
    body: bytes,
    *,
    now: datetime = NOW,
    seen: set[str] | None = None,
) -> str:
    nonces = set() if seen is None else seen

    def fresh(key: str, nonce: str) -> bool:
        if (key, nonce) in nonces:
            return False
        nonces.add((key, nonce))  # type: ignore[arg-type]
        return True

    sender = open_request(
        headers,
        method,
        target,
        body,
        recipient=RECIPIENT.verify_key,
        trusted=lambda key: key == key_hex(SENDER.verify_key),
        fresh=fresh,
        now=now,
        max_skew_s=SKEW,
    )
    return sender.key


def refused(rule: str, *args: object, **kwargs: object) -> None:
    with pytest.raises(Unauthorized) as caught:
        opened(*args, **kwargs)  # type: ignore[arg-type]
    assert caught.value.details["rule"] == rule


@given(methods, targets, bodies)
def test_a_signed_request_opens_to_its_sender(method: str, target: str, body: bytes) -> None:
    headers = sign_request(SENDER, RECIPIENT.verify_key, method, target, body, now=NOW)
    assert opened(headers, method, target, body) == key_hex(SENDER.verify_key)


@given(methods, targets, bodies, bodies)
def test_a_tampered_body_is_refused(method: str, target: str, body: bytes, other: bytes) -> None:
    headers = sign_request(SENDER, RECIPIENT.verify_key, method, target, body, now=NOW)
    if other != body:
        refused("envelope_signature", headers, method, target, other)


@given(methods, targets, targets, bodies)
def test_a_request_sent_at_another_path_is_refused(
    method: str, target: str, other: str, body: bytes
) -> None:
    headers = sign_request(SENDER, RECIPIENT.verify_key, method, target, body, now=NOW)
    if other != target:
        refused("envelope_signature", headers, method, other, body)


@given(targets, bodies, st.integers(min_value=1, max_value=int(SKEW)))
def test_a_tampered_timestamp_or_nonce_is_refused(target: str, body: bytes, shift: int) -> None:
    headers = sign_request(SENDER, RECIPIENT.verify_key, "GET", target, body, now=NOW)
    later = {**headers, "Entrepot-Timestamp": str(int(headers["Entrepot-Timestamp"]) + shift)}
    refused("envelope_signature", later, "GET", target, body)
    other_nonce = {**headers, "Entrepot-Nonce": "0" * 32}
    refused("envelope_signature", other_nonce, "GET", target, body)


@given(targets, bodies)
def test_a_replayed_request_is_refused(target: str, body: bytes) -> None:
    headers = sign_request(SENDER, RECIPIENT.verify_key, "POST", target, body, now=NOW)
    seen: set[str] = set()
    opened(headers, "POST", target, body, seen=seen)
    refused("envelope_replay", headers, "POST", target, body, seen=seen)


@given(st.floats(min_value=SKEW + 1, max_value=10 * 365 * 86400), st.booleans())
def test_a_request_outside_the_clock_skew_is_refused(offset: float, late: bool) -> None:
    headers = sign_request(SENDER, RECIPIENT.verify_key, "GET", "/v1/x", b"", now=NOW)
    moment = NOW + timedelta(seconds=offset if late else -offset)
    refused("envelope_clock_skew", headers, "GET", "/v1/x", b"", now=moment)


@given(st.floats(min_value=-SKEW + 1, max_value=SKEW - 1))
def test_a_request_within_the_clock_skew_is_accepted(offset: float) -> None:
    headers = sign_request(SENDER, RECIPIENT.verify_key, "GET", "/v1/x", b"", now=NOW)
    opened(headers, "GET", "/v1/x", b"", now=NOW + timedelta(seconds=offset))


@given(targets, bodies)
def test_an_unknown_key_is_refused(target: str, body: bytes) -> None:
    headers = sign_request(STRANGER, RECIPIENT.verify_key, "GET", target, body, now=NOW)
    refused("envelope_unknown_key", headers, "GET", target, body)


def test_a_trusted_key_forging_another_senders_header_is_refused() -> None:
    forged = sign_request(STRANGER, RECIPIENT.verify_key, "GET", "/v1/x", b"", now=NOW)
    forged["Entrepot-Key"] = key_hex(SENDER.verify_key)
    refused("envelope_signature", forged, "GET", "/v1/x", b"")


def test_a_request_for_another_node_is_refused() -> None:
    headers = sign_request(SENDER, STRANGER.verify_key, "GET", "/v1/x", b"", now=NOW)
    refused("envelope_recipient", headers, "GET", "/v1/x", b"")


@pytest.mark.parametrize("missing", HEADERS)
def test_an_unsigned_request_names_the_missing_header(missing: str) -> None:
    headers = sign_request(SENDER, RECIPIENT.verify_key, "GET", "/v1/x", b"", now=NOW)
    del headers[missing]
    with pytest.raises(Unauthorized, match=missing) as caught:
        opened(headers, "GET", "/v1/x", b"")
    assert caught.value.details["rule"] == "envelope_malformed"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Entrepot-Key", "not-a-key"),
        ("Entrepot-Timestamp", "yesterday"),
        ("Entrepot-Signature", "%%%"),
        ("Entrepot-Nonce", "short"),
    ],
)
def test_a_malformed_header_is_refused(header: str, value: str) -> None:
    headers = sign_request(SENDER, RECIPIENT.verify_key, "GET", "/v1/x", b"", now=NOW)
    refused("envelope_malformed", {**headers, header: value}, "GET", "/v1/x", b"")


@settings(max_examples=50)
@given(st.integers(min_value=100, max_value=599), bodies)
def test_an_answer_checks_only_for_its_request_status_and_body(status: int, body: bytes) -> None:
    asked = sign_request(SENDER, RECIPIENT.verify_key, "POST", "/v1/query", body, now=NOW)
    request = request_digest(asked)
    signature = sign_response(RECIPIENT, request, status, body)
    check_response("b", RECIPIENT.verify_key, request, status, body, signature)
    # Another request under the same nonce: another sender's, or the same sender's at
    # another path or with another body.
    same_nonce = []
    for key, target, sent in ((STRANGER, "/v1/query", body), (SENDER, "/v1/x", body + b"x")):
        headers = {**asked, KEY: key_hex(key.verify_key)}
        text = _request_text(
            "POST",
            target,
            headers[KEY],
            key_hex(RECIPIENT.verify_key),
            headers[TIMESTAMP],
            headers[NONCE],
            sent,
        )
        headers[SIGNATURE] = base64.b64encode(key.sign(text).signature).decode()
        same_nonce.append(request_digest(headers))
    for args in (
        *((digest, status, body) for digest in same_nonce),
        (request_digest({}), status, body),
        (request, status + 1, body),
        (request, status, body + b"x"),
    ):
        with pytest.raises(PeerError, match="peer b") as caught:
            check_response("b", RECIPIENT.verify_key, *args, signature)
        assert caught.value.details["rule"] == "response_signature"
    with pytest.raises(PeerError):
        check_response("b", STRANGER.verify_key, request, status, body, signature)
    with pytest.raises(PeerError):
        check_response("b", RECIPIENT.verify_key, request, status, body, None)


RULES = {
    "envelope_malformed",
    "envelope_signature",
    "envelope_unknown_key",
    "envelope_recipient",
    "envelope_clock_skew",
    "envelope_replay",
}
stamps = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(10**400), max_value=10**400).map(str),
    st.integers(min_value=0, max_value=10**12).map(lambda n: f" {n:_}+"),
)


@given(stamps)
def test_any_timestamp_a_peer_signs_is_taken_or_refused_by_a_rule(stamp: str) -> None:
    # A peer's own signature over a timestamp of its choosing: the signature checks.
    sender, to = key_hex(SENDER.verify_key), key_hex(RECIPIENT.verify_key)
    headers = {KEY: sender, "Entrepot-Recipient": to, TIMESTAMP: stamp, NONCE: "ab" * 16}
    text = _request_text("GET", "/v1/x", sender, to, stamp, "ab" * 16, b"")
    headers[SIGNATURE] = base64.b64encode(SENDER.sign(text).signature).decode()
    if stamp == str(int(NOW.timestamp())):
        opened(headers, "GET", "/v1/x", b"")
        return
    with pytest.raises(Unauthorized) as caught:
        opened(headers, "GET", "/v1/x", b"")
    assert caught.value.details["rule"] in RULES


@given(st.sampled_from(HEADERS), st.text(max_size=100))
def test_a_request_with_any_header_changed_is_refused_by_a_rule(name: str, value: str) -> None:
    headers = sign_request(SENDER, RECIPIENT.verify_key, "POST", "/v1/query", b"{}", now=NOW)
    if value == headers[name]:
        return
    with pytest.raises(Unauthorized) as caught:
        opened({**headers, name: value}, "POST", "/v1/query", b"{}")
    assert caught.value.details["rule"] in RULES - {"envelope_replay"}
