"""Alembic environment: migrations run on a connection handed over by postventa.store.migrate."""

from __future__ import annotations

from alembic import context

from postventa.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `postventa db upgrade`, which provides the connection")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
