"""PostgreSQL: the hub's hottest statements on the asyncpg connection itself.

Through SQLAlchemy's asyncio execution (the greenlet hand-off, the cursor adapter, the result's
set-up) a one-row lookup costs the process 50-100 µs of CPU more than on the asyncpg connection
under the same ``AsyncConnection`` (bench/pg_read_cost.py: 150 against 98 µs per ``Database.read()``
with the open-session lookup, 46 µs on a bare asyncpg connection). Used where a statement runs for
every message: the archive writer's batch (hub/archive/postgres_batch.py) and the session lookups
of every customer message (hub/service/sessions.py).
"""
from __future__ import annotations

import re
from collections import namedtuple
from typing import Any, Sequence

from sqlalchemy.dialects import postgresql

_DIALECT = postgresql.asyncpg.dialect()


def positional(statement: Any, names: Sequence[str]) -> str:
    """A text() statement's SQL with its ``:name`` parameters as asyncpg's ``$n``, in ``names`` order."""
    sql = statement.text
    for n, name in enumerate(names, 1):
        sql = re.sub(rf":{name}\b", f"${n}", sql)
    return sql


async def fetch_raw(conn: Any, sql: str, *args: Any) -> list[Any]:
    """``sql`` on the asyncpg connection under a SQLAlchemy ``AsyncConnection``; a connection the
    error closed is invalidated, so the pool does not hand it out again."""
    raw = (await conn.get_raw_connection()).driver_connection
    try:
        return await raw.fetch(sql, *args)
    except BaseException:
        if raw.is_closed():
            await conn.invalidate()
        raise


class RawSelect:
    """A Core ``select`` compiled once for PostgreSQL, run by ``first``/``all`` with its bound
    parameters by name; rows come back as named tuples that read like SQLAlchemy's (attributes,
    ``_mapping``, ``_asdict()``). Only for columns whose values asyncpg returns as SQLAlchemy would
    (numbers, strings, booleans: no type that converts its values)."""

    def __init__(self, stmt: Any, name: str):
        compiled = stmt.compile(dialect=_DIALECT)
        self.sql = str(compiled)
        self.names = list(compiled.positiontup or [])
        fields = [c.key for c in stmt.selected_columns]
        self.row = namedtuple(name, fields)  # type: ignore[misc]
        self.row._mapping = property(lambda r: r._asdict())  # type: ignore[attr-defined]

    async def all(self, conn: Any, **params: Any) -> list[Any]:
        records = await fetch_raw(conn, self.sql, *(params[n] for n in self.names))
        return [self.row(*r) for r in records]

    async def first(self, conn: Any, **params: Any) -> Any:
        rows = await self.all(conn, **params)
        return rows[0] if rows else None
