"""The client the CLI uses once `entrepot login` has stored a server.

One code path for the logic (the domain layer, behind the API), two transports:
without a login the CLI calls the library in-process; with one, it calls the
server through :class:`Client`. CLI modules ask :func:`current` which applies::

    client = current()
    if client is not None:
        data = client.get("/v1/budgets")
    else:
        ...  # the local library call

Timeouts are strict by default (connect 5 s, everything else ``http_timeout_s``).
An error answered by the server is raised again as the same class of the error
tree, with its message, hint and fields, so the CLI prints it as it would a local
one. The token lives only in the config file (mode 0600) and the Authorization
header; it is never printed, logged or put in a URL.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from entrepot.errors import InvalidInput, PeerError, Unauthorized, from_body
from entrepot.settings import Settings

__all__ = ["Client", "Remote", "current", "forget", "load_remote", "require", "save_remote"]

# A server that does not accept a connection within this is down or unreachable.
_CONNECT_TIMEOUT_S = 5.0
# Items asked for per page when a command reads a whole list (the server may cap it).
_PAGE = 500


@dataclass(frozen=True)
class Remote:
    """A server the CLI is logged in to."""

    url: str
    token: str

    def __repr__(self) -> str:
        return f"Remote(url={self.url!r}, token=<hidden>)"


def _config_path(settings: Settings | None) -> Path:
    return (settings or Settings()).client_config


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


def _raise_for(response: httpx.Response, url: str) -> None:
    try:
        body = response.json()["error"]
        if not all(isinstance(body.get(key), str) for key in ("code", "message")):
            raise TypeError
    except (ValueError, KeyError, TypeError, AttributeError):
        raise PeerError(
            f"{url} answered HTTP {response.status_code} without an entrepot error body",
            hint="check that the login URL points at an entrepot server",
        ) from None
    raise from_body(body)


class Client:
    """An authenticated HTTP client for one entrepot server."""

    def __init__(
        self, url: str, token: str, *, timeout_s: float = 30.0, transport: Any = None
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout_s, connect=min(_CONNECT_TIMEOUT_S, timeout_s)),
            transport=transport,
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"Client(url={self.url!r})"

    def _unreachable(self, method: str, path: str, error: httpx.TransportError) -> PeerError:
        if isinstance(error, httpx.TimeoutException):
            return PeerError(
                f"{self.url} did not answer {method} {path} in time",
                hint="check the server, or raise ENTREPOT_HTTP_TIMEOUT_S",
            )
        return PeerError(
            f"cannot reach {self.url} ({type(error).__name__})",
            hint="is `entrepot serve` running there? `entrepot logout` to work locally",
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request; the decoded JSON body, or the error tree's error."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise self._unreachable(method, path, error) from None
        if response.status_code >= 400:
            _raise_for(response, self.url)
        if not response.content:
            return None
        content_type = response.headers.get("content-type", "")
        return response.json() if "json" in content_type else response.text

    def items(self, path: str, *, most: int | None = None, **params: Any) -> list[Any]:
        """The items of a paged list route, page after page (the first ``most`` of them)."""
        found: list[Any] = []
        offset: int | None = 0
        while offset is not None and (most is None or len(found) < most):
            limit = _PAGE if most is None else min(_PAGE, most - len(found))
            page = self.get(path, limit=limit, offset=offset, **params)
            found.extend(page["items"])
            offset = page["next_offset"]
        return found

    def lines(self, path: str) -> Iterator[bytes]:
        """The lines of a JSON-lines route as the exact bytes sent, read as a stream."""
        try:
            with self._http.stream("GET", path, headers={"Accept": "application/jsonl"}) as reply:
                if reply.status_code >= 400:
                    reply.read()
                    _raise_for(reply, self.url)
                rest = b""
                for chunk in reply.iter_bytes():
                    *whole, rest = (rest + chunk).split(b"\n")
                    yield from whole
        except httpx.TransportError as error:
            raise self._unreachable("GET", path, error) from None
        if rest:
            raise PeerError(
                f"{self.url}{path} ended inside a line",
                hint="the transfer was cut; run the command again",
            )

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        if body is not None:
            kwargs["json"] = body
        return self.request("POST", path, **kwargs)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def current(settings: Settings | None = None) -> Client | None:
    """A client for the server `entrepot login` stored, or None to work locally."""
    settings = settings or Settings()
    remote = load_remote(settings)
    if remote is None:
        return None
    return Client(remote.url, remote.token, timeout_s=settings.http_timeout_s)


def require(settings: Settings | None = None) -> Client:
    """Like :func:`current`, for commands that only exist against a server."""
    client = current(settings)
    if client is None:
        raise Unauthorized(
            "not logged in to an entrepot server",
            hint="run `entrepot login URL --token T` first",
        )
    return client
