"""Private joins across nodes: each holder's node decides and spends for its own dataset.

A consumer of node C asks ``FROM a.p1.d1 x JOIN b.p2.d2 y ON x.k = y.k`` (a table
without a node is C's own). C signs a *mandate* (who asks, the query, its ε and
purpose) and sends it to the *leader*: the first holder's node that is not C. The
leader's coordinator conducts the join as on one node, the other holder's node
(the *partner*) taking part for its dataset through a :class:`PeerPartner`::

    C → leader            join        the mandate, signed by C
    leader → partner      prepare     the mandate, the leader's side (public metadata)
                                      → the partner's side, its price; ε reserved there
    leader                            prices the join, reserves its own ε
    leader → partner      blind       → the partner's tokens and columns by handle
    leader → partner      reblind     the leader's tokens → blinded by both
    leader                            match, aggregate, noise, its log and receipt
    leader → partner      complete    the answer → the partner's log entry and receipt
    leader → partner      abort       (instead of complete) release, or spend if read

Each node checks the consumer's grant and its own policy (``join_with`` names the
other dataset as ``node:provider/dataset``), prices the join from both sides' public
metadata and reserves its own ε before any data of either side is read; a refusal
on either node releases both reservations. The matching and the aggregation run on
the leader, never on the consumer's node. The partner checks the mandate's
signature with the consumer node's key, so a peer cannot spend a grant in another
node's consumer's name.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import pyarrow as pa
from nacl.exceptions import BadSignatureError

from entrepot._numbers import MAX_EPSILON
from entrepot.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from entrepot.federation._pages import page_bytes, read_page
from entrepot.federation.envelope import parse_key
from entrepot.federation.peers import identity_of
from entrepot.federation.remote import consumer_of, log_peer_event, peer_entry
from entrepot.privacy.policy import parse_policy
from entrepot.privacy.psi import BATCH_SIZE, TOKEN_BYTES, BlindedBatch, DoublyBlindedBatch
from entrepot.standards.schema import Standard, parse_standard
from entrepot.transparency import DatasetVersion
from entrepot.vault import (
    Blind,
    Blinded,
    DatasetRef,
    Operation,
    Outcome,
    Progress,
    Published,
    PublishRequest,
    Reblind,
    Reblinded,
    Touched,
    VersionInfo,
)

if TYPE_CHECKING:
    from entrepot.exchange import Exchange
    from entrepot.exchange.actors import Actor
    from entrepot.exchange.coordinator import Found, Part, Priced
    from entrepot.exchange.join import JoinQuery, JoinRun
    from entrepot.federation.envelope import Sender
    from entrepot.transparency.entries import Entry

__all__ = [
    "JOIN_PATH",
    "PART_PATH",
    "Parts",
    "PeerPartner",
    "answered_again",
    "exact_join",
    "forward_join",
    "holders_of",
    "lead_join",
    "mandate",
]

JOIN_PATH = "federation/v1/join"
PART_PATH = "federation/v1/join/part"
_MANDATE = b"entrepot-federation-join/v1\n"
# A part whose leader never completes nor aborts it ends after this, as a holder's
# key does between its two steps (entrepot.vault.local).
_PART_TTL_S = 600.0


# -- the mandate --------------------------------------------------------------------


def _canonical(mandate: dict[str, Any]) -> bytes:
    return _MANDATE + json.dumps(mandate, sort_keys=True, separators=(",", ":")).encode()


def _sign(exchange: Exchange, mandate: dict[str, Any]) -> str:
    signed = exchange.node.signing_key.sign(_canonical(mandate)).signature
    return base64.b64encode(signed).decode()


def _open(exchange: Exchange, body: dict[str, Any], *, leader: str) -> tuple[Actor, dict[str, Any]]:
    """The consumer a mandate speaks for on this node, once its signature, its freshness
    and its nodes are checked."""
    mandate, signature = body.get("mandate"), body.get("signature")
    if not isinstance(mandate, dict) or not isinstance(signature, str):
        raise InvalidInput("the request carries no mandate", hint="send mandate and signature")
    own = identity_of(exchange.node)
    key = str(mandate.get("key", ""))
    refused = Unauthorized(
        "the join's mandate is not signed by its consumer's node",
        hint="the consumer's node signs the mandate; its operator and this node's must "
        "have added each other as peers",
        rule="mandate_signature",
    )
    if key != own.key and not exchange.peers.trusted(key):
        raise refused
    try:
        parse_key(key).verify(_canonical(mandate), base64.b64decode(signature, validate=True))
    except (ValueError, BadSignatureError):
        raise refused from None
    _check_fields(mandate)
    issued = mandate.get("issued")
    skew = exchange.settings.peer_clock_skew_s
    if not isinstance(issued, int) or abs(time.time() - issued) > skew:
        raise Unauthorized(
            "the join's mandate is too old or from the future",
            hint=f"the consumer's node's clock must be within {skew:g} s of this node's",
            rule="mandate_clock_skew",
        )
    if mandate.get("leader") != leader:
        raise Unauthorized(
            "the join's mandate names another leader",
            hint="only the node the consumer's node chose conducts its join",
            rule="mandate_leader",
        )
    if not exchange.peers.fresh(key, f"mandate:{mandate.get('nonce')}"):
        raise Unauthorized(
            "the join's mandate was used already",
            hint="ask the join again: each one has a mandate of its own",
            rule="mandate_replay",
        )
    org = str(mandate.get("consumer", ""))
    if key == own.key:
        return exchange.accounts.actor(org), mandate
    return consumer_of(exchange, key, org, create=False), mandate


# What a mandate holds: each field's name and the kinds of value it may take.
_FIELDS: dict[str, tuple[type, ...]] = {
    "consumer": (str,),
    "sql": (str,),
    "epsilon": (int, float, type(None)),
    "purpose": (str, type(None)),
    "leader": (str,),
    "partner": (str,),
}


def _check_fields(mandate: dict[str, Any]) -> None:
    """Refuse a mandate, signed as it may be, whose fields are not of their kinds."""
    for name, kinds in _FIELDS.items():
        value = mandate.get(name)
        wrong = not isinstance(value, kinds) or isinstance(value, bool)
        # A number beyond any ε a ledger stores (NaN and infinities included) is wrong too.
        if wrong or (isinstance(value, int | float) and not abs(value) <= MAX_EPSILON):
            raise InvalidInput(
                f"the join's mandate has no {name} of the right kind",
                hint="the consumer's node signs the query, its ε, purpose and nodes as "
                "its consumer asked them",
            )


# -- which node holds what ----------------------------------------------------------


def _sql_name(node: str) -> str:
    return node.replace("-", "_")


def holders_of(exchange: Exchange, sql: str) -> tuple[str, str] | None:
    """The nodes holding the two datasets of ``sql``, a join across nodes; else None.

    A table named without a node is this node's; a join of two tables of one peer is
    that peer's own join, and is not one across nodes.
    """
    import sqlglot
    from sqlglot import exp

    from entrepot.federation.models import Peer
    from entrepot.privacy.sql.join import is_join

    if not is_join(sql):
        return None
    tables = list(sqlglot.parse_one(sql, read="duckdb").find_all(exp.Table))
    if len(tables) != 2 or not any(table.catalog for table in tables):
        return None
    from sqlalchemy import select

    with exchange.node.db.read() as session:
        peers = {_sql_name(p): p for p in session.scalars(select(Peer.name))}
    own = identity_of(exchange.node).name
    peers[_sql_name(own)] = own
    nodes = []
    for table in tables:
        if not table.catalog:
            nodes.append(own)
            continue
        found = peers.get(table.catalog.lower())
        if found is None:
            raise NotFound(
                f"no peer named {table.catalog}",
                hint="`entrepot peer list` shows the peers; write a table of a peer as "
                "<node>.<provider>.<dataset>, dashes in its name as _",
            )
        nodes.append(found)
    if nodes[0] == nodes[1]:
        return None
    return nodes[0], nodes[1]


def _qualified(sql: str, nodes: tuple[str, str]) -> str:
    """``sql`` with every table named with its node."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="duckdb")
    for table, node in zip(tree.find_all(exp.Table), nodes, strict=True):
        table.set("catalog", exp.to_identifier(_sql_name(node)))
    return tree.sql(dialect="duckdb")


