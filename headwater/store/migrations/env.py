"""Alembic environment: run against the connection Headwater hands in (or the configured URL)."""

from __future__ import annotations

from alembic import context

from headwater.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # plain `alembic` CLI use
    from headwater.connections import make_engine

    engine = make_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
