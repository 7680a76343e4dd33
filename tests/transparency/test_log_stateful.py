"""A stateful model: random appends and heads; every inclusion and consistency proof holds."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from nacl.signing import SigningKey
from transparency_helpers import Clock

from entrepot.transparency import TransparencyLog, TreeHead, make_entry, verify_head
from entrepot.transparency.merkle import leaf_hash, verify_consistency, verify_inclusion

fields = st.dictionaries(
    st.sampled_from(["action", "grantee", "n", "note"]),
    st.integers(-1000, 1000) | st.text(max_size=8),
    max_size=3,
)


class LogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp())
        self.key = SigningKey(bytes(range(32)))
        self.log = TransparencyLog(self.dir / "log", self.key, head_every_entries=5, clock=Clock())
        self.model: list[bytes] = []

    @rule(batch=st.lists(fields, min_size=1, max_size=6))
    def append(self, batch: list[dict[str, Any]]) -> None:
        entries = [make_entry("peer", "node-b", **f) for f in batch]
        first = self.log.append_many(entries)
        assert first == len(self.model)
        self.model.extend(e.to_bytes() for e in entries)

    @rule()
    def sign(self) -> None:
        assert self.log.sign_head().size == len(self.model)

    @rule()
    def reopen(self) -> None:
        self.log.close()
        self.log = TransparencyLog(self.dir / "log", self.key, head_every_entries=5, clock=Clock())

    @invariant()
    def every_proof_holds(self) -> None:
        heads: list[TreeHead] = self.log.heads()
        assert self.log.size == len(self.model)
        for head in heads:
            verify_head(head, self.key.verify_key)
            for index in range(head.size):
                proof = self.log.prove(index, head.size)
                assert proof.entry == self.model[index]
                verify_inclusion(
                    leaf_hash(self.model[index]), index, head.size, proof.path, head.root
                )
        for old in heads:
            for new in heads:
                if 0 < old.size <= new.size:
                    change = self.log.consistency(old.size, new.size)
                    verify_consistency(old.size, new.size, change.path, old.root, new.root)

    def teardown(self) -> None:
        self.log.close()
        shutil.rmtree(self.dir)


LogMachine.TestCase.settings = settings(max_examples=12, stateful_step_count=12, deadline=None)
test_log_machine = LogMachine.TestCase
