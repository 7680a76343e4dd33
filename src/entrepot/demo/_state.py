"""What the steps of the demo scenario share: the state, the step type, the reporter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from entrepot.demo.manifest import Manifest
from entrepot.errors import Conflict
from entrepot.exchange import Exchange, Node
from entrepot.settings import Settings

# The folder of a demo home that holds the raw files; its manifest marks the home.
DEMO_FOLDER = "demo"


class Reporter(Protocol):
    """Shows a scenario as it runs: steps starting and ending, progress in between."""

    def begin(self, step: Step) -> None: ...

    def progress(self, task: str, done: int, total: int) -> None: ...

    def end(self, step: Step, data: dict[str, Any]) -> None: ...


class Silent:
    """A reporter that shows nothing (the library default)."""

    def begin(self, step: Step) -> None:
        del step

    def progress(self, task: str, done: int, total: int) -> None:
        del task, done, total

    def end(self, step: Step, data: dict[str, Any]) -> None:
        del step, data


@dataclass
class Demo:
    """The state a scenario's steps share; steps fill it in as they go."""

    settings: Settings
    seed: int
    scale: float
    reporter: Reporter
    manifest: Manifest | None = None
    node: Node | None = None
    # What earlier steps left for later ones (e.g. the consumer a grant was made to).
    notes: dict[str, Any] = field(default_factory=dict)
    _exchange: Exchange | None = field(default=None, repr=False)

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def files(self) -> Path:
        return self.home / DEMO_FOLDER

    def opened(self) -> Node:
        if self.node is None:
            raise Conflict(
                "this demo step needs the node, which no earlier step opened",
                hint="keep the `node` step before the steps that use the exchange",
            )
        return self.node

    def exchange(self) -> Exchange:
        """The services of the opened node, built once per node."""
        node = self.opened()
        if self._exchange is None or self._exchange.node is not node:
            self._exchange = Exchange(node)
        return self._exchange

    def demo_manifest(self) -> Manifest:
        if self.manifest is None:
            self.manifest = Manifest.read(self.files)
        return self.manifest


@dataclass(frozen=True)
class Step:
    """One step of the scenario: ``run`` returns JSON-ready data about what it did."""

    name: str
    title: str
    run: Callable[[Demo], dict[str, Any]]
