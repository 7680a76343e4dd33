"""The transparency log: an RFC 9162 Merkle log, signed tree heads, proofs and receipts."""
