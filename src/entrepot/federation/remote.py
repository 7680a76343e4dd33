"""Access and private queries across nodes: the data's node decides, spends and signs.

A consumer of node A asks for ``b:provider/dataset`` or queries
``b.provider.dataset``; A forwards the request, signed, to node B, which holds the
data. On B the consumer is the organization ``<a>-<org>`` (made on its first
access request, and never a local organization of that name), so B's own
contracts, policies, ledger, engine, noise, log and receipt treat it as any other
consumer: the grant lives and is enforced on B, B's ledger is the one spent, and
the receipt is signed with B's key. A returns B's answer untouched; it never sees a
row, and spends nothing of its own. Both nodes log the cross-node event (a
``peer`` entry on each side, beside B's own ``query`` or ``grant`` entries).

The seam is B's coordinator, reached through B's one client interface, rather
than the ``Vault`` protocol: the contract and the budget must live where the data
is, and a vault run by another node's coordinator would leave them with the
consumer's node. The single-node path is unchanged: a query is looked at here
only if its text names a table in three parts.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from entrepot._background import Coalesced
from entrepot.errors import Conflict, Forbidden, InvalidInput, NotFound, param
from entrepot.federation.contracts import keep
from entrepot.federation.models import Peer, RemoteConsumer
from entrepot.transparency.entries import Entry, Kind, make_entry

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from entrepot.exchange import Exchange
    from entrepot.exchange.actors import Actor

__all__ = [
    "ACCESS_PATH",
    "QUERY_PATH",
    "RemoteQuery",
    "consumer_of",
    "flush_later",
    "forward_access",
    "forward_query",
    "log_peer_event",
    "names_a_node",
    "owe_peer_event",
    "peer_entry",
    "remote_dataset",
    "remote_query_of",
]

ACCESS_PATH = "federation/v1/access"
QUERY_PATH = "federation/v1/query"
# A name in three parts, <node>.<provider>.<dataset>: only then is a peer asked. The
# pattern starts at a dot: 1.8 µs per query without one (benchmarks/bench_federation.py).
_THREE_PARTS = re.compile(r"\.\s*\w+\s*\.")


def remote_dataset(dataset: str) -> tuple[str, str] | None:
    """``("b", "provider/dataset")`` for ``b:provider/dataset``; None for a local one."""
    node, colon, ref = dataset.partition(":")
    return (node, ref) if colon and node and "/" in ref else None


def peer_entry(actor: str, peer: Peer, action: str, **fields: Any) -> Entry:
    """A ``peer`` entry: a cross-node event, named by its action."""
    return make_entry(
        Kind.PEER, actor, action=action, peer=peer.name, peer_key=peer.public_key, **fields
    )


def log_peer_event(exchange: Exchange, actor: str, peer: Peer, action: str, **fields: Any) -> None:
    """Append a ``peer`` entry now."""
    exchange.node.log.append(peer_entry(actor, peer, action, **fields))


def owe_peer_event(
    exchange: Exchange, entry: Entry, session: Session | None = None, *, synced: bool = True
) -> None:
    """Owe ``entry`` to the log in node.db's outbox, in ``session``'s transaction or in
    one commit of its own, and append it off the answer's path (:func:`flush_later`).

    An append costs three fsyncs, a commit one: the row survives any crash, and a node
    appends every row still owed when it opens (:mod:`entrepot.exchange.outbox`), so
    the event is logged whatever happens once the answer leaves. ``synced=False`` waits
    for no fsync: a process that dies keeps the row, and the append's first synced
    commit, milliseconds later, puts it on disk (see :meth:`Database.write`).
    """
    if session is not None:
        exchange.node.outbox.stage(session, entry)
        return
    with exchange.node.db.write(synced=synced) as own:
        exchange.node.outbox.stage(own, entry)
    flush_later(exchange)


# The thread lets the answer leave first: a thread that starts appending at once holds
# the interpreter's lock from the thread answering, up to 5 ms at a time. It is not a
# daemon: a command that ends waits for it (tens of ms) rather than leave the rows to
# the node's next opening. A failed pass leaves the rows owed (the node may be
# closing): the next pass, or the node's next opening, appends them.
_APPENDING = Coalesced(
    "entrepot-outbox", "appending the log's owed entries failed", daemon=False, delay_s=0.02
)


def flush_later(exchange: Exchange) -> None:
    """Append the entries owed in the outbox, in a thread of its own: one at a time per
    node, and one more pass after it if asked while it runs."""
    _APPENDING.ask(bytes(exchange.node.verify_key).hex(), exchange.node.outbox.replay)


def _consumer(actor: Actor) -> str:
    if not actor.org_slug:
        raise Forbidden(
            "a request to another node is made by a consumer organization",
            hint=f"ask with {param('as')} a consumer organization",
        )
    return actor.org_slug


def forward_access(
    exchange: Exchange,
    actor: Actor,
    node: str,
    dataset: str,
    *,
    purpose: str,
    epsilon: float,
    until: date,
    since: date | None,
    actions: tuple[str, ...],
    note: str,
) -> dict[str, Any]:
    """Send ``actor``'s access request for ``dataset`` to the peer ``node``; its answer."""
    consumer = _consumer(actor)
    peer = exchange.peers.get(node)
    body = {
        "consumer": consumer,
        "dataset": dataset,
        "purpose": purpose,
        "epsilon": epsilon,
        "until": until.isoformat(),
        "since": None if since is None else since.isoformat(),
        "actions": list(actions),
        "note": note,
        # The peer makes a request id once: a repeat gets the same request, not a second.
        "request": secrets.token_hex(16),
    }
    with exchange.peers.call(node) as call:
        answered = call.call("POST", ACCESS_PATH, body, idempotent=True)
    # Kept first: the copy checks the peer's words before the log repeats its id.
    keep(exchange.node.db, peer.id, peer.name, consumer, [answered], whole=False)
    log_peer_event(
        exchange,
        actor.name,
        peer,
        "access_requested",
        dataset=f"{node}:{dataset}",
        purpose=purpose,
        epsilon=epsilon,
        request=str(answered.get("id", "")),
    )
    return {**answered, "node": node}


