"""Alembic environment: migrations always run on a connection handed in by
:func:`bastion.storage.migrate.upgrade`."""

from __future__ import annotations

from alembic import context

from bastion.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `bastion migrate`")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
