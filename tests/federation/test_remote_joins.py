"""Private joins across nodes, on loopback: each holder's node checks, spends and signs
for its own dataset, and the matching runs on a holder's node, never the consumer's."""

from __future__ import annotations

import copy
import json
import secrets
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.exchange.join_world import (
    SQL,
    VISITS,
    Payment,
    Visit,
    exact_answers,
    payments_drawn,
    plain_join,
    visits_drawn,
)
from tests.federation.join_nodes import (
    CONSUMER,
    JOIN,
    PAYMENT_ROWS,
    POLICY,
    VISIT_ROWS,
    Nodes,
    nodes,
)

from entrepot.client.local import LocalClient
from entrepot.errors import (
    BudgetExhausted,
    Conflict,
    ContractViolation,
    EntrepotError,
    InvalidInput,
    NotFound,
    PeerError,
    PolicyViolation,
    QueryFailed,
    Unauthorized,
)
from entrepot.exchange import Exchange
from entrepot.federation import join
from entrepot.federation._pages import page_bytes
from entrepot.federation.join import JOIN_PATH, PART_PATH, _sign, exact_join, mandate
from entrepot.federation.remote import consumer_of
from entrepot.federation.transport import PeerCall
from entrepot.privacy.psi import BATCH_SIZE, TOKEN_BYTES, hash_to_group
from entrepot.standards.linkkeys import concept
from entrepot.transparency import verify_receipt

# Who called (its key), which peer, at which path, what was sent, what was answered.
Message = tuple[str, str, str, Any, Any]


@pytest.fixture
def between(monkeypatch: pytest.MonkeyPatch) -> list[Message]:
    """Every call any node of this process makes to a peer, and its answer."""
    sent: list[Message] = []
    calling = PeerCall.call

    def recorded(
        self: PeerCall,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
        *,
        idempotent: bool = False,
    ) -> Any:
        answered = calling(self, method, path, payload, idempotent=idempotent)
        sent.append((bytes(self.own_key.verify_key).hex(), self.name, path, payload, answered))
        return answered

    monkeypatch.setattr(PeerCall, "call", recorded)
    return sent


def agrees(exchange: Exchange) -> bool:
    """Whether the node's ledger, usage and log agree (its versions were published
    straight into the vault, unlogged)."""
    return all(d.what == "dataset_version" for d in exchange.reconcile().differences)


def tokens(message: Any) -> set[bytes]:
    """Every 32-byte token a message's ``tokens`` fields carry."""
    import base64

    found: set[bytes] = set()
    if isinstance(message, dict):
        for key, value in message.items():
            if key == "tokens":
                data = base64.b64decode(value)
                found |= {data[i : i + TOKEN_BYTES] for i in range(0, len(data), TOKEN_BYTES)}
            else:
                found |= tokens(value)
    return found


def by_step(between: list[Message], leader: str) -> dict[str, list[tuple[Any, Any]]]:
    """What the leader sent the partner at each step of a join, and what it answered."""
    steps: dict[str, list[tuple[Any, Any]]] = {}
    for caller, peer, path, payload, answered in between:
        if (caller, peer) == (leader, "b"):
            steps.setdefault(path.rsplit("/", 1)[-1], []).append((payload, answered))
    return steps


def spent(world: Nodes) -> tuple[float, float, float]:
    return world.spent("a"), world.spent("b"), world.spent("c")


def peer_actions(exchange: Exchange) -> list[str]:
    return [e["action"] for _, e in exchange.node.log.entries() if e["kind"] == "peer"]


