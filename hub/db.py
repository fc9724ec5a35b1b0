"""Database engine: SQLite (WAL) by default, PostgreSQL via asyncpg for scale-out.

SQLite durability: acknowledged inbound messages (the archive writer's own connection) and
``write(durable=True)`` transactions commit with ``synchronous=FULL``; other writes (derived state:
sessions, bot outcomes, job bookkeeping) with ``synchronous=NORMAL``, which in WAL mode survives a
process crash, and after a power loss loses only a tail of commits that the re-run of the jobs whose
completion was lost with them rebuilds. Writers in one process take turns through ``WriteGate``
(the archive writer first), so nobody sleeps in SQLite's busy handler.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from contextlib import asynccontextmanager
from typing import AsyncIterator

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from .models import Base

log = logging.getLogger(__name__)


def split_schema(url: str) -> tuple[str, str | None]:
    """``postgresql+asyncpg://.../db?schema=s`` -> (url without it, "s")."""
    parsed = make_url(url)
    schema = parsed.query.get("schema")
    if not schema:
        return url, None
    return parsed.difference_update_query(["schema"]).render_as_string(hide_password=False), str(schema)


class WriteGate:
    """One SQLite writer at a time within the process; ``urgent`` waiters (the archive writer,
    whose callers are waiting to acknowledge callbacks) go before the others."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future] = deque()
        self._normal: deque[asyncio.Future] = deque()

    async def acquire(self, urgent: bool = False) -> None:
        if not self._held and not self._urgent and (urgent or not self._normal):
            self._held = True
            return
        fut = asyncio.get_running_loop().create_future()
        (self._urgent if urgent else self._normal).append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # it was handed to us as we were cancelled: pass it on
            else:
                (self._urgent if urgent else self._normal).remove(fut)
            raise

    def release(self) -> None:
        for queue in (self._urgent, self._normal):
            while queue:
                fut = queue.popleft()
                if not fut.done():
                    fut.set_result(None)  # the gate stays held, by the next waiter
                    return
        self._held = False


class Database:
    """Owns the engine; ``write()`` opens a write transaction (``BEGIN IMMEDIATE`` on SQLite so two
    writers queue on the busy timeout instead of failing), ``read()`` a plain one."""

    def __init__(self, url: str):
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict = {}
        url, schema = split_schema(url)
        if schema:  # PostgreSQL: ?schema=NAME puts the hub's tables in that schema
            kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30, "isolation_level": None}
            if ":memory:" in url or url.rstrip("/").endswith("sqlite+aiosqlite:"):
                raise ValueError("use a SQLite file, not :memory: (the hub needs several connections)")
            kwargs.update(pool_size=20, max_overflow=20)
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self.schema = schema
        self.gate = WriteGate()
        self.sqlite_path = make_url(url).database if self.is_sqlite else None
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
            cur.execute("PRAGMA synchronous=NORMAL")
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
    async def write(self, durable: bool = False) -> AsyncIterator[AsyncConnection]:
        """A write transaction; commits on success. ``durable``: fsync the commit on SQLite (for
        what a person was told is saved). Callers that must survive a busy database wrap their
        whole unit of work in ``retry_busy``. Never open another write inside one (deadlock)."""
        if not self.is_sqlite:
            async with self.engine.connect() as conn:
                async with conn.begin():
                    yield conn
            return
        await self.gate.acquire()
        try:
            async with self.engine.connect() as conn:
                raw = (await conn.get_raw_connection()).driver_connection  # the aiosqlite connection
                if durable:
                    await raw.execute("PRAGMA synchronous=FULL")  # outside any transaction
                try:
                    conn = await conn.execution_options(hub_write=True)
                    async with conn.begin():
                        yield conn
                finally:
                    if durable:
                        await raw.execute("PRAGMA synchronous=NORMAL")
        finally:
            self.gate.release()

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
