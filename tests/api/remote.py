"""The CLI logged in to a served world: login files, and the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from entrepot.client import Remote, save_remote
from entrepot.exchange.node import Node
from entrepot.settings import Settings

if TYPE_CHECKING:
    from tests.api.conftest import World


@dataclass
class Served:
    """A world served on loopback, and login files for its accounts."""

    url: str
    world: World
    logins: Path

    @property
    def node(self) -> Node:
        return self.world.node

    def login(self, who: str) -> Path:
        """A login file for account ``who`` (what `entrepot login` writes)."""
        config = self.logins / f"{who}.json"
        if not config.exists():
            save_remote(Remote(self.url, self.world.tokens[who]), Settings(client_config=config))
        return config


def entrepot(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in its own process, logged in with ``config`` (if it exists)."""
    env = {**os.environ, "ENTREPOT_CLIENT_CONFIG": str(config)}
    env.pop("ENTREPOT_AS", None)
    env.pop("ENTREPOT_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "entrepot", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