def test_a_consumer_of_a_third_node_joins_two_nodes_datasets(tmp_path: Path) -> None:
    with nodes(tmp_path) as world:
        answered = world.consumer().query(JOIN, epsilon=0.5)
        # The first holder that is not the consumer's node leads: it matches and answers.
        assert answered["node"] == "a"
        assert (
            answered["dataset"]
            == "riverside-hospitals/outpatient-visits JOIN acme-pay/transactions"
        )
        assert answered["epsilon_spent"] == pytest.approx(1.0)
        receipts = {r["node"]: r["receipt"] for r in answered["receipts"]}
        assert set(receipts) == {"a", "b"}
        verify_receipt(json.dumps(receipts["a"]).encode(), world.a.node.verify_key)
        verify_receipt(json.dumps(receipts["b"]).encode(), world.b.node.verify_key)
        assert spent(world) == (0.5, 0.5, 0)
        # Each holder logs the join with its ε, and the cross-node event; so does c.
        for holder, action in ((world.a, "join_received"), (world.b, "join_part")):
            joins = [e for _, e in holder.node.log.entries() if e["kind"] == "join"]
            assert [(e["outcome"], float(e["epsilon"])) for e in joins] == [("answered", 0.5)]
            assert peer_actions(holder)[-1] == action
            assert agrees(holder)
        assert peer_actions(world.c)[-1] == "join_answered"


def test_a_join_whose_answer_is_lost_is_asked_again_and_spent_once(tmp_path: Path) -> None:
    with nodes(tmp_path, proxied=True) as world:
        assert world.proxy is not None
        # c's first call to a reaches a, which leads the join; its answer is lost on
        # the way back. c asks again with the same mandate and a answers from what it
        # kept: the same answer, each holder's ε spent once, each delivery logged.
        world.proxy.then("drop-answer")
        answered = world.consumer().query(JOIN, epsilon=0.5)
        calls = [(f, m) for f, m in world.proxy.seen if m.startswith(b"POST /federation/v1/join")]
        assert [fault for fault, _ in calls] == ["drop-answer", "pass"]
        first, again = (json.loads(m.partition(b"\r\n\r\n")[2]) for _, m in calls)
        assert first == again
        assert spent(world) == (0.5, 0.5, 0)
        assert {r["node"] for r in answered["receipts"]} == {"a", "b"}
        joins = [e for _, e in world.a.node.log.entries() if e["kind"] == "join"]
        assert [(e["outcome"], float(e["epsilon"])) for e in joins] == [("answered", 0.5)]
        world.a.node.outbox.flush()
        assert peer_actions(world.a)[-2:] == ["join_received", "join_received"]
        assert agrees(world.a)
        assert agrees(world.b)

        # The mandate sent again by another node is refused: it was used.
        with world.b.peers.call("a") as call, pytest.raises(Unauthorized) as refused:
            call.call("POST", "federation/v1/join", again)
        assert refused.value.details["rule"] == "mandate_replay"
        assert spent(world) == (0.5, 0.5, 0)


def test_a_join_asked_again_while_its_leader_runs_it_is_refused_and_spent_once(
    tmp_path: Path,
) -> None:
    # The holders pad the answer to 5 s; c waits 1 s for it, then asks again.
    with nodes(tmp_path, floor_ms=5000, settings={"c": {"peer_join_timeout_s": 1.0}}) as world:
        with pytest.raises(Conflict, match="still answering the same request") as refused:
            world.consumer().query(JOIN, epsilon=0.5)
        assert refused.value.details["peer"] == "a"
        deadline = time.monotonic() + 30
        while world.spent("a") < 0.5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert spent(world) == (0.5, 0.5, 0)
        joins = [e for _, e in world.a.node.log.entries() if e["kind"] == "join"]
        assert [(e["outcome"], float(e["epsilon"])) for e in joins] == [("answered", 0.5)]


def test_an_id_a_peer_may_repeat_is_32_hex_digits(tmp_path: Path) -> None:
    with nodes(tmp_path) as world, world.c.peers.call("a") as call:
        for given in ("", "0" * 31, "0" * 33, "G" * 32, "0" * 300, 7, None):
            asked = {"consumer": CONSUMER, "sql": "SELECT COUNT(*) FROM x", "request": given}
            signed = {"mandate": {"nonce": given}, "signature": ""}
            for path, body, name in (
                ("federation/v1/query", asked, "request"),
                ("federation/v1/access", {**asked, "dataset": VISITS}, "request"),
                ("federation/v1/join", signed, "mandate nonce"),
            ):
                if given is None and name == "request":
                    continue  # a peer that sends no request id is answered without one
                with pytest.raises(InvalidInput, match=f"request's {name} is not 32 hex"):
                    call.call("POST", path, body)
        assert spent(world) == (0, 0, 0)


