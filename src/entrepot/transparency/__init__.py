"""The transparency log: an RFC 9162 Merkle log, signed tree heads, proofs and receipts.

Public surface: :class:`TransparencyLog` (append, heads, proofs, export),
:func:`make_entry` and :class:`Kind` to build entries, :func:`issue_receipt` and
:func:`verify_receipt`, commitments and their openings (:class:`QueryOpening`,
:class:`ContentOpening`, :func:`verify_opening`), :func:`verify_export`, the checks
of a log another party serves in :mod:`entrepot.transparency.remote`, and the
RFC 9162 functions in :mod:`entrepot.transparency.merkle`. Formats are described
in docs/transparency.md.
"""

from entrepot.transparency.canonical import canonical_json, decimal_text
from entrepot.transparency.commitments import (
    ContentOpening,
    QueryOpening,
    content_commitment,
    new_key,
    parse_opening,
    verify_opening,
)
from entrepot.transparency.entries import Entry, Kind, make_entry
from entrepot.transparency.export import VerifyReport, verify_entries, verify_export
from entrepot.transparency.heads import (
    TreeHead,
    load_verify_key,
    read_head,
    read_verify_key,
    sign_head,
    verify_head,
)
from entrepot.transparency.log import (
    ConsistencyProof,
    InclusionProof,
    TransparencyLog,
    repair_log,
)
from entrepot.transparency.receipts import (
    DatasetVersion,
    Receipt,
    ReceiptFields,
    issue_receipt,
    verify_receipt,
)

__all__ = [
    "ConsistencyProof",
    "ContentOpening",
    "DatasetVersion",
    "Entry",
    "InclusionProof",
    "Kind",
    "QueryOpening",
    "Receipt",
    "ReceiptFields",
    "TransparencyLog",
    "TreeHead",
    "VerifyReport",
    "canonical_json",
    "content_commitment",
    "decimal_text",
    "issue_receipt",
    "load_verify_key",
    "make_entry",
    "new_key",
    "parse_opening",
    "read_head",
    "read_verify_key",
    "repair_log",
    "sign_head",
    "verify_entries",
    "verify_export",
    "verify_head",
    "verify_opening",
    "verify_receipt",
]
