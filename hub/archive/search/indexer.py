"""The search indexer: tails ``messages`` by id from a stored cursor and indexes new text in
small batches, at low priority.

It never holds up acknowledging callbacks: on SQLite its writes queue behind the archive writer at
the write gate, and while ``pressure()`` says callbacks are piling up it waits (the index lags a
few seconds during a burst and catches up after it). The cursor and the batch commit together, so
a restart resumes where the last commit ended. On PostgreSQL, where concurrent writers may commit
ids out of order, it also looks back for text rows the index lacks: at most every ``late_every``
seconds, over the ids the cursor passed since the last look (any process's) plus ``LOOKBACK``
before them (a look over the last 2,000 ids on every pass of 32 messages read 60 rows per message
indexed). Recalled messages stay indexed: the archive keeps them (marked), and so do results.

With several processes (PostgreSQL) one pass runs at a time: a pass is one transaction that first
takes an advisory lock, and a process that finds it taken leaves the batch to the other. Each used to
read the same batch, and the one that lost the race for the cursor had waited on its row lock
(holding a connection) only to read again.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from sqlalchemy import select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from ...clock import Clock
from ...db import Database, retry_busy
from ...models import Message, SearchCursor
from ...tasks import cancel_and_wait
from . import postgres_index, sqlite_index

log = logging.getLogger(__name__)

messages = Message.__table__
cursors = SearchCursor.__table__
CURSOR = "messages"
LOOKBACK = 2000  # PostgreSQL: ids behind the cursor re-checked for late commits
PASS_LOCK = 74113  # pg advisory lock: one indexing pass at a time among the processes
LATE_CURSOR = "messages:late"  # PostgreSQL: where the last look back for late commits ended


def backend(db: Database) -> Any:
    """The index module for the database's dialect."""
    return sqlite_index if db.is_sqlite else postgres_index


async def ensure_index(db: Database) -> None:
    """Create the index table (idempotent) and the cursor row."""
    async def write() -> None:
        async with db.write() as conn:
            await backend(db).ensure(conn)
    await retry_busy(write)


