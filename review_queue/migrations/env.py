"""Alembic environment: always run with a connection handed over by review_queue.migrate."""

from __future__ import annotations

from alembic import context

from review_queue.db import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, version_table="queue_alembic_version")
with context.begin_transaction():
    context.run_migrations()
