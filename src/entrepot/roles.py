"""The roles an organization has on a node.

Apart from the organizations' table (:mod:`entrepot.organizations`), so that naming
who acts loads no ORM.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Role"]


class Role(StrEnum):
    OPERATOR = "operator"
    PROVIDER = "provider"
    CONSUMER = "consumer"
    AUDITOR = "auditor"