def test_a_peers_request_with_a_field_of_the_wrong_kind_is_refused_and_makes_nothing(
    tmp_path: Path,
) -> None:
    with nodes(tmp_path, consumers="") as world, world.c.peers.call("a") as call:
        asked = {
            "consumer": CONSUMER,
            "dataset": VISITS,
            "purpose": "public-health-surveillance",
            "epsilon": 1.0,
            "until": "2099-01-01",
        }
        wrong: list[tuple[str, Any, str]] = [
            ("until", "next week", "until is not a date"),
            ("since", "2025-13-01", "since is not a date"),
        ]
        for value in ("1", True, 10**400, float("nan"), float("inf")):
            wrong.append(("epsilon", value, "epsilon is not a finite number"))
        for name, value, message in wrong:
            for path in ("federation/v1/access", "federation/v1/query"):
                if path.endswith("query") and name != "epsilon":
                    continue
                body = {**asked, "sql": "SELECT COUNT(*) FROM x", name: value}
                with pytest.raises(InvalidInput, match=f"request's {message}"):
                    call.call("POST", path, {**body, "request": secrets.token_hex(16)})
        # Terms the contracts refuse, whoever asks, are refused before too.
        refused_terms: list[tuple[str, Any, str]] = [
            ("purpose", "curiosity", "purpose"),
            ("note", "x" * 5000, "note"),
            ("note", "a\x1b[2Jb", "note"),
            ("epsilon", 0, "above 0"),
            ("until", "2001-01-01", "empty or over"),
        ]
        for name, value, message in refused_terms:
            with pytest.raises(InvalidInput, match=message):
                call.call("POST", "federation/v1/access", {**asked, name: value})
        assert world.a.contracts.requests(world.a.actor("riverside-hospitals")) == []
        with pytest.raises(NotFound):
            consumer_of(world.a, bytes(world.c.node.verify_key).hex(), CONSUMER, create=False)


# What a broken or hostile peer might put in place of any value of a message.
ODD = st.sampled_from(
    [
        *(None, True, 7, -1, 10**30, 1e308, -0.0),
        *("", "x", "0" * 32, "2025-13-01"),
        *([], {}, ["a"], {"a": 1}),
    ]
)


