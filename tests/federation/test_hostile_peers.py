"""A peer that misuses the protocol, on loopback: each misuse refused by the node it
reaches, naming the rule, with nothing made, spent or forwarded."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from nacl.signing import SigningKey
from sqlalchemy import select
from tests.api.conftest import running
from tests.exchange.join_world import VISITS
from tests.exchange.logged_world import DATASET, seed
from tests.federation.join_nodes import CONSUMER, JOIN, Nodes, nodes
from tests.federation.nodes import federation_node

from entrepot.api import create_app
from entrepot.errors import BudgetExhausted, Forbidden, InvalidInput, PolicyViolation
from entrepot.exchange import Exchange
from entrepot.exchange.coordinator import Found
from entrepot.exchange.node import Node
from entrepot.federation.envelope import (
    KEY,
    NONCE,
    RECIPIENT,
    SIGNATURE,
    TIMESTAMP,
    _request_text,
    key_hex,
    sign_request,
)
from entrepot.federation.join import PeerPartner, mandate
from entrepot.federation.models import RemoteConsumer
from entrepot.federation.remote import ACCESS_PATH, QUERY_PATH
from entrepot.vault import DatasetRef

PURPOSE = "public-health-surveillance"


@dataclass
class Three:
    """``capital`` trusts ``riverside``, which trusts both; ``harbor`` never heard of
    ``capital``. ``riverside`` and ``harbor`` each hold the same dataset."""

    capital: Exchange
    riverside: Exchange
    harbor: Exchange
    urls: dict[str, str]


def key(node: Node) -> str:
    return bytes(node.verify_key).hex()


@pytest.fixture
def three(tmp_path: Path) -> Iterator[Three]:
    made = {name: federation_node(tmp_path, name) for name in ("capital", "riverside", "harbor")}
    for name in ("riverside", "harbor"):
        (tmp_path / f"{name}-data").mkdir()
        seed(made[name], tmp_path / f"{name}-data", query=False)
    ex = {name: Exchange(node) for name, node in made.items()}
    try:
        with (
            running(create_app(made["capital"])) as capital,
            running(create_app(made["riverside"])) as riverside,
            running(create_app(made["harbor"])) as harbor,
        ):
            urls = {
                "capital": str(capital.base_url),
                "riverside": str(riverside.base_url),
                "harbor": str(harbor.base_url),
            }
            for me, them in (
                ("capital", "riverside"),
                ("riverside", "capital"),
                ("riverside", "harbor"),
                ("harbor", "riverside"),
            ):
                ex[me].peers.add(urls[them], key(made[them]))
            yield Three(ex["capital"], ex["riverside"], ex["harbor"], urls)
    finally:
        for node in made.values():
            node.close()


def peer_actions(exchange: Exchange) -> list[str]:
    exchange.node.outbox.replay()
    return [e["action"] for _, e in exchange.node.log.entries() if e["kind"] == "peer"]


def test_a_peer_cannot_reach_a_third_node_through_this_one(three: Three) -> None:
    asked = {
        "consumer": "mallory",
        "purpose": PURPOSE,
        "epsilon": 1.0,
        "until": (date.today() + timedelta(days=30)).isoformat(),
    }
    with three.capital.peers.call("riverside") as call:
        # Its own dataset, asked for as any peer's consumer asks: made on riverside.
        made = call.call("POST", ACCESS_PATH, {**asked, "dataset": DATASET})
        assert (made["consumer"], made["state"]) == ("capital-mallory", "requested")
        # harbor's dataset, named with its node: refused, nothing sent on to harbor.
        with pytest.raises(Forbidden, match="its own data only") as relayed:
            call.call("POST", ACCESS_PATH, {**asked, "dataset": f"harbor:{DATASET}"})
        assert relayed.value.details["rule"] == "peer_relay"
        # A query of harbor's table: refused by riverside's checker, logged there.
        with pytest.raises(PolicyViolation, match="not a dataset name") as refused:
            call.call(
                "POST",
                QUERY_PATH,
                {
                    "consumer": "mallory",
                    "sql": "SELECT COUNT(*) AS n FROM harbor.riverside_hospitals.outpatient_visits",
                    "epsilon": 0.5,
                },
            )
        assert refused.value.details["rule"] == "unknown_table"
    # harbor heard nothing of capital's consumer: no organization, no request, no entry.
    assert peer_actions(three.harbor) == ["added"]
    assert three.harbor.ledger.entries() == []
    with three.harbor.node.db.read() as session:
        assert session.scalars(select(RemoteConsumer)).all() == []
    assert peer_actions(three.riverside) == ["added", "added", "access_request_received"]
    assert three.riverside.ledger.entries() == []


def signed_post(
    node: Exchange, url: str, recipient: Node, path: str, body: bytes
) -> httpx.Response:
    """``body`` as a peer's request, signed by ``node``'s key, sent raw."""
    headers = sign_request(
        node.node.signing_key, recipient.verify_key, "POST", path, body, now=datetime.now(UTC)
    )
    return httpx.post(url.rstrip("/") + path, content=body, headers=headers, timeout=60)


def test_a_body_nested_past_the_parsers_stack_is_refused_as_not_json(three: Three) -> None:
    deep = b'{"consumer": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    answered = signed_post(
        three.capital,
        three.urls["riverside"],
        three.riverside.node,
        "/" + QUERY_PATH,
        deep,
    )
    assert answered.status_code == 400
    assert answered.json()["error"]["message"] == "the request's body is not a JSON object"
    assert SIGNATURE in answered.headers


@pytest.mark.parametrize(
    "signature", [b"\0" * 64, b"\0" * 10], ids=["wrong-signature", "short-signature"]
)
def test_a_stranger_cannot_tell_a_peers_key_from_any_other(three: Three, signature: bytes) -> None:
    stranger = SigningKey.generate()
    peer_key, unknown_key = key(three.capital.node), bytes(stranger.verify_key).hex()
    told = []
    for claimed in (peer_key, unknown_key):
        headers = sign_request(
            stranger,
            three.riverside.node.verify_key,
            "GET",
            "/federation/v1/catalog",
            b"",
            now=datetime.now(UTC),
        )
        headers.update({"Entrepot-Key": claimed, SIGNATURE: base64.b64encode(signature).decode()})
        answered = httpx.get(
            three.urls["riverside"].rstrip("/") + "/federation/v1/catalog",
            headers=headers,
            timeout=60,
        )
        told.append((answered.status_code, answered.json()["error"]["rule"]))
    assert told == [(401, "envelope_signature")] * 2


def screened(world: Nodes, purpose: str) -> PeerPartner:
    """a, leading c's join, has b take part; b has reserved its ε."""
    asker = world.c.actor(CONSUMER)
    _, body = mandate(world.c, asker, ("a", "b"), JOIN, epsilon=0.5, purpose=PURPOSE)
    mine = DatasetRef.parse("riverside-hospitals/outpatient-visits")
    vault = world.a.vault
    here = Found(
        mine, world.a.policies.get(mine).policy, vault.standard(mine), vault.versions(mine)[-1]
    )
    partner = PeerPartner(world.a, "b", DatasetRef.parse("acme-pay/transactions"), body)
    partner.screen((here,), purpose)
    [reserved] = world.b.ledger.entries()
    assert reserved.state == "reserved"
    return partner


