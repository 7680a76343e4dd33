"""Alembic environment: runs on the connection that :meth:`Database.upgrade` passes in."""

from __future__ import annotations

from alembic import context

from entrepot.db import Base, import_models

import_models()
connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
