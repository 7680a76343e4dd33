"""Federation of nodes: identity, peers trusted by key, signed calls, catalog feeds.

See docs/federation.md. The modules: :mod:`~entrepot.federation.envelope` (signing
and checking every message between nodes), :mod:`~entrepot.federation.transport`
(the one way to call a peer), :mod:`~entrepot.federation.peers` (identity and
peers), :mod:`~entrepot.federation.feed` (the signed catalog feed and its copies)
and :mod:`~entrepot.federation.search` (a search across peers).
"""

from typing import TYPE_CHECKING

from entrepot._lazy import lazy

if TYPE_CHECKING:
    from entrepot.federation.peers import Identity, Peers, identity_of

__all__ = ["Identity", "Peers", "identity_of"]

# The peers load httpx: a command that only reads the federation's tables does not.
__getattr__ = lazy(__name__, dict.fromkeys(__all__, "entrepot.federation.peers"))
