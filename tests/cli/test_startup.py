"""A command that reads a local node loads no more than it needs.

Each heavy library here costs a start-up between 0.1 and 0.4 s of CPU; none is needed
to list the catalog or the standards, and no command runs the migrations of a schema
that is already at their head.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.privacy.small_node import CONSUMER, small_node

from entrepot.db import Database
from entrepot.exchange.node import Node
from entrepot.settings import Settings

HEAVY = (
    "alembic",
    "duckdb",
    "fastapi",
    "httpx",
    "opendp",
    "pandas",
    "pyarrow",
    "pydantic_settings",
    "sqlglot",
    "starlette",
    "uvicorn",
)

# Runs the real command in a fresh interpreter, then names the modules it loaded.
_PROBE = """
import json, sys
from entrepot.cli.app import app
try:
    app(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def _modules(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _loaded(*args: str) -> list[str]:
    return sorted({m.split(".")[0] for m in _modules(*args)} & set(HEAVY))


def _assert_lean(loaded: set[str]) -> None:
    """No heavy library, no ORM, and PostgreSQL's dialect unloaded on SQLite."""
    assert sorted({m.split(".")[0] for m in loaded} & set(HEAVY)) == []
    assert not {m for m in loaded if m == "sqlalchemy.orm" or m.startswith("sqlalchemy.orm.")}
    assert not {m for m in loaded if m.startswith("sqlalchemy.dialects.postgresql")}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    Node.init(Settings(home=tmp_path / "node")).close()
    return tmp_path / "node"


@pytest.mark.parametrize(
    "command", [["catalog", "list"], ["standard", "list"], ["budget"], ["audit", "log"]]
)
def test_a_read_only_local_command_loads_no_heavy_library(home: Path, command: list[str]) -> None:
    assert _loaded(*command, "--home", str(home)) == []


def test_a_command_builds_only_its_own_command_module(home: Path) -> None:
    loaded = _modules("catalog", "list", "--home", str(home))
    commands = {m for m in loaded if m.startswith("entrepot.cli.") and not m[13:].startswith("_")}
    assert commands == {"entrepot.cli.app", "entrepot.cli.catalog"}
    # Neither the other door nor the services the listing does not use.
    unused = {
        "entrepot.api",
        "entrepot.exchange.accounts",
        "entrepot.exchange.contracts",
        "entrepot.privacy.ledger",
        "entrepot.schemas.queries",
        "entrepot.schemas.releases",
        # The log's store, signatures and receipts; the vault's publish path; peers.
        "entrepot.federation.peers",
        "entrepot.standards.validation",
        "entrepot.transparency.log",
        "entrepot.transparency.receipts",
        "entrepot.vault.local",
        "yaml",
    }
    assert not unused & loaded


def test_the_catalog_is_listed_without_the_orm_or_the_signing_library(home: Path) -> None:
    # The listing reads Core tables; the node's key is made only when something is signed.
    loaded = _modules("catalog", "list", "--home", str(home))
    assert not {m for m in loaded if m == "sqlalchemy.orm" or m.startswith("sqlalchemy.orm.")}
    assert not {m for m in loaded if m.split(".")[0] == "nacl"}
    # The mapped classes, and the wire models a local listing does without.
    assert not {"entrepot.vault.models", "entrepot.schemas.catalog"} & loaded


@pytest.fixture(scope="module")
def granted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A node with a dataset, its policy and a consumer's open budget on it."""
    return small_node(tmp_path_factory.mktemp("granted") / "node", rows=60)


@pytest.mark.parametrize(
    "command",
    [
        ["catalog", "show", "riverside-hospitals/outpatient-visits"],
        ["budget"],
        ["provider", "list"],
        ["account", "list"],
        ["peer", "list"],
    ],
)
def test_a_page_budgets_providers_accounts_and_peers_are_read_without_the_orm(
    granted: Path, command: list[str]
) -> None:
    loaded = _modules(*command, "--home", str(granted))
    # Core selects on the vault's and the ledger's tables.
    _assert_lean(loaded)
    # The mapped classes, the accounts, the policies' parser and the API's wire models.
    unused = {
        "entrepot.exchange.accounts",
        "entrepot.federation.models",
        "entrepot.federation.transport",
        "entrepot.organizations",
        "entrepot.privacy._ledger_models",
        "entrepot.privacy.policy",
        "argon2",
        "entrepot.schemas.accounts",
        "entrepot.schemas.budgets",
        "entrepot.schemas.catalog",
        "entrepot.schemas.providers",
        "entrepot.vault.models",
        "entrepot.vault.protocol",
        "yaml",
    }
    assert not unused & loaded


def test_a_policy_is_shown_without_the_orm_or_the_ledger(granted: Path) -> None:
    loaded = _modules(
        "policy", "show", "riverside-hospitals/outpatient-visits", "--home", str(granted)
    )
    _assert_lean(loaded)
    unused = {
        "entrepot.exchange._policy_models",
        "entrepot.exchange.accounts",
        "entrepot.privacy.ledger",
        "entrepot.schemas.policies",
        "entrepot.transparency",
        "entrepot.vault.models",
    }
    assert not unused & loaded


@pytest.mark.parametrize("command", [["access", "list"], ["release", "list"]])
def test_contracts_and_releases_are_listed_without_the_orm_or_their_services(
    granted: Path, command: list[str]
) -> None:
    loaded = _modules(*command, "--home", str(granted))
    _assert_lean(loaded)
    # The services' write paths (the coordinator and its query path among them), their
    # mapped classes, the accounts, the ledger, the log, the peers' transport and the
    # API's wire models.
    unused = {
        "argon2",
        "entrepot.exchange._contract_models",
        "entrepot.exchange.accounts",
        "entrepot.exchange.contracts",
        "entrepot.exchange.coordinator",
        "entrepot.exchange.release",
        "entrepot.federation.models",
        "entrepot.federation.remote",
        "entrepot.federation.transport",
        "entrepot.privacy.ledger",
        "entrepot.schemas.access",
        "entrepot.schemas.releases",
        "entrepot.transparency.log",
        "entrepot.vault.local",
        "entrepot.vault.models",
    }
    assert not unused & loaded


def test_usage_is_read_as_an_organization_without_the_orm_or_the_accounts_service(
    granted: Path,
) -> None:
    loaded = _modules("usage", "--as", CONSUMER, "--home", str(granted))
    _assert_lean(loaded)
    # --as reads the organization on Core; the invoice sums ledger rows on Core.
    unused = {
        "argon2",
        "entrepot.exchange.accounts",
        "entrepot.privacy._ledger_models",
        "entrepot.privacy.ledger",
        "entrepot.schemas.usage",
        "entrepot.vault.models",
    }
    assert not unused & loaded


def test_the_database_s_status_is_read_without_alembic_or_the_orm(home: Path) -> None:
    _assert_lean(_modules("db", "status", "--home", str(home)))


def test_the_version_is_printed_without_building_the_settings() -> None:
    assert "entrepot.settings" not in _modules("--version")


def test_a_noun_builds_only_the_subcommand_that_runs() -> None:
    from typer.main import get_command

    from entrepot.cli.app import app

    catalog = get_command(app).commands["catalog"]
    assert list(catalog.commands) == ["search", "list", "show", "export"]
    assert catalog.commands["list"].name == "list"
    assert set(catalog.commands._built) == {"list"}


def test_the_shipped_standards_are_listed_without_opening_a_node(home: Path) -> None:
    loaded = _modules("standard", "list", "--home", str(home))
    assert not {m.split(".")[0] for m in loaded} & {"sqlalchemy", "nacl", "yaml"}
    assert not {m for m in loaded if m.startswith(("entrepot.exchange", "entrepot.db"))}


def test_every_command_is_listed_without_loading_it() -> None:
    from typer.main import get_command

    from entrepot.cli.app import COMMANDS, app

    group = get_command(app)
    assert list(group.commands) == list(COMMANDS)
    catalog = group.commands["catalog"]
    assert catalog.name == "catalog"
    assert catalog.help


# Runs the installed entry point, then reports the collector's state after the command.
_COLLECTOR = """
import gc, json, sys
from entrepot.cli import main
before = gc.get_threshold()
try:
    main()
except SystemExit:
    pass
after = {"after": gc.get_threshold(), "frozen": gc.get_freeze_count(), "enabled": gc.isenabled()}
print(json.dumps({"before": before, **after}))
"""


def _collector(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _COLLECTOR, *args], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_command_that_opens_a_node_collects_as_usual_once_started(home: Path) -> None:
    state = _collector("catalog", "list", "--home", str(home))
    # Start-up's objects frozen, so no later pass traverses them; the usual rhythm after.
    assert state["after"] == state["before"]
    assert state["frozen"] > 50_000


def test_a_command_that_opens_no_node_still_collects() -> None:
    state = _collector("standard", "list")
    assert state["frozen"] == 0
    assert state["enabled"]
    young, middle, old = state["after"]
    assert 0 < young <= 100_000
    assert min(middle, old) > 0


def test_a_schema_behind_the_migrations_is_brought_to_their_head(tmp_path: Path) -> None:
    from alembic import command
    from alembic.script import ScriptDirectory

    from entrepot.db import alembic_config

    config = alembic_config()
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    assert head is not None
    previous = script.get_revision(head).down_revision
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, str(previous))
        db.upgrade()
        with db.engine.connect() as connection:
            stored = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            assert [row[0] for row in stored] == [head]
    finally:
        db.dispose()


def test_a_bad_setting_in_the_environment_is_named_not_a_traceback(home: Path) -> None:
    env = {**os.environ, "ENTREPOT_PORT": "eighty"}
    done = subprocess.run(
        [sys.executable, "-m", "entrepot", "catalog", "list", "--home", str(home)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 5
    assert "setting port" in done.stderr
    assert "ENTREPOT_PORT" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", [["audit", "log"], ["audit", "head"], ["audit", "prove", "0"]])
def test_the_log_and_its_head_are_read_without_the_orm_or_the_signing_library(
    granted: Path, command: list[str]
) -> None:
    loaded = _modules(*command, "--home", str(granted))
    _assert_lean(loaded)
    # A stored head is read, not signed: no key is made, no signature checked, and
    # node.db is not told of a new head. Nor is the whole log verified or exported.
    assert not {m for m in loaded if m.split(".")[0] == "nacl"}
    unused = {
        "concurrent.futures.process",
        "entrepot.exchange.outbox",
        "entrepot.exchange.reconcile",
        "entrepot.transparency.export",
        "entrepot.transparency.receipts",
        "rich.progress",
    }
    assert not unused & loaded
