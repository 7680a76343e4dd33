"""The API's catalog honours the node's settings, set as the environment sets them."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from tests.api.conftest import World

from entrepot.api import create_app
from entrepot.exchange.node import Node
from entrepot.settings import Settings

Serve = Callable[[FastAPI], AbstractContextManager[httpx.Client]]


@pytest.mark.parametrize("max_results", ["500", "1"])
def test_search_works_with_the_catalog_max_results_of_the_environment(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    serve: Serve,
    make_world: Callable[[Node], World],
    max_results: str,
) -> None:
    monkeypatch.setenv("ENTREPOT_CATALOG_MAX_RESULTS", max_results)
    node = Node.init(Settings(home=tmp_path / "node", token_hash_memory_kib=1024))
    try:
        world = make_world(node)
        with serve(create_app(node)) as api:
            found = api.get(
                "/v1/catalog/search", params={"q": "visits"}, headers=world.auth("consumer")
            )
    finally:
        node.close()
    assert found.status_code == 200, found.text
    # Two datasets match; the setting bounds how many the search ranks.
    assert len(found.json()["items"]) == min(2, int(max_results))
