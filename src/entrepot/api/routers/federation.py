"""Federation: what other nodes call, each answer signed with the node's key.

A protocol of its own beside the API (like Delta Sharing's), under ``/federation/v1``:
its callers are nodes, authenticated by the signed envelope, never by a token.

``GET /federation/v1/node`` tells anyone the node's name, URL and key (an operator
adding this node as a peer checks it against the key it was given). Every other
route answers only a request signed by a peer this node's operator added
(:mod:`entrepot.federation.envelope`), and its answers, refusals included, are
signed for that request.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sys
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from entrepot._text import excerpt
from entrepot.api._exchange import exchange_of
from entrepot.api.openapi import operation_id
from entrepot.clock import utcnow
from entrepot.errors import Conflict, EntrepotError, Forbidden, InvalidInput, PeerError
from entrepot.federation.envelope import (
    SIGNATURE,
    Sender,
    open_request,
    request_digest,
    sign_response,
    signed_for,
)
from entrepot.federation.peers import identity_of

if TYPE_CHECKING:
    from entrepot.exchange import Exchange
    from entrepot.exchange.coordinator import Floor
    from entrepot.transparency.entries import Entry

__all__ = ["router"]

# The answer's body is JSON, signed in the Entrepot-Signature header.
_SIGNED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A JSON body, signed for the request in `Entrepot-Signature`.",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}

router = APIRouter(
    prefix="/federation/v1", tags=["federation"], generate_unique_id_function=operation_id
)


def _signed(request: Request, status: int, payload: Any, *, digest: str | None = None) -> Response:
    """``payload`` as the answer to ``request``, signed for its digest (or ``digest``):
    the signed text holds a digest of the caller's bytes, never the bytes themselves."""
    body = json.dumps(payload, sort_keys=True, default=str).encode()
    key = exchange_of(request).node.signing_key
    digest = request_digest(request.headers) if digest is None else digest
    signature = sign_response(key, digest, status, body)
    return Response(
        body, status_code=status, media_type="application/json", headers={SIGNATURE: signature}
    )


_NONCE = re.compile(r"[0-9a-f]{32}")


def _target(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _payload(body: bytes) -> dict[str, Any]:
    try:
        found = json.loads(body or b"{}")
    except (ValueError, RecursionError):
        # Nested deeper than the parser's stack: refused as any body that is not JSON.
        found = None
    if not isinstance(found, dict):
        raise InvalidInput("the request's body is not a JSON object", hint="send a JSON object")
    return found


async def _answer(
    request: Request,
    work: Callable[[Sender, dict[str, Any]], Any],
    floor: Floor | None = None,
) -> Response:
    """Check the request's envelope, run ``work`` for its sender and body, sign the answer.

    With ``floor``, which ``work`` passes to the coordinator, the answer or refusal is
    padded to the latency floor once it is signed, as the API pads a local query's: the
    work after the operation (the receipt, the kept answer) is inside the floor, and the
    wait holds no thread.
    """
    try:
        return await _answered(request, work)
    finally:
        if floor is not None:
            await asyncio.sleep(floor.rest_s())


async def _answered(request: Request, work: Callable[[Sender, dict[str, Any]], Any]) -> Response:
    body = await request.body()
    exchange = exchange_of(request)
    peers = exchange.peers

    def checked() -> Any:
        sender = open_request(
            request.headers,
            request.method,
            _target(request),
            body,
            recipient=exchange.node.verify_key,
            trusted=peers.trusted,
            fresh=peers.fresh,
            now=utcnow(),
            max_skew_s=exchange.settings.peer_clock_skew_s,
        )
        return work(sender, _payload(body))

    try:
        payload = await run_in_threadpool(checked)
    except EntrepotError as error:
        return _signed(request, error.status, _onward(error).to_dict())
    return _signed(request, 200, payload)


def _onward(error: EntrepotError) -> EntrepotError:
    """``error`` as the calling peer is told it. A call of this node's own to another
    node that failed (a partner in a join) names that node and the rule only: the URL
    this node reaches it at is of this node's network, and the hints are for this
    node's operator."""
    if not isinstance(error, PeerError):
        return error
    peer, rule = error.details.get("peer"), error.details.get("rule")
    return PeerError(
        f"this node's call to node {peer} failed ({rule})",
        hint="ask again later; this node's operator sees how its calls to its peers go",
        peer=peer,
        rule=rule,
    )


@router.get(
    "/node",
    summary="This node's name, URL and Ed25519 public key (no authentication).",
    response_model=None,
    responses=_SIGNED,
)
async def node_identity(request: Request) -> Response:
    """The node's identity, signed for the caller's `Entrepot-Signature` if it signs this
    very request, for no request otherwise."""
    node = exchange_of(request).node
    # Anyone may ask, so the signature is checked, not its key's trust: a 200 signed for
    # the digest of a signature made for another path (copied from a peer's request on
    # the way) would pass this identity off as that request's answer.
    body = await request.body()
    signed = signed_for(request.headers, request.method, _target(request), body)
    digest = None if signed else request_digest({})
    return _signed(request, 200, identity_of(node).to_dict(), digest=digest)


@router.get(
    "/catalog",
    summary="A page of the node's signed catalog feed: DCAT-3 datasets changed since a cursor "
    "(peers only).",
    response_model=None,
    responses=_SIGNED,
)
async def catalog_feed(
    request: Request,
    since: Annotated[
        str | None, Query(max_length=64, description="The cursor of the last feed read.")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=1000, description="The most datasets of the page (at most 1000).")
    ] = 1000,
) -> Response:
    from entrepot.federation.feed import catalog_feed as feed

    exchange = exchange_of(request)
    return await _answer(request, lambda _sender, _body: feed(exchange, since, limit))


