"""Alembic's environment for the hub: configured in code (hub/schema.py), for SQLite and PostgreSQL.

``hub.schema`` passes an open connection (``config.attributes["connection"]``) inside its locked
transaction. Run without one (the ``alembic`` command with the repository's alembic.ini), it opens
the database at ``sqlalchemy.url`` / ``$HUB_DATABASE_URL`` itself; ``--sql`` writes the SQL instead.
"""
from __future__ import annotations

import asyncio
import os

from alembic import context

from hub import schema

config = context.config


def run_on(connection, schema_name):  # noqa: ANN001, ANN201
    context.configure(connection=connection, **schema.context_options(connection, schema_name))
    with context.begin_transaction():
        context.run_migrations()


def database_url() -> str:
    return config.get_main_option("sqlalchemy.url") or os.environ.get("HUB_DATABASE_URL") or \
        "sqlite+aiosqlite:///scrm-hub.db"


if context.is_offline_mode():
    from hub.db import split_schema
    url, schema_name = split_schema(database_url())
    context.configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"},
                      **schema.context_options(None, schema_name))
    with context.begin_transaction():
        context.run_migrations()
elif config.attributes.get("connection") is not None:
    run_on(config.attributes["connection"], config.attributes.get("schema"))
else:
    from hub.db import Database

    async def standalone() -> None:
        db = Database(database_url())
        try:
            await schema.run_locked(db, lambda conn: run_on(conn, db.schema))
        finally:
            await db.dispose()

    asyncio.run(standalone())
