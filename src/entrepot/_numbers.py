"""The largest numbers the exchange takes in: one set of ranges for every door.

The ledger stores ε in nano-ε and δ in atto-δ, prices in cents and ids as 64-bit
integers, a grant's use count in a 32-bit column (on PostgreSQL), and a count a
policy sets enters the noise's scale as a float. A number past these ranges would
overflow one of them: the services refuse it by name, and the API's schemas state
the same ranges.
"""

from __future__ import annotations

__all__ = ["MAX_AMOUNT", "MAX_COUNT", "MAX_DELTA", "MAX_EPSILON", "MAX_ID", "MIN_EPSILON"]

# An ε far past any that leaves privacy (10^18 nano-ε within 2^63); tests and
# benchmarks ask 10^8 or 10^9 to see an answer without its noise.
MAX_EPSILON = 10**9
# The least ε a query spends: the ledger's unit, one nano-ε (a smaller one would make
# the noise's scale infinite).
MIN_EPSILON = 1e-9
# A δ is a probability (10^18 atto-δ within 2^63).
MAX_DELTA = 1
# A price per use or per ε, in the exchange's currency: a use's price, its ε times
# the price per ε plus the price per use, stays within 2^63 cents (about 10^17 at most).
MAX_AMOUNT = 10**6
# A count a policy or a grant sets: rows per unit, groups, uses of a grant.
MAX_COUNT = 10**9
# The largest id a table holds.
MAX_ID = 2**63 - 1
