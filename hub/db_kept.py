"""PostgreSQL: a few connections kept open between uses, for short reads and the archive writer.

Checking a connection out of SQLAlchemy's pool and back costs the process about 40 µs of CPU (pool
events, greenlet hand-offs), and the reads' autocommit option, set on the connection at checkout and
reset at return, as much again: more than an indexed lookup itself (bench/pg_read_cost.py: 248 µs
per short read so, 150 on a kept connection). A pipeline job makes
several short reads and the archive writer checks a connection out per batch; on PostgreSQL a
customer's follow-up cost the hub about 1.8x its CPU on SQLite, whose loop thread already keeps one
read connection open (hub/db.py).

``KeptConnections`` keeps up to ``size`` autocommit connections of an engine (the reads' own, so an
idle kept connection never holds a slot the writes' pool needs; the archive writer's durable one,
which nothing else uses) and lends each to one user at a time. When all are lent, a use checks a
connection out of ``fallback`` as before: nothing ever waits for a kept connection, so reads nested
in reads cannot deadlock. A use that fails gives its connection back to the pool (which resets it,
or replaces it when the error closed it); one that lost its connection (PostgreSQL restarted, the
backend was terminated) gives back every idle one too, so the next uses reconnect instead of each
failing once on a dead connection.
"""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)


async def _close(conn: AsyncConnection) -> None:
    """Back to its pool; a connection that cannot even be closed is dropped all the same."""
    try:
        await conn.close()
    except Exception:  # noqa: BLE001 - never hides the error of the use that failed
        log.debug("closing a kept connection failed", exc_info=True)


class KeptConnections:
    def __init__(self, engine: AsyncEngine, fallback: AsyncEngine, size: int):
        self.engine = engine  # autocommit, pool_size == size
        self.fallback = fallback
        self.size = size
        self._idle: list[AsyncConnection] = []
        self._open = 0  # kept connections, idle or lent

    @asynccontextmanager
    async def lend(self) -> AsyncIterator[AsyncConnection]:
        if self._idle:
            conn = self._idle.pop()
        elif self._open < self.size:
            self._open += 1
            try:
                conn = await self.engine.connect()
            except BaseException:
                self._open -= 1
                raise
        else:
            async with self.fallback.connect() as conn:
                yield conn
            return
        try:
            yield conn
        except BaseException:
            self._open -= 1
            if conn.invalidated:
                await self.release_idle()
            await _close(conn)
            raise
        if conn.invalidated:
            self._open -= 1
            await _close(conn)
        else:
            self._idle.append(conn)

    async def release_idle(self) -> None:
        """Every idle kept connection back to the engine's pool."""
        idle, self._idle = self._idle, []
        self._open -= len(idle)
        for conn in idle:
            await _close(conn)

    async def dispose(self) -> None:
        await self.release_idle()
        await self.engine.dispose()
