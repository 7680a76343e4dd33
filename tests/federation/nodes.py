"""A node for federation tests: named, with cheap token hashes and no query processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from entrepot.exchange.node import Node
from entrepot.settings import Settings


def federation_node(tmp_path: Path, name: str, **settings: Any) -> Node:
    return Node.init(
        Settings(
            home=tmp_path / name,
            node_name=name,
            token_hash_memory_kib=1024,
            api_query_workers=0,
            **{"peer_timeout_s": 30, **settings},
        )
    )
