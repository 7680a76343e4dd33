"""The demo scenario: a seeded exchange built step by step through the library.

A scenario is a tuple of small :class:`Step` functions run in order over one
:class:`Demo`. Each returns plain, JSON-ready data that a :class:`Reporter` shows
as it arrives (the CLI renders it with Rich), so a capability that lands later
adds one step to :data:`STEPS` and one renderer, nothing else.

The raw files, their mappings and the manifest live in ``<home>/demo/``, with the
marker file that makes a home a demo exchange, which ``fresh=True`` may wipe.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from entrepot.demo._consuming import (
    CONSUMER,
    TOKEN_NAME,
    audit_log,
    private_query,
    request_access,
)
from entrepot.demo._joining import private_join
from entrepot.demo._publishing import (
    SEARCH,
    generate_files,
    open_node,
    publish_files,
    register_providers,
    search_catalog,
)
from entrepot.demo._state import DEMO_FOLDER, Demo, Reporter, Silent, Step
from entrepot.demo.generate import DEFAULT_SEED, check_arguments
from entrepot.errors import Conflict
from entrepot.settings import Settings
from entrepot.vault import DatasetRef

# The file that marks a home as built by the demo.
MARKER = "BUILT-BY-ENTREPOT-DEMO"

__all__ = [
    "DEMO_FOLDER",
    "SEARCH",
    "STEPS",
    "Demo",
    "DemoResult",
    "Reporter",
    "Step",
    "is_demo_home",
    "run",
]


@dataclass(frozen=True)
class DemoResult:
    home: Path
    steps: list[tuple[Step, dict[str, Any]]] = field(default_factory=list)

    def data(self, name: str) -> dict[str, Any]:
        for step, data in self.steps:
            if step.name == name:
                return data
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"home": str(self.home), "steps": {step.name: data for step, data in self.steps}}


def is_demo_home(home: Path) -> bool:
    """Whether ``home`` was built by the demo (and so may be wiped and rebuilt)."""
    return (home / DEMO_FOLDER / MARKER).is_file()


def _mark(home: Path) -> None:
    # Marked before anything else is written, so an interrupted first run can be redone.
    (home / DEMO_FOLDER).mkdir(parents=True, exist_ok=True)
    (home / DEMO_FOLDER / MARKER).write_text(
        "This home was built by `entrepot demo`, which may wipe it (--fresh).\n",
        encoding="utf-8",
    )


def _prepare_home(home: Path, fresh: bool) -> None:
    """Refuse a home the demo did not build; wipe a demo home when asked."""
    if not home.exists() or not any(home.iterdir()):
        return
    if not is_demo_home(home):
        raise Conflict(
            f"{home} is not empty and was not built by the demo; the demo will not "
            "touch it" + (", let alone wipe it" if fresh else ""),
            hint="choose an empty or new directory with --home, e.g. --home .demo-exchange",
        )
    if fresh:
        shutil.rmtree(home)


def _next(demo: Demo) -> dict[str, Any]:
    first = demo.demo_manifest().files[0]
    home = f"--home {demo.home}"
    ref = f"{first.provider}/{first.dataset}"
    table = DatasetRef(first.provider, first.dataset).sql_name
    commands = [
        f"entrepot catalog list {home}",
        f'entrepot catalog search "mobility phone" {home}',
        f"entrepot catalog show {ref} {home}",
        f"entrepot dataset versions {ref} {home}",
        f"entrepot dataset validate {demo.files / first.path} --standard {first.standard} "
        f"--mapping {demo.files / first.mapping}",
        f"entrepot policy show {ref} {home}",
        f'entrepot query --as {CONSUMER} --epsilon 0.5 {home} "SELECT age_band, COUNT(*) AS '
        f'visits FROM {table} GROUP BY age_band"',
        f"entrepot audit log --dataset {ref} {home}",
        f"entrepot catalog export --format dcat {home} > catalog.jsonld",
    ]
    receipt = demo.notes.get("receipt")
    if receipt is not None:
        commands.append(f"entrepot receipt verify {receipt} {home}")
    commands.append(f"entrepot serve {home}")
    url = f"http://{demo.settings.host}:{demo.settings.port}"
    token = demo.files / TOKEN_NAME
    served = [f"{url}/docs"]
    if token.exists():
        served.append(f'curl -H "Authorization: Bearer $(cat {token})" {url}/v1/catalog/datasets')
    return {"commands": commands, "served": served}


# The scenario, in order. Later capabilities add their steps here.
STEPS: tuple[Step, ...] = (
    Step("generate", "Generate the providers' raw files", generate_files),
    Step("node", "Open the exchange node", open_node),
    Step("providers", "Register the providers", register_providers),
    Step("publish", "Publish every file, quarantining invalid rows", publish_files),
    Step("catalog", "Search the catalog", search_catalog),
    Step("access", "A health bureau asks for access; the hospital grants ε", request_access),
    Step("query", "The bureau's private query, and one the policy refuses", private_query),
    Step("join", "A private join: hospital visits and payments, on resident numbers", private_join),
    Step("audit", "Check the transparency log as an outsider would", audit_log),
    Step("next", "What to try next", _next),
)


def run(
    home: Path,
    *,
    seed: int = DEFAULT_SEED,
    scale: float = 1.0,
    fresh: bool = False,
    reporter: Reporter | None = None,
    steps: tuple[Step, ...] = STEPS,
    settings: Settings | None = None,
) -> DemoResult:
    """Build (or extend) the demo exchange at ``home`` and return what each step did.

    ``fresh`` wipes ``home`` first, but only when it is empty or a demo home; a home
    holding anything else is refused (Conflict) whatever ``fresh`` says. Reusing a
    demo home publishes a new version of each dataset.
    """
    check_arguments(seed, scale)
    chosen = (settings or Settings()).model_copy(update={"home": home})
    _prepare_home(home, fresh)
    _mark(home)
    demo = Demo(chosen, seed, scale, reporter or Silent())
    result = DemoResult(home)
    try:
        for step in steps:
            demo.reporter.begin(step)
            data = step.run(demo)
            result.steps.append((step, data))
            demo.reporter.end(step, data)
    finally:
        if demo.node is not None:
            demo.node.close()
    return result
