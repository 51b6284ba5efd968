"""Alembic's environment for kefu: the models' metadata, and the connection bot/storage/schema.py hands over
(kefu has no alembic.ini: the database comes from kefu's own settings)."""

from __future__ import annotations

from alembic import context

from bot.storage.tables import METADATA

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=METADATA,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters a table by copying it
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
