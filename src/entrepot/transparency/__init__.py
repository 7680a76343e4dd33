"""The transparency log: an RFC 9162 Merkle log, signed tree heads, proofs and receipts.

Public surface: :class:`TransparencyLog` (append, heads, proofs, export),
:func:`make_entry` and :class:`Kind` to build entries, :func:`issue_receipt` and
:func:`verify_receipt`, commitments and their openings (:class:`QueryOpening`,
:class:`ContentOpening`, :func:`verify_opening`), :func:`verify_export`, the checks
of a log another party serves in :mod:`entrepot.transparency.remote`, and the
RFC 9162 functions in :mod:`entrepot.transparency.merkle`. Formats are described
in docs/transparency.md.
"""

from typing import TYPE_CHECKING

from entrepot._lazy import lazy

if TYPE_CHECKING:
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

# Each name loads with its module: an entry's actor name needs neither the log's file
# store nor the signatures and receipts.
_MODULES = {
    "canonical_json": "canonical",
    "decimal_text": "canonical",
    "ContentOpening": "commitments",
    "QueryOpening": "commitments",
    "content_commitment": "commitments",
    "new_key": "commitments",
    "parse_opening": "commitments",
    "verify_opening": "commitments",
    "Entry": "entries",
    "Kind": "entries",
    "make_entry": "entries",
    "VerifyReport": "export",
    "verify_entries": "export",
    "verify_export": "export",
    "TreeHead": "heads",
    "load_verify_key": "heads",
    "read_head": "heads",
    "read_verify_key": "heads",
    "sign_head": "heads",
    "verify_head": "heads",
    "ConsistencyProof": "log",
    "InclusionProof": "log",
    "TransparencyLog": "log",
    "repair_log": "log",
    "DatasetVersion": "receipts",
    "Receipt": "receipts",
    "ReceiptFields": "receipts",
    "issue_receipt": "receipts",
    "verify_receipt": "receipts",
}
__getattr__ = lazy(__name__, {name: f"entrepot.transparency.{_MODULES[name]}" for name in __all__})
