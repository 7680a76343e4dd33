"""The server `entrepot login` stored: where the CLI works when logged in.

The token lives only in the config file (mode 0600) and the Authorization header;
it is never printed, logged or put in a URL.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from entrepot.errors import InvalidInput, Unauthorized

if TYPE_CHECKING:
    from entrepot.client.http import HttpClient
    from entrepot.settings import Settings

__all__ = ["Remote", "current", "forget", "load_remote", "require", "save_remote"]


@dataclass(frozen=True)
class Remote:
    """A server the CLI is logged in to."""

    url: str
    token: str

    def __repr__(self) -> str:
        return f"Remote(url={self.url!r}, token=<hidden>)"


def _settings() -> Settings:
    # Imported here: a command that reads no setting (``--version``) builds no pydantic model.
    from entrepot.settings import Settings

    return Settings()


def _config_path(settings: Settings | None) -> Path:
    return (settings or _settings()).client_config


def save_remote(remote: Remote, settings: Settings | None = None) -> Path:
    """Store ``remote`` in the client config file, readable by its owner only."""
    path = _config_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"url": remote.url, "token": remote.token}, out)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
    return path


def load_remote(settings: Settings | None = None) -> Remote | None:
    """The stored server, or None when the CLI is not logged in."""
    path = _config_path(settings)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        raise InvalidInput(
            f"unreadable login file {path}",
            hint="run `entrepot logout` and `entrepot login URL --token T` again",
        ) from None
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) for k in ("url", "token")):
        raise InvalidInput(
            f"login file {path} lacks url or token",
            hint="run `entrepot logout` and `entrepot login URL --token T` again",
        )
    return Remote(url=raw["url"], token=raw["token"])


def forget(settings: Settings | None = None) -> bool:
    """Delete the stored login; True when there was one."""
    path = _config_path(settings)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def current(settings: Settings | None = None) -> HttpClient | None:
    """A client for the server `entrepot login` stored, or None to work locally."""
    settings = settings or _settings()
    remote = load_remote(settings)
    if remote is None:
        return None
    from entrepot.client.http import HttpClient

    return HttpClient(
        remote.url,
        remote.token,
        timeout_s=settings.http_timeout_s,
        plain_http=settings.allow_plain_http,
    )


def require(settings: Settings | None = None) -> HttpClient:
    """Like :func:`current`, for commands that only exist against a server."""
    client = current(settings)
    if client is None:
        raise Unauthorized(
            "not logged in to an entrepot server",
            hint="run `entrepot login URL --token T` first",
        )
    return client