def _split(sql: str) -> tuple[str, list[tuple[str, DatasetRef]]]:
    """A qualified join as each holder reads it (no nodes) and each table's node and ref."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except SqlglotError:
        raise InvalidInput(
            "the join's mandate holds no query that parses",
            hint="the consumer's node signs the query as its consumer asked it",
        ) from None
    tables = []
    for table in tree.find_all(exp.Table):
        tables.append((table.catalog.lower(), DatasetRef.from_sql_name(f"{table.db}.{table.name}")))
        table.set("catalog", None)
    return tree.sql(dialect="duckdb"), tables


def _join_query(exchange: Exchange, mandate: dict[str, Any], names: dict[str, str]) -> JoinQuery:
    from entrepot.exchange.join import JoinQuery

    local, tables = _split(mandate["sql"])
    nodes = {ref: names.get(node, node) for node, ref in tables}
    epsilon = mandate.get("epsilon")
    node = exchange.node
    return JoinQuery(
        local,
        None if epsilon is None else float(epsilon),
        lambda: node.engine,
        nodes=nodes,
        max_rows=node.settings.psi_max_rows,
    )


def _names(*names: str) -> dict[str, str]:
    """Node names by their SQL spelling."""
    return {_sql_name(name): name for name in names}


# -- the consumer's node ------------------------------------------------------------


def mandate(
    exchange: Exchange,
    actor: Actor,
    holders: tuple[str, str],
    sql: str,
    *,
    epsilon: float | None,
    purpose: str | None,
) -> tuple[str, dict[str, Any]]:
    """The node that leads ``actor``'s join of the holders' datasets (the first that is
    not this node) and the mandate this node signs for it."""
    from entrepot.federation.remote import _consumer

    consumer = _consumer(actor)
    own = identity_of(exchange.node)
    leader = next(node for node in holders if node != own.name)
    partner = holders[1] if leader == holders[0] else holders[0]
    signed = {
        "consumer": consumer,
        "key": own.key,
        "node": own.name,
        "sql": _qualified(sql, holders),
        "epsilon": epsilon,
        "purpose": purpose,
        "leader": leader,
        "partner": partner,
        "nonce": secrets.token_hex(16),
        "issued": int(time.time()),
    }
    return leader, {"mandate": signed, "signature": _sign(exchange, signed)}


def forward_join(
    exchange: Exchange,
    actor: Actor,
    holders: tuple[str, str],
    sql: str,
    *,
    epsilon: float | None,
    purpose: str | None,
) -> dict[str, Any]:
    """Have the holders' nodes answer ``actor``'s join of their datasets; the answer and
    every holder's receipt. The first holder that is not this node leads."""
    leader, body = mandate(exchange, actor, holders, sql, epsilon=epsilon, purpose=purpose)
    with exchange.peers.call(leader, timeout_s=exchange.settings.peer_join_timeout_s) as call:
        # The leader answers a mandate once: a repeat gets the same answer, spent once.
        answered = call.call("POST", JOIN_PATH, body, idempotent=True)
    log_peer_event(
        exchange,
        actor.name,
        exchange.peers.get(leader),
        "join_answered",
        datasets=[f"{node}:{ref}" for node, ref in zip(holders, _refs(sql), strict=True)],
        epsilon=answered.get("epsilon_spent", 0),
        receipts=[r.get("node") for r in answered.get("receipts", [])],
    )
    return {**answered, "node": leader}


