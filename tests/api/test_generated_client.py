"""A client generated from the OpenAPI document by a standard generator works.

openapi-python-client is installed in a throwaway virtual environment (its pins clash
with ours), generates a package from the live document, and the package then reads
pages and errors from a real server on loopback.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from tests.api.conftest import DATASETS, World

pytestmark = pytest.mark.slow

_GENERATOR = "openapi-python-client>=0.25"
_PACKAGE = "entrepot_client"


def _generator(tmp: Path) -> Path:
    home = tmp / "generator"
    venv.create(home, with_pip=True)
    installed = subprocess.run(
        [str(home / "bin" / "pip"), "install", "--quiet", _GENERATOR],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if installed.returncode != 0:
        pytest.skip(f"cannot install {_GENERATOR}: {installed.stderr[-300:]}")
    return home / "bin" / "openapi-python-client"


@pytest.fixture
def generated(api: httpx.Client, tmp_path: Path) -> Iterator[ModuleType]:
    document = tmp_path / "openapi.json"
    document.write_bytes(api.get("/openapi.json").content)
    out = tmp_path / "out"
    out.mkdir()
    made = subprocess.run(
        [str(_generator(tmp_path)), "generate", "--path", str(document), "--meta", "none"],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(_PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == _PACKAGE or m.startswith(f"{_PACKAGE}.")]:
            del sys.modules[name]


def _operation(package: ModuleType, tag: str, name: str) -> Any:
    return importlib.import_module(f"{package.__name__}.api.{tag}.{name}")


def test_a_generated_client_reads_pages_datasets_and_errors(
    generated: ModuleType, api: httpx.Client, world: World
) -> None:
    client = generated.AuthenticatedClient(
        base_url=str(api.base_url), token=world.tokens["consumer"]
    )
    with client:
        page = _operation(generated, "catalog", "list_datasets").sync(client=client, limit=1)
        assert (page.total, page.limit, len(page.items)) == (2, 1, 1)
        assert page.next_offset == 1
        provider, dataset = DATASETS["provider"].split("/")
        shown = _operation(generated, "catalog", "show_dataset").sync(
            client=client, provider=provider, dataset=dataset
        )
        assert shown.dataset == DATASETS["provider"]
        budgets = _operation(generated, "budgets", "list_budgets").sync(client=client)
        assert [b.dataset for b in budgets.items] == [DATASETS["provider"]]
        missing = _operation(generated, "catalog", "show_dataset").sync(
            client=client, provider=provider, dataset="nothing-here"
        )
        assert missing.error.code == "not_found"
        assert missing.error.hint
