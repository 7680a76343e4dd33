"""The metadata every table of the node's schema is declared on, Core table or mapped."""

from __future__ import annotations

from sqlalchemy import MetaData

__all__ = ["METADATA"]

_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

METADATA = MetaData(naming_convention=_NAMING)