def _epsilon(body: dict[str, Any], *, optional: bool = False) -> Any:
    value = body.get("epsilon")
    if value is None and optional:
        return None
    # A finite number a float holds (not NaN); what a ledger could not store, it refuses
    # by name.
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not abs(value) <= sys.float_info.max
    ):
        raise InvalidInput("the request's epsilon is not a finite number", hint="send a number")
    return float(value)


def _date(body: dict[str, Any], name: str, *, optional: bool = False) -> Any:
    value = _text(body, name, optional=optional)
    try:
        return None if value is None else date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"the request's {name} is not a date", hint=f"send {name} as YYYY-MM-DD"
        ) from None


def _text(body: dict[str, Any], name: str, *, optional: bool = False) -> Any:
    value = body.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"the request's {name} is missing or not text", hint=f"send {name}")
    return value


@router.post(
    "/access",
    summary="A peer's consumer asks for access to a dataset of this node (peers only).",
    response_model=None,
    responses=_SIGNED,
)
async def remote_access(request: Request) -> Response:
    """The request is made on this node, for the organization that stands for the peer's
    consumer; this node's provider grants or refuses it, and the grant lives here. Only
    this node's own datasets are asked for: a dataset named with a node is refused
    (``peer_relay``), so no peer reaches a third node through this one."""
    from entrepot.federation.remote import consumer_of, log_peer_event, remote_dataset

    exchange = exchange_of(request)

    def work(sender: Sender, body: dict[str, Any]) -> Any:
        def run() -> dict[str, Any]:
            actions = body.get("actions") or ["aggregate-query"]
            if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
                raise InvalidInput(
                    "the request's actions are not a list of text", hint="send a list"
                )
            epsilon = _epsilon(body)
            dataset, purpose = _text(body, "dataset"), _text(body, "purpose")
            until, since = _date(body, "until"), _date(body, "since", optional=True)
            note = _text(body, "note", optional=True) or ""
            if remote_dataset(dataset) is not None:
                raise _relayed(f"the dataset {excerpt(dataset)!r} is named with a node")
            # The request's own fields and terms checked first: a request refused for
            # them makes no organization.
            exchange.contracts.check_terms(
                purpose=purpose,
                epsilon=epsilon,
                until=until,
                since=since,
                actions=tuple(actions),
                note=note,
            )
            actor = consumer_of(exchange, sender.key, _text(body, "consumer"), create=True)
            # The contracts themselves, not a client: a client forwards a dataset of a peer.
            answered = exchange.contracts.request(
                actor,
                dataset,
                purpose=purpose,
                epsilon=epsilon,
                until=until,
                since=since,
                actions=tuple(actions),
                note=note,
            ).to_body()
            peer = exchange.peers.get(exchange.peers.name_of(sender.key))
            log_peer_event(
                exchange,
                actor.name,
                peer,
                "access_request_received",
                dataset=answered.get("dataset"),
                request=str(answered.get("id", "")),
            )
            return answered

        request_id = body.get("request")
        if request_id is None:
            return run()
        # A repeat gets the request made the first time; nothing new is logged.
        key = f"access:{_request_id(request_id, 'request')}"
        return _once_per_request(exchange, sender, key, body, run)

    return await _answer(request, work)


