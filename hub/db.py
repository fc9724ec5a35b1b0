"""Database engine: SQLite (WAL, synchronous=FULL) by default, PostgreSQL via asyncpg for scale-out."""
from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from .models import Base

log = logging.getLogger(__name__)


class Database:
    """Owns the engine; ``write()`` opens a write transaction (``BEGIN IMMEDIATE`` on SQLite so two
    writers queue on the busy timeout instead of failing), ``read()`` a plain one."""

    def __init__(self, url: str):
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict = {}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30, "isolation_level": None}
            if ":memory:" in url or url.rstrip("/").endswith("sqlite+aiosqlite:"):
                raise ValueError("use a SQLite file, not :memory: (the hub needs several connections)")
        else:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            self._install_sqlite_hooks()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def _install_sqlite_hooks(self) -> None:
        @event.listens_for(self.engine.sync_engine, "connect")
        def _on_connect(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(self.engine.sync_engine, "begin")
        def _on_begin(conn):  # noqa: ANN001
            immediate = conn.get_execution_options().get("hub_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    async def create_schema(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)

    @asynccontextmanager
    async def write(self, retries: int = 5) -> AsyncIterator[AsyncConnection]:
        """A write transaction; commits on success. Callers that must survive a busy database wrap
        their whole unit of work in ``retry_busy``."""
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(hub_write=True)
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            async with conn.begin():
                yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()


def is_busy(exc: BaseException) -> bool:
    """A transient 'database is locked/busy' or a dropped connection: retry, do not lose."""
    text = str(exc).lower()
    return isinstance(exc, OperationalError) and ("locked" in text or "busy" in text) or \
        "connection" in text and ("closed" in text or "terminat" in text or "reset" in text)


async def retry_busy(fn, *, attempts: int = 8, delay: float = 0.05):  # noqa: ANN001
    """Run ``await fn()`` again when the database is busy, with backoff."""
    for i in range(attempts):
        try:
            return await fn()
        except Exception as exc:  # noqa: BLE001
            if i == attempts - 1 or not is_busy(exc):
                raise
            log.warning("database busy (%s); retrying in %.2fs", type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
