import entrepot.transparency as transparency


def test_the_public_surface_is_pinned() -> None:
    assert sorted(transparency.__all__) == [
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
    for name in transparency.__all__:
        assert getattr(transparency, name).__module__.startswith("entrepot.transparency.")