def _refs(sql: str) -> list[str]:
    import sqlglot
    from sqlglot import exp

    return [f"{t.db}/{t.name}" for t in sqlglot.parse_one(sql, read="duckdb").find_all(exp.Table)]


# -- the leader ---------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: Any, name: str) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except ValueError:
        raise InvalidInput(f"the request's {name} is not base64", hint="send base64") from None


def _side(found: Found, version: DatasetVersion) -> dict[str, Any]:
    return {
        "dataset": str(found.ref),
        "standard": {"name": found.standard.name, "document": found.standard.document},
        "policy": found.policy.to_dict(),
        "version": found.version.number,
        "sha256": found.version.sha256,
        "commitment": version.to_json(),
    }


def _found(raw: Any) -> tuple[Found, DatasetVersion]:
    from entrepot.exchange.coordinator import Found

    if not isinstance(raw, dict):
        raise InvalidInput("the request's side is not an object", hint="send the side")
    try:
        ref = DatasetRef.parse(str(raw["dataset"]))
        standard: Standard = parse_standard(raw["standard"]["document"], raw["standard"]["name"])
        policy = parse_policy(raw["policy"], standard)
        committed = DatasetVersion(**raw["commitment"])
        version = VersionInfo(
            ref=ref,
            number=int(raw["version"]),
            title="",
            sha256=str(raw["sha256"]),
            size_bytes=0,
            rows=0,
            rows_rejected=0,
            standard=standard.name,
            standard_version=standard.version,
            created_at=datetime.now(UTC),
        )
    except KeyError as missing:
        raise InvalidInput(
            f"the request's side lacks {missing}", hint="send the dataset's public metadata"
        ) from None
    except (AttributeError, TypeError, ValueError):
        raise InvalidInput(
            "the request's side holds a value of the wrong kind",
            hint="send the dataset's public metadata as the leader's node wrote it",
        ) from None
    return Found(ref, policy, standard, version), committed