def names_a_node(sql: str) -> bool:
    """Whether ``sql`` names a table in three parts, as a query of a peer's data does."""
    return _THREE_PARTS.search(sql) is not None


@dataclass(frozen=True)
class RemoteQuery:
    """A query of a peer's data: the peer, and the SQL as the peer reads it."""

    peer: Peer
    sql: str


def remote_query_of(exchange: Exchange, sql: str) -> RemoteQuery | None:
    """The peer a query's tables name as their first part (one peer per query), with the
    query as that peer reads it (each table's node dropped); None for a local query.
    The SQL is parsed once and the peers read once."""
    if not names_a_node(sql):
        return None
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError:
        return None
    tables = list(tree.find_all(exp.Table))
    named = {table.catalog for table in tables if table.catalog}
    if not named:
        return None
    with exchange.node.db.read() as session:
        peers = {p.name.replace("-", "_"): p for p in session.scalars(select(Peer))}
    nodes = {peers.get(name.lower()) for name in named}
    if nodes == {None}:
        return None
    if len(nodes) > 1:
        raise InvalidInput(
            "a query reads the tables of one node",
            hint="name every table as <node>.<provider>.<dataset>; a private join may read "
            "one table of each of two nodes",
        )
    found = nodes.pop()
    assert found is not None
    for table in tables:
        table.set("catalog", None)
    return RemoteQuery(found, tree.sql(dialect="duckdb"))


def forward_query(
    exchange: Exchange,
    actor: Actor,
    remote: RemoteQuery,
    *,
    epsilon: float | None,
    purpose: str | None,
) -> dict[str, Any]:
    """Have the peer answer ``actor``'s query on its data; its answer and receipt."""
    from entrepot.federation.envelope import parse_key

    consumer = _consumer(actor)
    peer = remote.peer
    body = {
        "consumer": consumer,
        "sql": remote.sql,
        "epsilon": epsilon,
        "purpose": purpose,
        # The peer answers a request id once: a repeat gets the same answer, spent once.
        "request": secrets.token_hex(16),
    }
    with exchange.peers.connect(peer.name, peer.url, parse_key(peer.public_key)) as call:
        answered = call.call("POST", QUERY_PATH, body, idempotent=True)
    receipt = json.dumps(answered.get("receipt"), sort_keys=True).encode()
    owe_peer_event(
        exchange,
        peer_entry(
            actor.name,
            peer,
            "query_answered",
            epsilon=answered.get("epsilon_spent", 0),
            dataset=f"{peer.name}:{answered.get('dataset', '')}",
            receipt_sha256=hashlib.sha256(receipt).hexdigest(),
        ),
        synced=False,
    )
    return {**answered, "node": peer.name}


def consumer_of(exchange: Exchange, peer_key: str, remote_org: str, *, create: bool) -> Actor:
    """The local consumer that stands for ``remote_org`` of the peer with ``peer_key``."""
    from entrepot.exchange.actors import LOCAL
    from entrepot.vault.refs import check_slug

    with exchange.node.db.read() as session:
        peer = session.scalar(select(Peer).where(Peer.public_key == peer_key))
        if peer is None:
            raise NotFound("no peer has that key", hint="`entrepot peer list` shows the peers")
        known = session.scalar(
            select(RemoteConsumer.org_slug).where(
                RemoteConsumer.peer_id == peer.id, RemoteConsumer.remote_org == remote_org
            )
        )
    if known is not None:
        return exchange.accounts.actor(known)
    if not create:
        raise NotFound(
            f"{remote_org} of node {peer.name} has asked this node for no access",
            hint="request access first with `entrepot access request <node>:provider/dataset`",
        )
    slug = check_slug(f"{peer.name}-{check_slug(remote_org, 'organization')}"[:64], "organization")
    taken = Conflict(
        f"the organization {slug} of this node is not {remote_org} of node {peer.name}",
        hint="rename the local organization, or ask the peer's consumer to use another name",
    )
    try:
        # The mapping first: a local organization of that name can then never be taken.
        with exchange.node.db.write() as session:
            session.add(RemoteConsumer(peer_id=peer.id, remote_org=remote_org, org_slug=slug))
    except IntegrityError:
        raise taken from None
    try:
        exchange.accounts.actor(slug)
    except NotFound:
        exchange.accounts.create(
            LOCAL, slug, "consumer", org=slug, org_name=f"{remote_org} at node {peer.name}"
        )
        return exchange.accounts.actor(slug)
    with exchange.node.db.write() as session:
        session.execute(delete(RemoteConsumer).where(RemoteConsumer.org_slug == slug))
    raise taken
