"""The live OpenAPI schema, fuzzed by schemathesis against a real uvicorn server.

For each role (and anonymously) every operation is called with generated valid and
invalid requests; the bar is zero 5xx answers and zero answers that break the
schema (undocumented status, wrong content type, body or headers off-schema).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi import FastAPI

from entrepot.api import create_app
from entrepot.exchange.accounts import LOCAL
from entrepot.exchange.node import Node
from entrepot.exchange.policies import Policies
from entrepot.settings import Settings

if TYPE_CHECKING:
    from tests.api.conftest import World

# The datasets make_world publishes (mirrors tests/api/conftest.py).
DATASETS = {
    "provider": "riverside-hospitals/outpatient-visits",
    "other-provider": "harbor-clinics/outpatient-visits",
}

# Modest so the whole run stays within a couple of minutes on two cores.
MAX_EXAMPLES = 5
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)
# (role, phases): every role fuzzes every operation; the coverage phase (boundary and
# just-outside-the-schema values, deterministic and many per operation) runs once, as
# the operator, who may call the most; anonymous calls only need their 401s checked.
RUNS = [
    ("anonymous", "examples"),
    ("operator", "examples,coverage,fuzzing"),
    ("provider", "examples,fuzzing"),
    ("consumer", "examples,fuzzing"),
    ("auditor", "examples,fuzzing"),
]


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory,
    serve: Callable[[FastAPI], AbstractContextManager[httpx.Client]],
    make_world: Callable[[Node], World],
) -> Iterator[tuple[str, World]]:
    home = tmp_path_factory.mktemp("schema") / "node"
    # Fuzzing sends hundreds of requests a second, and may revoke the token it calls
    # with: neither the rate limit nor the failure budgets are under test here.
    node = Node.init(
        Settings(
            home=home,
            rate_limit_per_s=100_000,
            rate_limit_burst=100_000,
            auth_failures_burst=100_000,
            auth_address_failures_burst=100_000,
            token_hash_memory_kib=1024,
        )
    )
    world = make_world(node)
    # Answers are padded to the policy's latency floor (a timing side channel guard);
    # fuzzing the query endpoint hundreds of times need not wait 250 ms each.
    for dataset in DATASETS.values():
        Policies(node).set(LOCAL, dataset, "latency_floor_ms: 0\n", where="test")
    with serve(create_app(node)) as client:
        # The document is built on its first request: build it before a fuzzer times it.
        assert client.get("/openapi.json", timeout=120).status_code == 200
        yield str(client.base_url), world
    node.close()


@pytest.mark.slow
@pytest.mark.parametrize(("role", "phases"), RUNS, ids=[role for role, _ in RUNS])
def test_schema_holds_for_every_operation(
    live: tuple[str, World], role: str, phases: str, tmp_path: Path
) -> None:
    url, world = live
    assert httpx.get(f"{url}/healthz").status_code == 200
    headers = [] if role == "anonymous" else ["-H", f"Authorization: Bearer {world.tokens[role]}"]
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{url}/openapi.json",
            "--checks",
            CHECKS,
            "--max-examples",
            str(MAX_EXAMPLES),
            "--phases",
            phases,
            "--workers",
            "1",
            "--seed",
            "20261123",
            "--request-timeout",
            "30",
            "--suppress-health-check",
            "all",
            *headers,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