@router.post(
    "/access/list",
    summary="A peer's consumer reads its requests and grants on this node (peers only).",
    response_model=None,
    responses=_SIGNED,
)
async def remote_contracts(request: Request) -> Response:
    """Its pending requests and its grants, as this node holds them: the peer keeps a
    read-only copy; the grants are enforced here only."""
    from entrepot.client.local import LocalClient
    from entrepot.errors import NotFound
    from entrepot.federation.remote import consumer_of

    exchange = exchange_of(request)

    def work(sender: Sender, body: dict[str, Any]) -> Any:
        try:
            actor = consumer_of(exchange, sender.key, _text(body, "consumer"), create=False)
        except NotFound:
            return {"contracts": []}
        client = LocalClient(exchange, actor)
        return {"contracts": [*client.access_requests(pending=True), *client.access_grants()]}

    return await _answer(request, work)


def _relayed(what: str) -> Forbidden:
    """A peer's request for another node's data: trust between nodes is not transitive."""
    return Forbidden(
        f"{what}: a peer asks this node about its own data only",
        hint="ask the node that holds the data; its operator adds your node as a peer",
        rule="peer_relay",
    )


def _request_id(value: Any, name: str) -> str:
    """A peer's id for a request it may repeat: 32 hex digits, as its node draws them."""
    if not isinstance(value, str) or not _NONCE.fullmatch(value):
        raise InvalidInput(
            f"the request's {name} is not 32 hex digits",
            hint=f"send a fresh random {name} of 16 bytes, in hex",
        )
    return value


def _once_per_request(
    exchange: Exchange,
    sender: Sender,
    request_id: str,
    body: dict[str, Any],
    run: Callable[[], dict[str, Any]],
    logged: Callable[[dict[str, Any]], Entry] | None = None,
) -> dict[str, Any]:
    """``run``'s answer, kept under the peer's request id: a repeat of the request (a
    new signed message with the same id and body) gets it again and spends nothing, its
    ``logged`` entry (if any: the answer delivered again is an access) owed to the log
    in one commit."""
    from entrepot.federation.remote import owe_peer_event

    keys = exchange.idempotency
    owner = f"peer:{sender.key}"
    fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    # Unsynced: the query's reservation is a synced commit after it, so a crash never
    # keeps a spend and loses its claim; a claim lost with nothing after it was unused.
    try:
        kept = keys.claim(owner, request_id, fingerprint, synced=False)
    except Conflict as error:
        if error.details.get("idempotency") != "running":
            raise
        raise Conflict(
            "this node is still answering the same request, sent before",
            hint="it is spent and logged once, when done; ask again later as a new request",
            idempotency="running",
        ) from None
    if kept is not None:
        if logged is not None:
            owe_peer_event(exchange, logged(kept))
        return kept
    try:
        answered = run()
    except BaseException:
        # Refused or failed: nothing was spent, so a repeat runs afresh.
        keys.release(owner, request_id)
        raise
    # Unsynced too: a process that dies keeps it (SQLite's write-ahead log, PostgreSQL's
    # WAL writer), and the synced commits of the append that follows put it on disk.
    keys.keep(owner, request_id, answered, synced=False)
    return answered