class SearchIndexer:
    def __init__(self, db: Database, clock: Clock, batch: int = 32, idle: float = 1.0):
        self.db = db
        self.clock = clock
        self.batch = batch
        self.idle = idle  # seconds between polls when nothing woke it (agents' replies, other processes)
        # after catching up, the next pass waits this long: every commit of the archive writer wakes the
        # indexer, and a pass (a read, a write transaction) per few messages cost a fifth of the loop at
        # 300 messages/s; search results may lag by this much
        self.min_interval = 0.5
        self.pressure: Callable[[], bool] | None = None
        self.backoff = 0.25  # seconds waited at a time while under pressure
        self.share = 0.5  # of the event loop's time a catch-up may take
        self.indexed = 0
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._index = backend(db)
        self._last: int | None = None  # the cursor as this indexer last committed it
        self.late_every = 1.0  # PostgreSQL: seconds between looks back for late commits
        self._late_at = 0.0  # loop time of this process's last look back

    def notify(self, *_args: Any) -> None:
        self._wakeup.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="search-indexer")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=self.idle)
            except asyncio.TimeoutError:
                pass
            self._wakeup.clear()
            try:
                while True:
                    while self.pressure is not None and self.pressure():
                        await asyncio.sleep(self.backoff)
                    started = time.perf_counter()
                    if await self.run_once() < self.batch:
                        await asyncio.sleep(self.min_interval)
                        break
                    # a long catch-up takes at most about ``share`` of the loop
                    spent = time.perf_counter() - started
                    await asyncio.sleep(spent * (1 - self.share) / self.share)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the cursor did not move: the next pass retries
                log.exception("search indexing pass failed")
                await asyncio.sleep(1.0)

    def cursor_moved(self) -> None:
        """Someone set the cursor back (an erasure on SQLite): read it again at the next pass."""
        self._last = None

    async def cursor(self) -> int:
        async with self.db.read() as conn:
            value = (await conn.execute(select(cursors.c.last_id).where(cursors.c.name == CURSOR))).scalar()
        return int(value or 0)

    async def run_once(self, wait_turn: bool = False) -> int:
        """Index the next batch; returns how many message rows it read (0: caught up, or on PostgreSQL
        another process is indexing now and ``wait_turn`` is not set)."""
        if not self.db.is_sqlite:
            return await retry_busy(lambda: self._locked_pass(wait_turn))
        # the cursor as this indexer last moved it (one read less per pass); if anyone else moved it
        # since (the CLI), the conditional update in _commit fails and it is read again
        last = self._last if self._last is not None else await self.cursor()
        async with self.db.read() as conn:
            rows = await self._next_rows(conn, last)
        if not rows:
            return 0
        count = await retry_busy(lambda: self._commit(last, rows[-1].id, [(r.id, r.text) for r in rows]))
        self.indexed += count
        return len(rows)

    async def _next_rows(self, conn: Any, last: int) -> list[Any]:
        return (await conn.execute(select(messages.c.id, messages.c.text).where(messages.c.id > last)
                                   .order_by(messages.c.id).limit(self.batch))).all()

    async def _locked_pass(self, wait_turn: bool) -> int:
        """PostgreSQL: read, index and move the cursor in one transaction under ``PASS_LOCK``."""
        async with self.db.write() as conn:
            if wait_turn:
                await conn.execute(text(f"SELECT pg_advisory_xact_lock({PASS_LOCK}, 0)"))
            elif not (await conn.execute(text(f"SELECT pg_try_advisory_xact_lock({PASS_LOCK}, 0)"))).scalar():
                return 0  # another process's pass: the batch is theirs
            marks = dict((await conn.execute(select(cursors.c.name, cursors.c.last_id)
                                             .where(cursors.c.name.in_((CURSOR, LATE_CURSOR))))).all())
            now = self.clock.now()
            if CURSOR not in marks:
                await conn.execute(self._insert_cursor(), {"name": CURSOR, "last_id": 0, "updated_at": now})
            last = int(marks.get(CURSOR) or 0)
            rows = await self._next_rows(conn, last)
            late = await self._late_rows(conn, last, marks.get(LATE_CURSOR)) if self._late_due() else []
            if not rows and not late:
                return 0
            new_last = rows[-1].id if rows else last
            await conn.execute(update(cursors).where(cursors.c.name == CURSOR).values(last_id=new_last, updated_at=now))
            pairs = [(r.id, r.text) for r in late] + [(r.id, r.text) for r in rows]
            present = await _still_there(conn, [mid for mid, _ in pairs], lock=True)
            added = await self._index.add(conn, [p for p in pairs if p[0] in present])
        self._last = new_last
        self.indexed += added
        return len(rows)

    def _late_due(self) -> bool:
        """PostgreSQL: time for a look back (several writers commit ids out of order; SQLite has one)."""
        if self.db.is_sqlite:
            return False
        now = asyncio.get_running_loop().time()
        if now - self._late_at < self.late_every:
            return False
        self._late_at = now
        return True

    async def _late_rows(self, conn: Any, last: int, late_from: int | None) -> list[Any]:
        """Text rows behind the cursor that the index lacks: from ``LOOKBACK`` ids before where the
        last look (by any process: ``LATE_CURSOR``) ended, up to the cursor. A full answer (500) keeps
        that start for the next look."""
        start = last if late_from is None else min(last, late_from)
        rows = (await conn.execute(text(
            "SELECT m.id, m.text FROM messages m WHERE m.id > :lo AND m.id <= :last "
            "AND m.text IS NOT NULL AND m.text <> '' "
            f"AND NOT EXISTS (SELECT 1 FROM {postgres_index.TABLE} s WHERE s.message_id = m.id) "
            "ORDER BY m.id LIMIT 500"), {"lo": max(0, start - LOOKBACK), "last": last})).all()
        if len(rows) < 500:
            upsert = postgresql.insert(cursors).values(name=LATE_CURSOR, last_id=last, updated_at=self.clock.now())
            await conn.execute(upsert.on_conflict_do_update(index_elements=["name"], set_={
                "last_id": upsert.excluded.last_id, "updated_at": upsert.excluded.updated_at}))
        return rows

    async def _commit(self, last: int, new_last: int, pairs: list[tuple[int, str | None]]) -> int:
        """SQLite: index and move the cursor in one transaction, only if nobody moved it meanwhile (the
        CLI's catch-up on the same database)."""
        async with self.db.write() as conn:
            now = self.clock.now()
            if last == 0:
                await conn.execute(self._insert_cursor(), {"name": CURSOR, "last_id": 0, "updated_at": now})
            moved = await conn.execute(update(cursors).where(cursors.c.name == CURSOR)
                                       .where(cursors.c.last_id == last).values(last_id=new_last, updated_at=now))
            if moved.rowcount != 1:
                self._last = None
                return 0  # someone else indexed this batch; the next pass reads the new cursor
            present = await _still_there(conn, [mid for mid, _ in pairs])
            added = await self._index.add(conn, [p for p in pairs if p[0] in present])
        self._last = new_last  # committed
        return added

    def _insert_cursor(self) -> Any:
        insert = sqlite.insert if self.db.is_sqlite else postgresql.insert
        return insert(cursors).on_conflict_do_nothing(index_elements=["name"])

    async def catch_up(self) -> int:
        """Index everything not yet indexed (the CLI, tests); returns how many texts were indexed."""
        before = self.indexed
        while await self.run_once(wait_turn=True) >= self.batch:
            pass
        return self.indexed - before


async def _still_there(conn: Any, ids: list[int], lock: bool = False) -> set[int]:
    """Which of the messages read for indexing still exist: an erasure or a purge may have deleted
    some since (their index rows with them), and indexing those would keep an erased text's terms.
    On PostgreSQL (``lock``) they are also locked against deletion until this pass commits, in id
    order as the erasure locks them: an erasure then waits for the pass and removes what it indexed,
    or the pass waits for the erasure and no longer finds them."""
    if not ids:
        return set()
    query = select(messages.c.id).where(messages.c.id.in_(sorted(set(ids)))).order_by(messages.c.id)
    if lock:
        query = query.with_for_update(key_share=True)
    return set((await conn.execute(query)).scalars().all())
