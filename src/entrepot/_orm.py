"""The declarative base every mapped class of the node's schema shares.

Apart from :mod:`entrepot.db`, so that opening a database does not load the ORM.
"""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from entrepot._metadata import METADATA

__all__ = ["Base"]


class Base(DeclarativeBase):
    metadata = METADATA
