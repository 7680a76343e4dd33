"""Private set intersection: ECDH over ristretto255, two holders and a matcher.

Each holder hashes its canonical link-key values to the group and blinds them with
a fresh secret key; the other holder blinds them again; a matcher pairs the tokens
that carry both blindings and learns nothing but which opaque handles matched.
The protocol, message by message, is in ``docs/psi.md``::

    from entrepot.privacy import psi
    found = psi.intersect(left_ids, right_ids, "resident-number", progress=bar.update)
    found.left, found.right          # row numbers of matched pairs, one array each
"""

from entrepot.privacy.psi._group import DOMAIN, TOKEN_BYTES, hash_to_group
from entrepot.privacy.psi._messages import BlindedBatch, DoublyBlindedBatch, Handles, Match
from entrepot.privacy.psi._pool import Progress, make_pool
from entrepot.privacy.psi.holder import BATCH_SIZE, MAX_ROWS, Holder, InlineExecutor
from entrepot.privacy.psi.join import Intersection, intersect
from entrepot.privacy.psi.matcher import Matcher

__all__ = [
    "BATCH_SIZE",
    "DOMAIN",
    "MAX_ROWS",
    "TOKEN_BYTES",
    "BlindedBatch",
    "DoublyBlindedBatch",
    "Handles",
    "Holder",
    "InlineExecutor",
    "Intersection",
    "Match",
    "Matcher",
    "Progress",
    "hash_to_group",
    "intersect",
    "make_pool",
]
