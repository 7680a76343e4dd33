"""Who acts on a node: an organization in a role, through an account or the local CLI.

Kept apart from the accounts' tables and token hashing, so that a command that only
reads (the catalog, the standards) names its actor without loading them.
"""

from __future__ import annotations

from dataclasses import dataclass

from entrepot.roles import Role

__all__ = ["LOCAL", "Actor"]


@dataclass(frozen=True)
class Actor:
    """Who acts: an organization in a role, through an account or the local CLI."""

    role: str
    org_id: int | None = None
    org_slug: str = ""
    provider_id: int | None = None
    account: str | None = None

    @property
    def name(self) -> str:
        """How the log, transitions and ledger rows name this actor: its organization,
        whichever of its accounts acted (:func:`~entrepot.transparency.entries.actor_name`)."""
        # The log's entries load only for a name written down, not to read the catalog.
        from entrepot.transparency.entries import actor_name

        return actor_name(self.org_slug)

    @property
    def is_local(self) -> bool:
        return self.role == "local"

    @property
    def administers(self) -> bool:
        """Operators and the holder of the node's home manage accounts and see everything."""
        return self.role in ("local", Role.OPERATOR)


# The holder of the node's home, acting through the local CLI without --as.
LOCAL = Actor(role="local")
