"""A node's identity and the peers its operator trusts.

A node is known to others by a name (``node_name``, default ``node-`` and the
first 8 hex digits of its key), the base URL it is reached at (``public_url``) and
its Ed25519 public key: the very key that signs its transparency log's heads and
its receipts, so that a peer that trusts the key verifies a receipt of this node
offline with nothing else (docs/federation.md gives the reasons).

A peer is trusted only because an operator added it with its key
(``entrepot peer add URL --key KEY``): adding it fetches the peer's signed identity
at that URL and refuses it unless the key given signed it. Nothing a peer sends
adds, changes or removes a peer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from entrepot._text import excerpt
from entrepot._urls import plain_http_refused
from entrepot.clock import as_utc, utcnow
from entrepot.errors import Conflict, InvalidInput, NotFound, PeerError
from entrepot.federation import _tables
from entrepot.federation.envelope import key_hex, parse_key

if TYPE_CHECKING:
    from nacl.signing import VerifyKey
    from sqlalchemy import Row

    from entrepot.exchange.node import Node
    from entrepot.federation.models import Peer
    from entrepot.federation.transport import PeerCall
    from entrepot.transparency.entries import Entry

__all__ = ["IDENTITY_PATH", "Identity", "Peers", "identity_of"]

IDENTITY_PATH = "federation/v1/node"
# A node's name, as its own settings take it (ENTREPOT_NODE_NAME).
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


@dataclass(frozen=True)
class Identity:
    """What a node is known by: name, base URL, public key."""

    name: str
    url: str
    key: str

    def to_dict(self) -> dict[str, Any]:
        from entrepot.transparency.notes import log_verifier, witness_verifier

        # The verifier keys witness software is configured with (c2sp.org/signed-note).
        public = bytes.fromhex(self.key)
        return {
            "name": self.name,
            "url": self.url,
            "key": self.key,
            "log_vkey": log_verifier(public).vkey(),
            "witness_vkey": witness_verifier(public).vkey(),
        }


def identity_of(node: Node) -> Identity:
    key = key_hex(node.verify_key)
    return Identity(node.settings.node_name or f"node-{key[:8]}", node.settings.base_url, key)


def _peer_dict(peer: Peer | Row[Any], health: str = "ok") -> dict[str, Any]:
    return {
        "name": peer.name,
        "url": peer.url,
        "key": peer.public_key,
        "added_at": as_utc(peer.added_at).isoformat(),
        "last_sync_at": None
        if peer.last_sync_at is None
        else as_utc(peer.last_sync_at).isoformat(),
        "status": peer.last_status,
        "health": health,
    }


def _logged(action: str, peer: Peer) -> Entry:
    from entrepot.transparency.entries import Kind, actor_name, make_entry

    # Peers are the operator's, acting as the holder of the node's home.
    return make_entry(
        Kind.PEER, actor_name(None), action=action, peer=peer.name, peer_key=peer.public_key
    )


class Peers:
    """The peers of one node: add, list, remove, and call one."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.settings = node.settings

    @property
    def identity(self) -> Identity:
        return identity_of(self.node)

    def connect(
        self, name: str, url: str, key: VerifyKey, *, timeout_s: float | None = None
    ) -> PeerCall:
        from entrepot.federation.transport import PeerCall

        return PeerCall(
            name,
            url,
            key,
            self.node.signing_key,
            timeout_s=self.settings.peer_timeout_s if timeout_s is None else timeout_s,
            max_bytes=self.settings.peer_response_max_bytes,
            retries=self.settings.peer_retries,
            backoff_s=self.settings.peer_backoff_s,
            breaker_failures=self.settings.peer_breaker_failures,
            breaker_pause_s=self.settings.peer_breaker_pause_s,
        )

    def add(self, url: str, key: str) -> dict[str, Any]:
        """Trust the node at ``url`` whose public key is ``key``, after it proves it."""
        from entrepot.federation.models import Peer
        from entrepot.federation.transport import peer_url

        base = peer_url(url)
        if not self.settings.allow_plain_http:
            refused = plain_http_refused(base, "its consumers' questions and their answers")
            if refused is not None:
                raise refused
        try:
            verify = parse_key(key)
        except ValueError:
            raise InvalidInput(
                f"{key!r} is not a public key",
                hint="copy the key the peer's `entrepot node id` prints: 64 hex digits",
            ) from None
        if key == key_hex(self.node.verify_key):
            raise InvalidInput("that key is this node's own", hint="add another node's URL and key")
        with self.connect(base, base, verify) as call:
            told = call.call("GET", IDENTITY_PATH, idempotent=True)
        name = told.get("name") if isinstance(told, dict) else None
        if not isinstance(name, str) or told.get("key") != key:
            raise PeerError(
                f"the node at {base} did not describe itself with the key given",
                hint="check the key with the peer's operator",
                peer=base,
                rule="peer_identity",
            )
        self._check_name(base, name)
        try:
            with self.node.db.write() as session:
                peer = Peer(name=name, url=base, public_key=key, added_at=utcnow())
                session.add(peer)
                session.flush()
                self.node.outbox.stage(session, _logged("added", peer))
                added = _peer_dict(peer)
        except IntegrityError:
            raise Conflict(
                f"a peer named {name} or with that key is trusted already",
                hint="`entrepot peer remove` it first to change its URL or key",
            ) from None
        self.node.outbox.flush()
        return added

    def _check_name(self, base: str, name: str) -> None:
        """Refuse a name the peer chose for itself that no node may take: queries and
        access requests are sent to the peer by name (``b.provider.dataset``, dashes
        written as ``_``), so a peer named ``city_lab`` beside ``city-lab``, or named
        as this node, would have them sent to it; a control character would be shown
        in people's terminals."""
        if name == self.identity.name:
            why = "this node's own name"
        elif not _NAME.fullmatch(name):
            why = "not a node's name (lowercase letters, digits and -)"
        else:
            return
        raise PeerError(
            f"the node at {base} names itself {excerpt(name)!r}, {why}",
            hint="its operator sets the name with ENTREPOT_NODE_NAME",
            peer=base,
            rule="peer_name",
        )

    def list(self) -> list[dict[str, Any]]:
        table = _tables.peers
        with self.node.db.connect() as connection:
            peers = connection.execute(select(table).order_by(table.c.name)).all()
        if not peers:
            return []
        from entrepot.federation.transport import breaker_of

        now = utcnow()
        own = self.node.signing_key
        return [_peer_dict(p, breaker_of(own, parse_key(p.public_key)).health(now)) for p in peers]

    def get(self, name: str) -> Peer:
        from entrepot.federation.models import Peer

        with self.node.db.read() as session:
            peer = session.scalar(select(Peer).where(Peer.name == name))
        if peer is None:
            raise NotFound(
                f"no peer named {name}",
                hint="`entrepot peer list` shows the peers; an operator adds one with "
                "`entrepot peer add URL --key KEY`",
            )
        return peer

    def remove(self, name: str) -> dict[str, Any]:
        """Stop trusting ``name``; its cached catalog goes with it."""
        from entrepot.federation.models import Peer

        with self.node.db.write() as session:
            peer = session.scalar(select(Peer).where(Peer.name == name))
            if peer is None:
                raise NotFound(f"no peer named {name}", hint="`entrepot peer list` shows them")
            shown = _peer_dict(peer)
            self.node.outbox.stage(session, _logged("removed", peer))
            session.delete(peer)
        self.node.outbox.flush()
        return shown

    def call(self, name: str, *, timeout_s: float | None = None) -> PeerCall:
        """A signed channel to the trusted peer ``name``; its calls time out after
        ``timeout_s`` (default ``peer_timeout_s``)."""
        peer = self.get(name)
        return self.connect(peer.name, peer.url, parse_key(peer.public_key), timeout_s=timeout_s)

    def note(self, name: str, status: str, *, synced: bool = False) -> None:
        """Remember how the last call to ``name`` went (``peer list`` shows it)."""
        from entrepot.federation.models import Peer

        with self.node.db.write() as session:
            peer = session.scalar(select(Peer).where(Peer.name == name))
            if peer is not None:
                peer.last_status = status[:500]
                if synced:
                    peer.last_sync_at = utcnow()

    def trusted(self, key: str) -> bool:
        from entrepot.federation.models import Peer

        with self.node.db.read() as session:
            return session.scalar(select(Peer.id).where(Peer.public_key == key)) is not None

    def by_key(self, key: str) -> Peer:
        """The trusted peer whose key is ``key``."""
        from entrepot.federation.models import Peer

        with self.node.db.read() as session:
            peer = session.scalar(select(Peer).where(Peer.public_key == key))
        if peer is None:
            raise NotFound("no peer has that key", hint="`entrepot peer list` shows the peers")
        return peer

    def name_of(self, key: str) -> str:
        from entrepot.federation.models import Peer

        with self.node.db.read() as session:
            name = session.scalar(select(Peer.name).where(Peer.public_key == key))
        if name is None:
            raise NotFound("no peer has that key", hint="`entrepot peer list` shows the peers")
        return name

    def fresh(self, sender: str, nonce: str) -> bool:
        """Record ``sender``'s ``nonce``; False if it was seen already (a replay).

        The nonce is committed unsynced (no wait for the disk, 2-8 ms a commit on a shared
        disk): every effect of a request is a synced commit made after it, which puts the
        nonce on disk first, so no crash keeps an effect and loses its nonce; a request
        that changes nothing may be answered again after a power cut, which gives the
        replayer an answer signed for the sender, as the first one was.
        """
        from entrepot.federation.models import Nonce

        now = utcnow()
        # Past twice the skew no timestamp is accepted, so its nonce need not be kept.
        oldest = now - timedelta(seconds=2 * self.settings.peer_clock_skew_s)
        try:
            with self.node.db.write(synced=False) as session:
                session.execute(delete(Nonce).where(Nonce.seen_at < oldest))
                session.add(Nonce(sender=sender, nonce=nonce, seen_at=now))
        except IntegrityError:
            return False
        return True