def _batch(raw: dict[str, Any]) -> tuple[np.ndarray, bytes]:
    handles = np.frombuffer(_unb64(raw.get("handles", ""), "handles"), dtype="<u8").copy()
    tokens = _unb64(raw.get("tokens", ""), "tokens")
    if len(handles) > BATCH_SIZE:
        raise InvalidInput(
            f"a batch of {len(handles)} tokens, more than {BATCH_SIZE}",
            hint=f"send a join's tokens in batches of at most {BATCH_SIZE}",
        )
    return handles, tokens


def _encoded(handles: np.ndarray, tokens: bytes, page: int) -> dict[str, str]:
    """Page ``page`` of ``BATCH_SIZE`` handles and their tokens, in base64."""
    start = page * BATCH_SIZE
    return {
        "handles": _b64(handles[start : start + BATCH_SIZE].astype("<u8").tobytes()),
        "tokens": _b64(tokens[start * TOKEN_BYTES : (start + BATCH_SIZE) * TOKEN_BYTES]),
    }


def _pages(*counts: int) -> int:
    """Messages of at most ``BATCH_SIZE`` tokens or rows each for ``counts``; one at least."""
    return max(1, *(-(-count // BATCH_SIZE) for count in counts))


def _number(raw: dict[str, Any], name: str, limit: int) -> int:
    """A page or batch number of a request or an answer, below ``limit``."""
    value = raw.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < limit:
        raise InvalidInput(
            f"the join's {name} is not a number below {limit}",
            hint=f"a side of a join is sent in at most {limit} messages of {BATCH_SIZE} tokens",
        )
    return value


def _versions(raw: dict[str, Any]) -> tuple[DatasetVersion, ...]:
    """The versions a join's answer read, as its leader names them."""
    versions = raw.get("versions")
    fields = {"dataset", "version", "content_commitment"}
    if not isinstance(versions, list) or not all(
        isinstance(v, dict) and set(v) == fields and all(isinstance(v[f], str) for f in fields)
        for v in versions
    ):
        raise InvalidInput(
            "the join's versions are not a list of dataset versions",
            hint="send each version as its dataset, version and content commitment",
        )
    return tuple(DatasetVersion(**v) for v in versions)


class _PeerVault:
    """The partner's vault calls, sent to its node; it describes nothing and publishes
    nothing (its dataset's public metadata came with its side)."""

    def __init__(self, partner: PeerPartner) -> None:
        self._partner = partner

    def publish(
        self, request: PublishRequest, data: BinaryIO, *, progress: Progress | None = None
    ) -> Published:
        raise Forbidden("a partner's vault publishes on its own node", hint="publish there")

    def versions(self, ref: DatasetRef | str) -> list[VersionInfo]:
        return [self._partner.found.version]

    def standard(self, ref: DatasetRef | str) -> Standard:
        return self._partner.found.standard

    def release_file(self, name: str) -> BinaryIO:
        raise Forbidden("a partner's vault keeps its releases", hint="download them there")

    def run(self, operation: Operation, *, touched: Touched) -> Outcome:
        # Once the request is sent the partner may read its data: no refund after this.
        touched()
        if isinstance(operation, Blind):
            return self._blind()
        if isinstance(operation, Reblind):
            return self._reblind(operation.tokens)
        raise Forbidden(
            f"a partner node takes part in joins only, not {operation.kind}",
            hint="ask other operations of the node that holds the data",
        )

    def _blind(self) -> Blinded:
        """The partner's tokens and columns, page by page: its first page says how many."""
        first = self._partner.send("blind", {"page": 0})
        pages = _number(first, "pages", _max_pages(self._partner.exchange))
        raws = [first, *(self._partner.send("blind", {"page": p}) for p in range(1, pages))]
        handles, tokens = zip(*(_batch(raw) for raw in raws), strict=True)
        node = self._partner.node
        attributes = pa.concat_tables(
            read_page(_unb64(raw.get("attributes"), "attributes"), node) for raw in raws
        )
        return Blinded(BlindedBatch(np.concatenate(handles), b"".join(tokens)), attributes, 0)

    def _reblind(self, sent: BlindedBatch) -> Reblinded:
        """Send the leader's tokens batch by batch, then read them back blinded by both."""
        batches = _pages(len(sent))
        for batch in range(batches):
            self._partner.send(
                "reblind", {"batch": batch, "batches": batches, **_encoded(*_parts(sent), batch)}
            )
        raws = [self._partner.send("reblind", {"page": page}) for page in range(batches)]
        handles, tokens = zip(*(_batch(raw) for raw in raws), strict=True)
        return Reblinded(DoublyBlindedBatch(np.concatenate(handles), b"".join(tokens)))


def _parts(batch: BlindedBatch | DoublyBlindedBatch) -> tuple[np.ndarray, bytes]:
    return batch.handles, batch.tokens


def _max_pages(exchange: Exchange) -> int:
    """Messages a side of a join may take: this node's limit of rows to blind, by batch."""
    return _pages(exchange.settings.psi_max_rows) + 1


class PeerPartner:
    """The node holding the other dataset of a join this node leads."""

    def __init__(self, exchange: Exchange, node: str, ref: DatasetRef, body: dict[str, Any]):
        self.exchange = exchange
        self.node = node
        self.ref = ref
        self.join = secrets.token_hex(16)
        self._mandate = body
        self._found: Found | None = None
        self._committed: DatasetVersion | None = None
        self._fingerprint = ""
        self.receipt: dict[str, Any] | None = None
        self._open = False

    @property
    def found(self) -> Found:
        assert self._found is not None, "screened first"
        return self._found

    @property
    def vault(self) -> _PeerVault:
        return _PeerVault(self)

    def send(self, step: str, payload: dict[str, Any]) -> dict[str, Any]:
        with self.exchange.peers.call(self.node) as call:
            answered = call.call("POST", f"{PART_PATH}/{step}", {"join": self.join, **payload})
        if not isinstance(answered, dict):
            raise InvalidInput(f"peer {self.node} answered no object", hint="check the peer")
        return answered

    def screen(self, found: tuple[Found, ...], purpose: str | None) -> Found:
        from entrepot.exchange.openings import committed_version

        [mine] = found
        committed = committed_version(self.exchange.node.db, mine.version)
        raw = self.send(
            "prepare", {**self._mandate, "purpose": purpose, "side": _side(mine, committed)}
        )
        self._open = True
        self._found, self._committed = _found(raw.get("side"))
        self._fingerprint = str(raw.get("fingerprint", ""))
        if self._found.ref != self.ref:
            raise Conflict(
                f"peer {self.node} took part for {self._found.ref}, not {self.ref}",
                hint="ask the join again",
            )
        return self._found

    def confirm(self, priced: Priced) -> None:
        if priced.fingerprint.hex() != self._fingerprint:
            raise Conflict(
                f"peer {self.node} prices this join differently",
                hint="both nodes must read the same versions and policies; ask again",
            )

    def committed(self) -> DatasetVersion:
        assert self._committed is not None, "screened first"
        return self._committed

    def complete(self, body: bytes, versions: tuple[DatasetVersion, ...]) -> None:
        raw = self.send(
            "complete",
            {"answer": _b64(body), "versions": [v.to_json() for v in versions]},
        )
        self._open = False
        self.receipt = raw.get("receipt")

    def abort(self) -> None:
        from entrepot.errors import EntrepotError

        if not self._open:
            return
        self._open = False
        try:
            self.send("abort", {})
        except EntrepotError:
            # The partner ends a part its leader left after _PART_TTL_S by itself.
            return


def lead_join(
    exchange: Exchange,
    sender: Sender,
    body: dict[str, Any],
    shape: Callable[[dict[str, Any]], dict[str, Any]],
) -> dict[str, Any]:
    """Conduct the join a consumer's node asked for, this node holding one dataset; the
    answer as ``shape`` words a query's, with every holder's receipt."""
    own = identity_of(exchange.node).name
    actor, mandate = _open(exchange, body, leader=own)
    if mandate.get("key") != sender.key:
        raise Unauthorized(
            "a join's mandate is sent by its consumer's node",
            hint="the consumer's node sends its mandate to the leader itself",
            rule="mandate_signature",
        )
    request, partner = _partnered(exchange, body, mandate)
    result = exchange.queries.run_with(
        actor, request, {partner.ref: partner}, purpose=mandate.get("purpose")
    )
    answered = shape(result.to_dict())
    exchange.node.log.append(_received(exchange, sender, actor, request, answered))
    receipts = [{"node": own, "receipt": answered["receipt"]}]
    receipts.append({"node": partner.node, "receipt": partner.receipt})
    return {**answered, "receipts": receipts}


def answered_again(
    exchange: Exchange, sender: Sender, body: dict[str, Any], answered: dict[str, Any]
) -> Entry:
    """The ``join_received`` entry of a join this node led and answers again, from what
    it kept, to the consumer's node that repeats the same mandate."""
    mandate = body["mandate"]
    actor = consumer_of(exchange, sender.key, str(mandate["consumer"]), create=False)
    own = identity_of(exchange.node).name
    request = _join_query(exchange, mandate, _names(own, str(mandate["partner"])))
    return _received(exchange, sender, actor, request, answered)


def _received(
    exchange: Exchange,
    sender: Sender,
    actor: Actor,
    request: JoinQuery,
    answered: dict[str, Any],
) -> Entry:
    own = identity_of(exchange.node).name
    return peer_entry(
        actor.name,
        exchange.peers.by_key(sender.key),
        "join_received",
        datasets=[f"{node}:{ref}" for ref, node in request.nodes.items()],
        partner=next(node for node in request.nodes.values() if node != own),
        epsilon=answered.get("epsilon_spent", 0),
    )


def _partnered(
    exchange: Exchange, body: dict[str, Any], mandate: dict[str, Any]
) -> tuple[JoinQuery, PeerPartner]:
    """The join a mandate asks of this node, its leader, and the node taking part."""
    own = identity_of(exchange.node).name
    partner_name = str(mandate.get("partner", ""))
    request = _join_query(exchange, mandate, _names(own, partner_name))
    theirs = [ref for ref, node in request.nodes.items() if node == partner_name]
    mine = [ref for ref, node in request.nodes.items() if node == own]
    if len(theirs) != 1 or len(mine) != 1:
        raise InvalidInput(
            "a join across nodes reads one dataset of its leader and one of its partner",
            hint="name each table as <node>.<provider>.<dataset>",
        )
    return request, PeerPartner(exchange, partner_name, theirs[0], body)


def exact_join(exchange: Exchange, body: dict[str, Any]) -> tuple[JoinRun, pa.Table]:
    """The join a mandate asks this node to lead, priced, and its exact, bounded
    aggregates per group, without noise: for tests only, which compare them with the
    plain join of the raw data. Nothing is spent on this node; the partner takes part
    as in any join until its data is read, then the join is aborted there."""
    from entrepot.exchange.coordinator import Found, Routed
    from entrepot.exchange.join import JoinRun

    own = identity_of(exchange.node).name
    _, mandate = _open(exchange, body, leader=own)
    request, partner = _partnered(exchange, body, mandate)
    [mine] = [ref for ref in request.datasets() if ref != partner.ref]
    vault = exchange.vault
    here = Found(
        mine, exchange.policies.get(mine).policy, vault.standard(mine), vault.versions(mine)[-1]
    )
    try:
        theirs = partner.screen((here,), mandate.get("purpose"))
        run = request.price({mine: here, theirs.ref: theirs}).operation
        assert isinstance(run, JoinRun)
        return run, run.exact(Routed(vault, {partner.ref: partner}))
    finally:
        partner.abort()


# -- the partner --------------------------------------------------------------------


class _Known:
    """The leader's dataset as the leader described it: it reserves on its own node."""

    def __init__(self, found: Found, committed: DatasetVersion) -> None:
        self.ref = found.ref
        self._found = found
        self._committed = committed

    @property
    def vault(self) -> _PeerVault:
        raise Forbidden("the leader runs its own vault", hint="only the leader conducts")

    def screen(self, found: tuple[Found, ...], purpose: str | None) -> Found:
        return self._found

    def confirm(self, priced: Priced) -> None:
        return None

    def committed(self) -> DatasetVersion:
        return self._committed

    def complete(self, body: bytes, versions: tuple[DatasetVersion, ...]) -> None:
        return None

    def abort(self) -> None:
        return None


@dataclass
class _Open:
    """A part between its steps: its blinded side until the leader has read it, the
    leader's tokens as they arrive, then those tokens blinded by both."""

    part: Part
    peer: str
    started: float
    blinded: Blinded | None = None
    received: list[BlindedBatch] = field(default_factory=list)
    reblinded: DoublyBlindedBatch | None = None


class Parts:
    """This node's parts in joins other nodes lead, between their steps (in memory: a
    node takes part in joins across nodes with one worker process; a step that reaches
    another worker is refused with the rule ``join_part_one_worker``)."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self._open: dict[tuple[str, str], _Open] = {}
        self._lock = threading.Lock()

    def answer(self, sender: Sender, step: str, body: dict[str, Any]) -> dict[str, Any]:
        join = str(body.get("join", ""))
        if len(join) != 32:
            raise InvalidInput("the request names no join", hint="send join, 32 hex digits")
        if step == "prepare":
            return self._prepare(sender, join, body)
        # Read before the part is taken off: a malformed completion leaves the part open,
        # to be completed, aborted, or ended after _PART_TTL_S, never held reserved.
        done = (
            (_unb64(body.get("answer"), "answer"), _versions(body)) if step == "complete" else None
        )
        with self._lock:
            opened = self._open.get((sender.key, join))
            if step in ("complete", "abort"):
                self._open.pop((sender.key, join), None)
        if opened is None:
            raise Conflict(
                f"no open part in join {join} in this worker process",
                hint=f"prepare it first; a part ends when completed, aborted or after "
                f"{_PART_TTL_S:g} s, and lives in the worker process that prepared it: "
                "a node that takes part in joins across nodes serves with one worker",
                rule="join_part_one_worker",
            )
        coordinator = self.exchange.coordinator
        part = opened.part
        if step == "blind":
            return self._blind(opened, join, body)
        if step == "reblind":
            return self._reblind(opened, join, body)
        if done is not None:
            receipt = coordinator.complete_part(part, *done)
            self._log(opened, "join_part", outcome="answered")
            return {"receipt": receipt.to_json()}
        if step == "abort":
            self._forget(part, join)
            coordinator.abort_part(part)
            self._log(opened, "join_part", outcome="aborted")
            return {}
        raise NotFound(f"no step {step} of a join", hint="prepare, blind, reblind, complete, abort")

    def _log(self, opened: _Open, action: str, **fields: Any) -> None:
        peers = self.exchange.peers
        log_peer_event(
            self.exchange,
            opened.part.consumer.name,
            peers.get(peers.name_of(opened.peer)),
            action,
            dataset=str(opened.part.found.ref),
            **fields,
        )

    def _forget(self, part: Part, join: str) -> None:
        """Have this node's vault forget the join's key, if it still keeps it."""
        from entrepot.errors import EntrepotError

        try:
            self.exchange.vault.run(
                Reblind(part.found.ref, join, BlindedBatch(np.empty(0, np.uint64), b"")),
                touched=lambda: None,
            )
        except EntrepotError:
            return

    def _expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            stale = [key for key, o in self._open.items() if now - o.started > _PART_TTL_S]
            ended = [self._open.pop(key) for key in stale]
        for opened in ended:
            self.exchange.coordinator.abort_part(opened.part)

    def _prepare(self, sender: Sender, join: str, body: dict[str, Any]) -> dict[str, Any]:
        from entrepot.exchange.join import JoinRun
        from entrepot.exchange.openings import committed_version

        self._expire()
        own = identity_of(self.exchange.node).name
        leader = self.exchange.peers.name_of(sender.key)
        actor, mandate = _open(self.exchange, body, leader=leader)
        if mandate.get("partner") != own:
            raise Unauthorized(
                "the join's mandate names another partner",
                hint="only the nodes the consumer's node chose take part",
                rule="mandate_leader",
            )
        request = _join_query(self.exchange, mandate, _names(own, leader))
        found, committed = _found(body.get("side"))
        theirs = [ref for ref, node in request.nodes.items() if node == leader]
        if theirs != [found.ref]:
            raise InvalidInput(
                "the leader's side is not the leader's dataset of the join",
                hint="send the side of the leader's table",
            )
        # The purpose the consumer's node signed; the leader's word only when it signed
        # none (the leader then states its grant's, as on one node).
        purpose = mandate.get("purpose") or body.get("purpose")
        part = self.exchange.coordinator.take_part(
            actor,
            request,
            {found.ref: _Known(found, committed)},
            purpose=None if purpose is None else str(purpose),
        )
        run = part.operation
        assert isinstance(run, JoinRun)
        with self._lock:
            if (sender.key, join) in self._open:
                self.exchange.coordinator.abort_part(part)
                raise Conflict(f"join {join} is open already", hint="start a new join")
            self._open[(sender.key, join)] = _Open(part, sender.key, time.monotonic())
        mine = part.found
        return {
            "side": _side(mine, committed_version(self.exchange.node.db, mine.version)),
            "fingerprint": part.fingerprint.hex(),
        }

    def _blind(self, opened: _Open, join: str, body: dict[str, Any]) -> dict[str, Any]:
        """Page ``page`` of this side's tokens and columns; page 0 blinds the side.

        The pages are those of the version's rows, which neither its tokens nor the rows
        its WHERE keeps outnumber, so how many there are does not depend on the WHERE.
        """
        page = _number(body, "page", _max_pages(self.exchange))
        if page == 0:
            opened.blinded = self._blinded(opened, join)
        blinded = opened.blinded
        if blinded is None:
            raise Conflict(f"join {join} has no blinded side to read", hint="ask page 0 first")
        attributes = blinded.attributes
        pages = _pages(blinded.rows)
        if page >= pages:
            raise InvalidInput(f"join {join} has {pages} pages", hint="ask a page below that")
        return {
            "pages": pages,
            **_encoded(*_parts(blinded.tokens), page),
            "attributes": _b64(page_bytes(attributes.slice(page * BATCH_SIZE, BATCH_SIZE))),
        }

    def _blinded(self, opened: _Open, join: str) -> Blinded:
        from entrepot.exchange.join import JoinRun

        part = opened.part
        run = part.operation
        assert isinstance(run, JoinRun)
        index = run.refs.index(part.found.ref)
        side = run.plan.sides[index]
        operation = Blind(
            part.found.ref,
            run.versions[index],
            join,
            side.link,
            run.plan.concept,
            side.where,
            side.columns,
        )
        outcome = self.exchange.coordinator.run_part(part, operation)
        assert isinstance(outcome, Blinded)
        return outcome

    def _reblind(self, opened: _Open, join: str, body: dict[str, Any]) -> dict[str, Any]:
        """Take the leader's tokens batch by batch, blind them all again once the last is
        in (which forgets this side's key), then answer them page by page."""
        limit = _max_pages(self.exchange)
        if "page" in body:
            page = _number(body, "page", limit)
            if opened.reblinded is None:
                raise Conflict(f"join {join} has no tokens blinded again", hint="send them first")
            if page >= _pages(len(opened.reblinded)):
                raise InvalidInput(f"join {join} has fewer pages", hint="ask a page below that")
            return _encoded(*_parts(opened.reblinded), page)
        batch, batches = _number(body, "batch", limit), _number(body, "batches", limit)
        if batch != len(opened.received) or batch >= batches:
            raise Conflict(
                f"join {join} expected batch {len(opened.received)}, not {batch}",
                hint="send the tokens' batches once each, in order",
            )
        # The leader has read this side: only the key is still needed.
        opened.blinded = None
        opened.received.append(BlindedBatch(*_batch(body)))
        if batch < batches - 1:
            return {"received": batch + 1}
        received, opened.received = opened.received, []
        tokens = BlindedBatch(
            np.concatenate([b.handles for b in received]), b"".join(b.tokens for b in received)
        )
        part = opened.part
        outcome = self.exchange.coordinator.run_part(part, Reblind(part.found.ref, join, tokens))
        assert isinstance(outcome, Reblinded)
        opened.reblinded = outcome.tokens
        return {"received": batches}
