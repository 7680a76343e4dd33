"""Where a node or a client may send what it must keep from the network: HTTPS, or
plain HTTP to this machine only.

A bearer token, a consumer's questions and its answers cross the network in the clear
over plain ``http://``, for anyone on the way to read (and a token to be replayed).
:func:`plain_http_refused` is the one rule the CLI, the Python client and federation
apply to a URL before they send anything to it; ``allow_plain_http`` (the setting
``ENTREPOT_ALLOW_PLAIN_HTTP``) switches it off by name, for a network one trusts.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from entrepot.errors import InvalidInput

__all__ = ["loopback", "plain_http_refused"]


def loopback(host: str) -> bool:
    """Whether ``host`` names this machine by a loopback address (or ``localhost``):
    what is sent there never crosses a network."""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plain_http_refused(url: str, crossing: str) -> InvalidInput | None:
    """The refusal of ``url`` if it is plain HTTP to another machine, saying what would
    cross the network unencrypted (``crossing``), or None."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "http" or loopback(parts.hostname or ""):
        return None
    return InvalidInput(
        f"{url} is plain HTTP to another machine: {crossing} would cross the network unencrypted",
        hint="use its https:// address, or set ENTREPOT_ALLOW_PLAIN_HTTP=1 on a network "
        "you trust (plain http:// is always allowed to this machine)",
        setting="allow_plain_http",
    )