def _places(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON message."""
    if not isinstance(value, dict | list):
        return []
    inner = value.items() if isinstance(value, dict) else enumerate(value)
    return [p for key, item in inner for p in [(*at, key), *_places(item, (*at, key))]]


def test_a_peers_message_with_any_value_changed_gets_a_signed_answer(
    tmp_path: Path, between: list[Message]
) -> None:
    # The messages of a real join and of the access requests before it, each sent again
    # by the node that sent it with one to three values replaced, fresh ids and a
    # mandate signed anew by the consumer's node: each is answered, or refused by a
    # signed error; none ends in a server error (an unsigned answer, a dropped call).
    with nodes(tmp_path) as world:
        world.consumer().query(JOIN, epsilon=0.1)
        sent = [
            (caller, peer, path, payload)
            for caller, peer, path, payload, _ in between
            if payload is not None and path.endswith(("access", "join", "prepare"))
        ]
        by_key = {bytes(ex.node.verify_key).hex(): ex for ex in (world.a, world.b, world.c)}

        # The same 150 changes on every run: a new failure is a new fault, never a draw.
        @settings(max_examples=150, deadline=None, derandomize=True)
        @given(st.data())
        def changed(data: st.DataObject) -> None:
            caller, peer, path, payload = data.draw(st.sampled_from(sent))
            body = json.loads(json.dumps(payload))
            for _ in range(data.draw(st.integers(1, 3))):
                *inside, last = data.draw(st.sampled_from(_places(body) or [("x",)]))
                holder = body
                for key in inside:
                    holder = holder[key]
                holder[last] = copy.deepcopy(data.draw(ODD))
            if "request" in body:
                body["request"] = secrets.token_hex(16)
            if path.endswith("prepare"):
                body["join"] = secrets.token_hex(16)
            if isinstance(body.get("mandate"), dict):
                body["mandate"] |= {"nonce": secrets.token_hex(16), "issued": int(time.time())}
                body["signature"] = _sign(world.c, body["mandate"])
            with by_key[caller].peers.call(peer) as call:
                try:
                    call.call("POST", path, body)
                except PeerError as error:
                    raise AssertionError((path, body, error.message)) from None
                except EntrepotError:
                    pass

        changed()


def test_a_join_longer_than_one_peer_call_is_waited_for_up_to_the_join_timeout(
    tmp_path: Path,
) -> None:
    # The holders pad the answer to 1.5 s, past c's timeout for one call to a peer.
    calls = {"peer_timeout_s": 1.0, "peer_join_timeout_s": 30.0}
    with nodes(tmp_path, floor_ms=1500, settings={"c": calls}) as world:
        answered = world.consumer().query(JOIN, epsilon=0.5)
        assert {r["node"] for r in answered["receipts"]} == {"a", "b"}
        assert spent(world) == (0.5, 0.5, 0)
        assert peer_actions(world.c)[-1] == "join_answered"


def test_no_message_between_nodes_carries_an_identifier_a_node_could_recognise(
    tmp_path: Path, between: list[Message]
) -> None:
    with nodes(tmp_path) as world:
        keys = {name: bytes(getattr(world, name).node.verify_key).hex() for name in "abc"}
        between.clear()
        world.consumer().query(JOIN, epsilon=0.5)
    ids = {v[0] for v in VISIT_ROWS} | {p[0] for p in PAYMENT_ROWS}
    resident = concept("resident-number")
    canonical = {c for c in (resident.canonicalize(i) for i in ids) if c}
    points = {hash_to_group("resident-number", c) for c in canonical}
    steps = by_step(between, keys["a"])
    assert set(steps) == {"prepare", "blind", "reblind", "complete"}
    for messages in steps.values():
        for payload, answered in messages:
            text = json.dumps(payload) + json.dumps(answered)
            assert not any(i in text for i in ids | canonical)
            assert not (tokens(payload) | tokens(answered)) & points
    # b blinds its own keys once; what it is sent is never one of them (nor a point).
    b_singly = set().union(*(tokens(answered) for _, answered in steps["blind"]))
    a_singly = set().union(*(tokens(payload) for payload, _ in steps["reblind"]))
    doubly = set().union(*(tokens(answered) for _, answered in steps["reblind"]))
    assert b_singly
    assert a_singly
    assert doubly
    assert not a_singly & b_singly
    assert not doubly & (a_singly | b_singly)
    # The consumer's node sends a mandate and gets an answer: no token, handle or column.
    [(leader, _, payload, answered)] = [m[1:] for m in between if m[0] == keys["c"]]
    assert leader == "a"
    assert not {"tokens", "handles", "attributes"} & (set(payload) | set(answered))


def test_a_join_one_holder_refuses_spends_nothing_on_either(tmp_path: Path) -> None:
    # b's cap is below the join's price: refused on b before anything is read.
    with nodes(tmp_path, caps=(1000.0, 0.3)) as world:
        with pytest.raises(BudgetExhausted, match="peer a"):
            world.consumer().query(JOIN, epsilon=0.5)
        assert spent(world) == (0, 0, 0)
        assert agrees(world.a)
        assert agrees(world.b)
    # a's cap is: b reserved first, and releases when a refuses.
    with nodes(tmp_path / "again", caps=(0.3, 1000.0)) as world:
        with pytest.raises(BudgetExhausted):
            world.consumer().query(JOIN, epsilon=0.5)
        assert spent(world) == (0, 0, 0)
        assert [e.state for e in world.b.ledger.entries()] == ["released"]


def test_a_leader_that_cannot_reach_its_partner_tells_the_consumers_node_no_more_than_why(
    tmp_path: Path,
) -> None:
    from sqlalchemy import update

    from entrepot.federation.models import Peer

    hidden = "http://127.0.0.1:9/"
    with nodes(tmp_path, settings={"a": {"peer_retries": 0}}) as world:
        # The address a reaches b at, on a's network: its own, not c's to learn.
        with world.a.node.db.write() as session:
            session.execute(update(Peer).where(Peer.name == "b").values(url=hidden))
        with pytest.raises(PeerError, match=r"^peer a: .*node b") as caught:
            world.consumer().query(JOIN, epsilon=0.5)
        told = json.dumps(caught.value.to_dict())
        assert "127.0.0.1:9" not in told
        assert "entrepot peer" not in told
        assert caught.value.details["rule"] == "peer_unreachable"
        assert spent(world) == (0, 0, 0)


def test_a_consumer_on_a_holders_node_has_the_other_holder_match(tmp_path: Path) -> None:
    local = JOIN.replace("FROM a.", "FROM ")
    with nodes(tmp_path, consumers="a") as world:
        answered = world.consumer("a").query(local, epsilon=0.5)
        assert answered["node"] == "b"
        assert {r["node"] for r in answered["receipts"]} == {"a", "b"}
        assert spent(world) == (0.5, 0.5, 0)


def test_each_holders_own_policy_and_grant_are_checked_on_its_node(tmp_path: Path) -> None:
    with nodes(tmp_path) as world:
        owner = world.b.actor("acme-pay")
        text = POLICY.format(other="payments.refund", cap=1000.0, floor=0)
        world.b.policies.set(owner, "acme-pay/transactions", text, where="test")
        with pytest.raises(PolicyViolation, match="does not allow joining"):
            world.consumer().query(JOIN, epsilon=0.5)
        assert spent(world) == (0, 0, 0)
    with nodes(tmp_path / "again", grants="a") as world:
        with pytest.raises(ContractViolation, match="peer a"):
            world.consumer().query(JOIN, epsilon=0.5)
        assert spent(world) == (0, 0, 0)


def test_the_consumers_node_shows_its_grants_on_other_nodes_as_read_only_copies(
    tmp_path: Path,
) -> None:
    from sqlalchemy import update

    from entrepot.federation.models import Peer

    with nodes(tmp_path) as world:
        consumer = world.consumer()
        copies = consumer.access_remote()
        assert {(c["node"], c["state"], c["fresh"]) for c in copies} == {
            ("a", "granted", True),
            ("b", "granted", True),
        }
        # Revoked on b: the copy follows at its next read; c enforces nothing itself.
        [grant] = [c for c in copies if c["node"] == "b"]
        LocalClient(world.b, world.b.actor("acme-pay")).revoke_grant(grant["id"], "ended")
        states = {c["node"]: c["state"] for c in consumer.access_remote()}
        assert states == {"a": "granted", "b": "revoked"}
        # A node that cannot be reached keeps its last copy, marked as such.
        with world.c.node.db.write() as session:
            session.execute(update(Peer).where(Peer.name == "a").values(url="http://127.0.0.1:9/"))
        last = {c["node"]: (c["state"], c["fresh"]) for c in consumer.access_remote()}
        assert last == {"a": ("granted", False), "b": ("revoked", True)}
        # The copy goes with the peer.
        world.c.peers.remove("a")
        assert {c["node"] for c in consumer.access_remote()} == {"b"}


def test_a_side_larger_than_a_message_crosses_in_batches_each_well_under_the_cap(
    tmp_path: Path, between: list[Message]
) -> None:
    people = [f"AB{i:05d}" for i in range(2 * BATCH_SIZE + 100)]
    visits = [(person, "910101", "I") for person in people]
    payments = [(person, "910102", 1.0) for person in people]
    with nodes(tmp_path, visits=visits, payments=payments) as world:
        leader = bytes(world.a.node.verify_key).hex()
        cap = world.a.settings.peer_response_max_bytes
        between.clear()
        answered = world.consumer().query(JOIN, epsilon=0.5)
        assert {r["node"] for r in answered["receipts"]} == {"a", "b"}
        assert spent(world) == (0.5, 0.5, 0)
    steps = by_step(between, leader)
    sent = [payload for payload, _ in steps["reblind"] if "tokens" in payload]
    assert len(steps["blind"]) >= 3
    assert len(sent) >= 3
    for messages in steps.values():
        for payload, answered in messages:
            assert len(json.dumps(payload)) < cap / 8
            assert len(json.dumps(answered)) < cap / 8
    # Every distinct key of each side crossed once, and came back blinded by both.
    assert len(set().union(*(tokens(answered) for _, answered in steps["blind"]))) == len(people)
    assert len(set().union(*(tokens(payload) for payload in sent))) == len(people)
    doubly = set().union(*(tokens(answered) for _, answered in steps["reblind"]))
    assert len(doubly) == len(people)


@pytest.mark.slow
@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(visits=visits_drawn, payments=payments_drawn)
def test_a_join_across_nodes_without_noise_equals_the_plain_join_of_the_raw_data(
    tmp_path_factory: pytest.TempPathFactory, visits: list[Visit], payments: list[Payment]
) -> None:
    across = SQL.replace("FROM riverside", "FROM a.riverside").replace("JOIN acme", "JOIN b.acme")
    with nodes(tmp_path_factory.mktemp("nodes"), visits=visits, payments=payments) as world:
        actor = world.c.actor(CONSUMER)
        leader, body = mandate(world.c, actor, ("a", "b"), across, epsilon=0.5, purpose=None)
        assert leader == "a"
        run, exact = exact_join(world.a, body)
        # Nothing answered: a spends nothing, b what its data cost once read.
        assert world.spent("a") == 0
    got = exact_answers(run.plan.plan, exact)
    want = plain_join(visits, payments)
    assert set(got) == set(want)
    for district, (people, pairs, paid) in want.items():
        assert got[district] == pytest.approx((people, pairs, paid))


def test_a_signed_mandate_that_is_malformed_is_refused_naming_what_and_spends_nothing(
    tmp_path: Path,
) -> None:
    with nodes(tmp_path) as world, world.c.peers.call("a") as call:
        asker = world.c.actor(CONSUMER)
        _, body = mandate(world.c, asker, ("a", "b"), JOIN, epsilon=0.5, purpose=None)
        for change, message in (
            ({"epsilon": "lots"}, "no epsilon of the right kind"),
            ({"epsilon": 10**400}, "no epsilon of the right kind"),
            ({"epsilon": float("nan")}, "no epsilon of the right kind"),
            ({"sql": None}, "no sql of the right kind"),
            ({"purpose": ["a"]}, "no purpose of the right kind"),
            ({"partner": True}, "no partner of the right kind"),
            ({"sql": "SELECT FROM WHERE"}, "no query that parses"),
            ({"sql": "SELECT 1"}, "reads one dataset of its leader and one of its partner"),
        ):
            signed = {**body["mandate"], **change, "nonce": secrets.token_hex(16)}
            sent = {"mandate": signed, "signature": _sign(world.c, signed)}
            with pytest.raises(InvalidInput, match=message):
                call.call("POST", JOIN_PATH, sent)
        assert spent(world) == (0, 0, 0)


def test_a_step_of_a_part_this_worker_never_prepared_is_refused_naming_the_rule(
    tmp_path: Path,
) -> None:
    # What a leader meets when its step reaches another worker than its prepare did.
    with nodes(tmp_path) as world, world.a.peers.call("b") as call:
        for step, payload in (("blind", {"page": 0}), ("reblind", {"page": 0})):
            with pytest.raises(Conflict, match="in this worker process") as refused:
                call.call("POST", f"{PART_PATH}/{step}", {"join": "0" * 32, **payload})
            assert refused.value.details["rule"] == "join_part_one_worker"
            assert refused.value.details["peer"] == "b"


def compressed(table: pa.Table) -> bytes:
    """A page of a few kilobytes that is 16 MiB read, twice what an answer may carry: its
    columns padded, then compressed."""
    pad = [b"\0" * (16 << 20), *([b""] * (len(table) - 1))]
    padded = table.append_column("pad", pa.array(pad))
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, padded.schema, options=options) as writer:
        writer.write_table(padded)
    return bytes(sink.getvalue())


def repeated(table: pa.Table) -> bytes:
    """A page of more rows than a page holds: the rows sent again and again."""
    return page_bytes(pa.concat_tables([table] * (BATCH_SIZE // len(table) + 1)))


@pytest.mark.parametrize(
    ("page", "said", "rule"),
    [
        (compressed, "with compressed buffers", "page_compressed"),
        (repeated, f"of more than {BATCH_SIZE} rows", "page_rows"),
    ],
    ids=["compressed", "rows"],
)
def test_a_partners_page_past_its_bounds_is_refused_unread_naming_the_peer_and_the_limit(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    page: Any,
    said: str,
    rule: str,
) -> None:
    # b, the partner, sends its columns' pages as a hostile node would.
    monkeypatch.setattr(join, "page_bytes", page)
    with nodes(tmp_path) as world:
        message = f"peer b sent a page of a join's columns {said}"
        with pytest.raises(QueryFailed, match=message) as refused:
            world.consumer().query(JOIN, epsilon=0.5)
        assert (refused.value.details["peer"], refused.value.details["rule"]) == ("b", rule)
        # Both holders had read their data: each spent its ε and logged the failure, and
        # b's part ended with a's abort; nothing is held reserved or left open.
        assert spent(world) == (0.5, 0.5, 0)
        for holder in (world.a, world.b):
            assert "reserved" not in [e.state for e in holder.ledger.entries()]
            assert holder.ledger.check() == []
            joins = [e for _, e in holder.node.log.entries() if e["kind"] == "join"]
            assert [e["outcome"] for e in joins] == ["failed"]
            assert agrees(holder)
        parts = [e for _, e in world.b.node.log.entries() if e.get("action") == "join_part"]
        assert [e["outcome"] for e in parts] == ["aborted"]


def test_a_partner_answers_the_same_pages_and_tokens_whatever_the_where_keeps(
    tmp_path: Path, between: list[Message]
) -> None:
    visits = [("AB0001", "910101", "I"), ("AB0002", "910101", "I"), ("AB0009", "910101", "I")]
    payments = [("AB0001", "910101", 1.0)] * BATCH_SIZE + [("AB0002", "910102", 2.0)] * BATCH_SIZE
    payments.append(("AB0003", "910102", 2.0))
    query = (
        "SELECT t.district, COUNT(*) AS pairs FROM a.riverside_hospitals.outpatient_visits v "
        "JOIN b.acme_pay.transactions t ON v.patient_id = t.person_id "
        "WHERE {} GROUP BY t.district"
    )
    keeps = (
        "t.district = '910103'",  # no payment
        "t.district = '910101'",  # one person's
        "t.district IN ('910101', '910102')",  # every payment
    )
    seen = set()
    with nodes(tmp_path, visits=visits, payments=payments) as world:
        leader = bytes(world.a.node.verify_key).hex()
        for where in keeps:
            between.clear()
            world.consumer().query(query.format(where), epsilon=0.1)
            blind = by_step(between, leader)["blind"]
            seen.add((len(blind), len(set().union(*(tokens(answer) for _, answer in blind)))))
    # the version's rows make 3 pages and its 3 distinct keys 3 tokens, whatever is kept
    assert seen == {(3, 3)}
