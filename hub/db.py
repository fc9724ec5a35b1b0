"""Database engine: SQLite (WAL) by default, PostgreSQL via asyncpg for scale-out.

SQLite durability: acknowledged inbound messages (the archive writer's own connection) and
``write(durable=True)`` transactions commit with ``synchronous=FULL``; other writes (derived state:
sessions, bot outcomes, job bookkeeping) with ``synchronous=NORMAL``, which in WAL mode survives a
process crash, and after a power loss loses only a tail of commits that the re-run of the jobs whose
completion was lost with them rebuilds. PostgreSQL makes the same split: its connections commit
with ``synchronous_commit=off`` (a hub process that dies loses nothing; a crash of the PostgreSQL
server loses at most its last ~0.6 s of such commits, again a tail); durable writes turn it on for
their transaction, and the archive writer's batches run on connections of their own where it is on
(``durable_statements``): a job's commits no longer queue for the WAL flush, in which the
acknowledged messages' commits waited behind them. Writers in one
process take turns through ``WriteGate`` (the archive writer first), so nobody sleeps in SQLite's
busy handler.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from .config import async_url
from .db_kept import KeptConnections
from .models import Base
from .turns import Turns
from .wal_checkpoint import WalCheckpointer

log = logging.getLogger(__name__)

# set while the running task holds the SQLite write gate: it never waits for a turn then (others
# would wait for the gate behind it, the archive writer first)
_WRITING: contextvars.ContextVar[bool] = contextvars.ContextVar("hub_db_writing", default=False)
KEPT_READERS = 8  # PostgreSQL: connections kept open for short reads, per process


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


class LoopConnection:
    """The ``AsyncConnection`` calls the hub uses, over a synchronous SQLite connection that runs
    in the event loop's thread: a short SQLite statement on a local WAL file costs microseconds,
    far less than a hop to a driver thread (measured: ~2 ms per short transaction through
    aiosqlite under load, five thread hops). Long reads go through ``Database.read_heavy``."""

    __slots__ = ("_c",)

    def __init__(self, conn: Connection):
        self._c = conn

    async def execute(self, statement: Any, parameters: Any = None, **kw: Any) -> Any:
        return self._c.execute(statement, parameters, **kw)

    async def exec_driver_sql(self, statement: str, parameters: Any = None) -> Any:
        return self._c.exec_driver_sql(statement, parameters)

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return self._c.scalar(statement, parameters)

    async def run_sync(self, fn: Any, *args: Any, **kw: Any) -> Any:
        return fn(self._c, *args, **kw)


class Database:
    """Owns the engines. ``write()`` opens a write transaction, ``read()`` a short read,
    ``read_heavy()`` a long read (search, exports, statistics) that must not hold up the loop.

    SQLite: short statements run in the loop thread on a synchronous pysqlite engine, writers
    take turns through ``WriteGate`` (``BEGIN IMMEDIATE``), long reads go through aiosqlite in
    its own thread. PostgreSQL: everything through asyncpg."""

    def __init__(self, url: str):
        url = async_url(url)
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict = {}
        url, schema = split_schema(url)
        if not self.is_sqlite:
            # background writes commit without waiting for the WAL flush; ``write(durable=True)`` and
            # the archive writer's batches wait for it (see the module's docstring)
            settings = {"synchronous_commit": "off"}
            if schema:  # ?schema=NAME puts the hub's tables in that schema
                settings.update(search_path=schema, application_name=f"hub:{schema}")
            # the hub runs some 150 distinct statements; asyncpg's default cache of 100 prepared
            # statements per connection made it prepare its everyday ones again and again
            kwargs["connect_args"] = {"server_settings": settings, "prepared_statement_cache_size": 500}
        self.schema = schema
        self.gate = WriteGate()
        self._reader: LoopConnection | None = None  # SQLite: the loop thread's read connection
        self.turns = Turns()  # SQLite: background work takes the loop a turn at a time (hub/turns.py)
        self.sqlite_path = make_url(url).database if self.is_sqlite else None
        self.checkpointer = WalCheckpointer(self.sqlite_path) if self.is_sqlite else None
        self.sync_engine = None
        if self.is_sqlite:
            if not self.sqlite_path or self.sqlite_path == ":memory:":
                raise ValueError("use a SQLite file, not :memory: (the hub needs several connections)")
            kwargs.update(connect_args={"timeout": 30, "isolation_level": None}, pool_size=5, max_overflow=10)
            self.sync_engine = create_engine(
                f"sqlite:///{self.sqlite_path}", pool_size=20, max_overflow=50, pool_reset_on_return=None,
                connect_args={"timeout": 5, "isolation_level": None, "check_same_thread": False})
        else:
            # the pool holds what the hub uses at once (the pipeline's 32 conversations, the search
            # indexer, sends, timers, requests), and no more is ever opened: an overflow connection
            # is closed when returned, and under load the hub opened hundreds a minute, each a
            # backend fork with cold caches on which every statement was prepared anew (a third of
            # the pipeline's CPU with two workers); past 40 a statement waits for a connection
            # No ping on checkout: asyncpg's costs three round trips (begin, ";", rollback) on every
            # read and write, about a tenth of a worker under load. A connection PostgreSQL dropped
            # fails its next statement instead; SQLAlchemy then invalidates the whole pool (every
            # connection as old is replaced) and retry_busy / the job's retry run the work again.
            kwargs.update(pool_size=40, max_overflow=0, pool_pre_ping=False)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        # PostgreSQL's short reads run in autocommit: a statement is its own snapshot under READ
        # COMMITTED either way, and BEGIN and COMMIT around it were two of its three round trips
        self._read_engine = None if self.is_sqlite else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        # ... and most of them on a few connections kept open between reads (hub/db_kept.py)
        self.readers: KeptConnections | None = None
        if not self.is_sqlite:
            self.readers = KeptConnections(create_async_engine(
                url, pool_size=KEPT_READERS, max_overflow=0, pool_pre_ping=False, isolation_level="AUTOCOMMIT",
                connect_args=kwargs["connect_args"]), self._read_engine, KEPT_READERS)
        # PostgreSQL's archive writer: a few connections of their own on which every statement
        # commits by itself and waits for the WAL flush (``durable_statements``)
        self.durable_engine: AsyncEngine | None = None
        self.durable: KeptConnections | None = None  # its connections kept open between batches
        if not self.is_sqlite:
            self.durable_engine = create_async_engine(
                url, pool_size=2, max_overflow=2, pool_pre_ping=False, isolation_level="AUTOCOMMIT",
                connect_args={**kwargs["connect_args"], "server_settings": {**settings, "synchronous_commit": "on"}})
            self.durable = KeptConnections(self.durable_engine, self.durable_engine, 2)
        if self.is_sqlite:
            self._install_sqlite_hooks(self.engine.sync_engine)
            self._install_sqlite_hooks(self.sync_engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def _install_sqlite_hooks(self, engine: Any) -> None:
        checkpointer = self.checkpointer
        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            if checkpointer is not None and checkpointer.running:  # then it checkpoints (hub/wal_checkpoint.py)
                cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):  # noqa: ANN001
            options = conn.get_execution_options()
            if options.get("hub_read_autocommit"):
                return  # short reads: each statement is its own snapshot, no BEGIN/COMMIT round trips
            conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("hub_write") else "BEGIN")

    async def create_schema(self, auto_migrate: bool = True) -> str:
        """Bring the schema to the migrations' head (hub/schema.py): a fresh database is created and
        stamped, one behind is upgraded (``auto_migrate``; otherwise ``SchemaError``). Returns what
        was done: created, current, upgraded or adopted (a database from before Alembic)."""
        from .schema import prepare
        return await prepare(self, auto_migrate)

    @asynccontextmanager
    async def write(self, durable: bool = False) -> AsyncIterator[Any]:
        """A write transaction; commits on success. ``durable``: fsync the commit on SQLite (for
        what a person was told is saved). Callers that must survive a busy database wrap their
        whole unit of work in ``retry_busy``. Never open another write inside one (deadlock)."""
        if self.sync_engine is None:
            async with self.engine.connect() as conn:
                async with conn.begin():
                    if durable:
                        await conn.exec_driver_sql("SET LOCAL synchronous_commit = on")
                    yield conn
            return
        if not _WRITING.get():
            await self.turns.take()
        await self.gate.acquire()
        writing = _WRITING.set(True)
        try:
            with self.sync_engine.connect() as conn:
                raw = conn.connection.driver_connection
                if durable:
                    raw.execute("PRAGMA synchronous=FULL")  # outside any transaction
                try:
                    conn = conn.execution_options(hub_write=True)
                    with conn.begin():
                        yield LoopConnection(conn)
                finally:
                    if durable:
                        raw.execute("PRAGMA synchronous=NORMAL")
        finally:
            _WRITING.reset(writing)
            self.gate.release()

    @asynccontextmanager
    async def durable_statements(self) -> AsyncIterator[AsyncConnection]:
        """PostgreSQL: a connection on which each statement is its own transaction, committed
        durably (``synchronous_commit=on``) before it returns. For work that is one statement (the
        archive writer's batch), BEGIN, SET LOCAL and COMMIT were three of its four round trips."""
        if self.durable is None:
            raise RuntimeError("durable_statements is PostgreSQL's; SQLite has its archive writer's own connection")
        async with self.durable.lend() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Any]:
        """A short read (a few indexed lookups), each statement its own snapshot."""
        if self.readers is not None:
            async with self.readers.lend() as conn:
                yield conn
            return
        if not _WRITING.get():
            await self.turns.take()
        reader = self._reader
        if reader is None:
            # one connection for every short read in the loop's thread, kept open: checking one out
            # of the pool and back per read cost more than the read (each statement is its own
            # snapshot, autocommit: no transaction is ever left open on it)
            conn = self.sync_engine.connect().execution_options(hub_read_autocommit=True)
            reader = self._reader = LoopConnection(conn)
        try:
            yield reader
        except BaseException:
            if reader._c.invalidated:  # a lost connection: the next read opens a new one
                self._drop_reader()
            raise

    @asynccontextmanager
    async def read_heavy(self) -> AsyncIterator[AsyncConnection]:
        """A long read (search, export, statistics): off the loop thread on SQLite."""
        async with self.engine.connect() as conn:
            async with conn.begin():
                yield conn

    def _drop_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            try:
                reader._c.close()
            except Exception:  # noqa: BLE001 - a broken connection is dropped all the same
                log.debug("closing the read connection failed", exc_info=True)

    def start_checkpoints(self) -> None:
        """SQLite: checkpoint the write-ahead log in a thread of its own while the hub runs (the
        connections opened from now on leave it to that thread; those open before are closed)."""
        if self.checkpointer is None:
            return
        self.checkpointer.start()
        self._drop_reader()
        self.sync_engine.dispose()  # (the aiosqlite engine only reads: reads never checkpoint)

    async def dispose(self) -> None:
        if self.checkpointer is not None:
            await asyncio.to_thread(self.checkpointer.stop)
        self._drop_reader()
        await self.engine.dispose()
        if self.readers is not None:
            await self.readers.dispose()
        if self.durable is not None:
            await self.durable.dispose()
        if self.sync_engine is not None:
            self.sync_engine.dispose()


def is_busy(exc: BaseException) -> bool:
    """A transient 'database is locked/busy' or a dropped connection: retry, do not lose."""
    text = str(exc).lower()
    return isinstance(exc, OperationalError) and ("locked" in text or "busy" in text) or \
        "connection" in text and ("closed" in text or "terminat" in text or "reset" in text) or \
        "deadlock detected" in text or "could not serialize access" in text  # PostgreSQL: run it again


async def retry_conflicts(fn, *, attempts: int = 3):  # noqa: ANN001
    """``retry_busy(fn)``, run again when it lost a race for a unique key: another transaction (a
    parallel job, another hub process) inserted the same customer identity, order or tag between this
    one's look and its insert; run again, the look finds it."""
    for i in range(attempts):
        try:
            return await retry_busy(fn)
        except IntegrityError:
            if i == attempts - 1:
                raise
            log.info("lost a race for a unique key; running the transaction again")


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