@router.post(
    "/query",
    summary="A peer's consumer asks a private query of this node's data (peers only).",
    response_model=None,
    responses=_SIGNED,
)
async def remote_query(request: Request) -> Response:
    """Run by this node's coordinator as for any consumer: this node's contract, policy,
    ledger, noise, log and signed receipt. Only the released answer goes back. The query
    reads this node's data only: a table named with a node is refused by the coordinator
    (``unknown_table``) and logged, never forwarded to another node."""
    from entrepot.client.local import answer_body
    from entrepot.exchange.coordinator import Floor
    from entrepot.federation.remote import consumer_of, flush_later, peer_entry
    from entrepot.federation.witness import cosign_later, witnessed_receipt

    exchange = exchange_of(request)
    # From the request's arrival, as a local query's: what comes before the operation
    # (the envelope, the nonce, the request id) is inside the floor too.
    floor = Floor()

    def work(sender: Sender, body: dict[str, Any]) -> Any:
        sql = _text(body, "sql")
        purpose = _text(body, "purpose", optional=True)
        asked = _epsilon(body, optional=True)
        actor = consumer_of(exchange, sender.key, _text(body, "consumer"), create=False)
        peer = exchange.peers.by_key(sender.key)

        def received(dataset: Any, spent: Any) -> Entry:
            return peer_entry(actor.name, peer, "query_received", dataset=dataset, epsilon=spent)

        def logged(answered: dict[str, Any]) -> Entry:
            return received(answered.get("dataset"), answered.get("epsilon_spent", 0))

        def run() -> dict[str, Any]:
            # The coordinator itself, not a client: a client forwards a table of a peer.
            # The entry is owed in the commit that spends: no commit of its own.
            result = exchange.queries.run(
                actor,
                sql,
                epsilon=asked,
                purpose=purpose,
                floor=floor,
                owed=lambda refs, spent: received(" JOIN ".join(map(str, refs)), spent),
            )
            answered = answer_body(result.to_dict())
            answered["receipt"] = witnessed_receipt(exchange, answered["receipt"])
            cosign_later(exchange)
            return answered

        request_id = body.get("request")
        if request_id is None:
            answered = run()
        else:
            answered = _once_per_request(
                exchange, sender, _request_id(request_id, "request"), body, run, logged
            )
        flush_later(exchange)
        return answered

    return await _answer(request, work, floor)


@router.post(
    "/join",
    summary="A peer's consumer asks a private join of a dataset of this node with one of "
    "another node; this node conducts it (peers only).",
    response_model=None,
    responses=_SIGNED,
)
async def remote_join(request: Request) -> Response:
    """Conducted by this node's coordinator with the other holder's node taking part:
    each node checks, spends, logs and signs for its own dataset. Only the released
    answer and both receipts go back."""
    from entrepot.client.local import answer_body
    from entrepot.federation.join import answered_again, lead_join

    exchange = exchange_of(request)

    def work(sender: Sender, body: dict[str, Any]) -> Any:
        mandate = body.get("mandate")
        nonce = mandate.get("nonce") if isinstance(mandate, dict) else None
        # A mandate is answered once: its node repeats it when the answer was lost.
        return _once_per_request(
            exchange,
            sender,
            f"join:{_request_id(nonce, 'mandate nonce')}",
            body,
            lambda: lead_join(exchange, sender, body, answer_body),
            lambda kept: answered_again(exchange, sender, body, kept),
        )

    return await _answer(request, work)


@router.post(
    "/join/part/{step}",
    summary="A step of this node's part in a private join another node conducts (peers only).",
    response_model=None,
    responses=_SIGNED,
)
async def join_part(request: Request, step: str) -> Response:
    """``prepare`` (check the mandate, grant and policy; reserve), ``blind``,
    ``reblind``, ``complete`` (log and sign) or ``abort``."""
    exchange = exchange_of(request)
    return await _answer(request, lambda sender, body: exchange.joins.answer(sender, step, body))


_ORIGIN = "entrepot.log/0c4f1b6e2d9a8c7b5e3f1a0d9c8b7a6e"
_CHECKPOINT = (
    f"{_ORIGIN}\n3\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
    f"\u2014 {_ORIGIN} Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9"
    "nTo+zyWE+xeMcTOAYQ8=\n"
)
_COSIGNATURE = (
    "\u2014 entrepot.witness/5d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn"
    "/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)


def _text_answer(example: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": "Plain text (c2sp.org).",
            "content": {"text/plain": {"schema": {"type": "string"}, "example": example}},
        }
    }