def test_a_partner_takes_part_for_the_purpose_the_consumers_node_signed(tmp_path: Path) -> None:
    with nodes(tmp_path) as world:
        # The leader states another purpose than the mandate's: b keeps the mandate's.
        partner = screened(world, "marketing")
        partner.abort()
        assert [e.state for e in world.b.ledger.entries()] == ["released"]


def test_a_malformed_completion_leaves_the_part_open_for_its_abort(tmp_path: Path) -> None:
    with nodes(tmp_path) as world:
        partner = screened(world, PURPOSE)
        for wrong in ([{"dataset": 1}], "all of them", None):
            with pytest.raises(InvalidInput, match="versions are not a list"):
                partner.send("complete", {"answer": "", "versions": wrong})
        # Still open: its leader's abort releases what b reserved, nothing held forever.
        partner.abort()
        assert [e.state for e in world.b.ledger.entries()] == ["released"]
        assert world.b.ledger.check() == []


def impostor(world: Nodes, sql: str) -> Callable[[bytes], bytes]:
    """b on the path from c to a: for c's request, b's own query of a under c's nonce."""

    def substitute(seen: bytes) -> bytes:
        head = seen.partition(b"\r\n\r\n")[0].decode()
        fields = {
            name.lower(): value
            for name, _, value in (line.partition(": ") for line in head.split("\r\n")[1:])
        }
        body = json.dumps(
            {"consumer": CONSUMER, "sql": sql, "epsilon": 0.5, "request": secrets.token_hex(16)}
        ).encode()
        key = world.b.node.signing_key
        target = "/" + QUERY_PATH
        headers = {
            KEY: key_hex(key.verify_key),
            RECIPIENT: key_hex(world.a.node.verify_key),
            TIMESTAMP: str(int(datetime.now(UTC).timestamp())),
            NONCE: fields[NONCE.lower()],
        }
        text = _request_text("POST", target, *headers.values(), body)
        headers[SIGNATURE] = base64.b64encode(key.sign(text).signature).decode()
        lines = [
            f"POST {target} HTTP/1.1",
            "Host: 127.0.0.1",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        return "\r\n".join(lines).encode() + b"\r\n\r\n" + body

    return substitute


def test_a_peer_on_the_path_cannot_pass_its_own_answer_off_as_another_requests(
    tmp_path: Path,
) -> None:
    # b, a peer of a with a consumer of its own there, sits on the path from c to a.
    with nodes(tmp_path, consumers="bc", proxied=True) as world:
        assert world.proxy is not None
        world.proxy.substitute = impostor(
            world,
            "SELECT district, COUNT(*) AS visits FROM riverside_hospitals.outpatient_visits "
            "GROUP BY district",
        )
        world.proxy.then("substitute")
        asked = "SELECT COUNT(*) AS visits FROM a.riverside_hospitals.outpatient_visits"
        answered = world.consumer().query(asked, epsilon=0.5)
        # c's own query answered, not b's: a answered b's query under c's nonce, signed
        # for b's request; c refused that answer and asked again.
        assert (answered["node"], answered["dataset"]) == ("a", VISITS)
        assert (answered["answer"]["keys"], answered["answer"]["columns"]) == ([], ["visits"])
        query = b"POST /" + QUERY_PATH.encode()
        sent = [fault for fault, message in world.proxy.seen if message.startswith(query)]
        assert sent == ["substitute", "pass"]
        assert peer_actions(world.a).count("query_received") == 2


def test_queries_of_two_nodes_racing_at_the_cap_never_spend_past_it(tmp_path: Path) -> None:
    # a's dataset cap holds four queries of 0.25; twelve others are asked at once, half
    # by b's consumer and half by c's, each under its own grant of 5.
    with nodes(tmp_path, caps=(1.0, 1000.0), consumers="bc") as world:
        told: list[str] = []

        def ask(index: int) -> None:
            # Each query its own (an earlier answer to the same query is repeated free).
            asked = f"SELECT COUNT(*) AS n{index} FROM a.riverside_hospitals.outpatient_visits"
            try:
                world.consumer("bc"[index % 2]).query(asked, epsilon=0.25)
            except BudgetExhausted as refusal:
                told.append(refusal.message.partition(": ")[0])
            else:
                told.append("answered")

        with ThreadPoolExecutor(max_workers=12) as pool:
            list(pool.map(ask, range(12)))
        # Refused by a, naming it.
        assert sorted(told) == ["answered"] * 4 + ["peer a"] * 8
        assert world.spent("a") == pytest.approx(1.0)
        assert world.a.ledger.check() == []
        # Each answer spent once on a, and nothing on the consumers' nodes.
        assert (world.spent("b"), world.spent("c")) == (0, 0)
        assert peer_actions(world.a).count("query_received") == 4
        # Every query asked, answered or refused, is logged on the node holding the data.
        logged = [e for _, e in world.a.node.log.entries() if e["kind"] == "query"]
        assert sorted(e["outcome"] for e in logged) == ["answered"] * 4 + ["refused"] * 8
        assert {e["actor"] for e in logged} == {"org:b-city-desk", "org:c-city-desk"}