def _plain(text: str) -> Response:
    return Response(text.encode(), media_type="text/plain; charset=utf-8")


def _refused(error: EntrepotError) -> Response:
    if error.details.get("rule") == "witness_old_size":
        from entrepot.federation.witness import SIZE_TYPE

        # The exact media type the protocol names, with no charset appended.
        body = f"{error.details['size']}\n".encode()
        return Response(body, 409, headers={"Content-Type": SIZE_TYPE})
    return Response(
        json.dumps(error.to_dict()).encode(), error.status, media_type="application/json"
    )


@router.get(
    "/checkpoint",
    summary="This node's latest checkpoint, with a consistency proof from an older size "
    "(c2sp.org/tlog-checkpoint; no authentication).",
    response_model=None,
    responses=_text_answer("old 0\n\n" + _CHECKPOINT),
)
async def checkpoint(
    request: Request,
    old: Annotated[int, Query(ge=0, description="The size of the checkpoint seen last.")] = 0,
) -> Response:
    """The body of an add-checkpoint request (c2sp.org/tlog-witness): `old N`, the proof's
    lines, a blank line and the checkpoint, signed by the node's key."""
    from entrepot.federation.witness import submission_for

    exchange = exchange_of(request)
    try:
        submission = await run_in_threadpool(submission_for, exchange, old)
    except EntrepotError as error:
        return _refused(error)
    return _plain(submission.to_text())


@router.get(
    "/checkpoint/cosigned",
    summary="This node's latest checkpoint as its peers cosigned it, with a consistency proof "
    "from an older size, such as a receipt's head (no authentication).",
    response_model=None,
    responses=_text_answer("old 0\n\n" + _CHECKPOINT + _COSIGNATURE),
)
async def cosigned_checkpoint(
    request: Request,
    old: Annotated[int, Query(ge=0, description="The size of a receipt's head.")] = 0,
) -> Response:
    """The body of `/checkpoint`, its note carrying the peers' cosignatures: a receipt
    answered before its checkpoint was cosigned takes it in its `witnessed` part. The
    peers are asked now if no checkpoint they cosigned covers `old` yet; 400
    (`checkpoint_old_size`) for a size past the latest head."""
    from entrepot.federation.witness import cosigned_submission

    exchange = exchange_of(request)
    try:
        submission = await run_in_threadpool(cosigned_submission, exchange, old)
    except EntrepotError as error:
        return _refused(error)
    return _plain(submission.to_text())


@router.post(
    "/witness/add-checkpoint",
    summary="Cosign a peer's checkpoint, consistent with the one cosigned last "
    "(c2sp.org/tlog-witness add-checkpoint; no authentication beyond the checkpoint's "
    "signature).",
    response_model=None,
    responses=_text_answer(_COSIGNATURE),
)
async def add_checkpoint(request: Request) -> Response:
    """Answers the cosignature line, or the protocol's status: 400, 403, 404, 409 (with the
    size cosigned last, `text/x.tlog.size`) or 422 (a fork)."""
    from entrepot.federation.witness import Witness

    body = await request.body()
    witness = Witness(exchange_of(request))
    try:
        line = await run_in_threadpool(witness.add_checkpoint, body)
    except EntrepotError as error:
        return _refused(error)
    return _plain(line)


@router.get(
    "/witness/{origin_hash}/checkpoint",
    summary="The latest checkpoint of a peer's log this node cosigned, with its signatures "
    "(c2sp.org/tlog-witness monitoring; no authentication).",
    response_model=None,
    responses=_text_answer(_CHECKPOINT + _COSIGNATURE),
)
async def witnessed_checkpoint(request: Request, origin_hash: str) -> Response:
    """The checkpoint with the log's signature and this node's cosignature; `404` if this
    node cosigned none of that log. The origin hash is the SHA-256 of the origin, in hex."""
    from entrepot.federation.witness import Witness

    witness = Witness(exchange_of(request))
    try:
        text = await run_in_threadpool(witness.checkpoint_of, origin_hash)
    except EntrepotError as error:
        return _refused(error)
    return _plain(text)
