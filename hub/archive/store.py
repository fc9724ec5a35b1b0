"""Durable archive writes with group commit.

``ArchiveWriter.save(items)`` returns once the messages are committed together with their pending
jobs. One writer task drains everything queued while the previous transaction ran and commits it
as one transaction, so a burst of callbacks costs one fsync per batch instead of one each.
Duplicates (platform retries) are absorbed by the unique ``(account_id, dedup_key)``.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Sequence

from ..clock import Clock
from ..db import Database, is_busy, retry_busy
from ..messages import Inbound, KfSignal, kind_of
from ..tasks import cancel_and_wait
from .postgres_batch import PostgresBatchWriter
from .sqlite_batch import SqliteBatchWriter

log = logging.getLogger(__name__)



@dataclass(frozen=True, slots=True)
class ToArchive:
    """One message to store: its account and typed content; ``job`` names the follow-up work."""

    account_id: str
    msg: Inbound
    job: str | None = "inbound"


@dataclass(frozen=True, slots=True)
class Saved:
    message_id: int | None  # None when the message was a duplicate
    conversation_id: int

    @property
    def duplicate(self) -> bool:
        return self.message_id is None


def job_kind_for(msg: Inbound) -> str:
    return "kf_pull" if isinstance(msg, KfSignal) else "inbound"


class ArchiveWriter:
    """The single writer task of a hub process (group commit)."""

    def __init__(self, db: Database, clock: Clock, max_batch: int = 512):
        self.db = db
        self.clock = clock
        self.max_batch = max_batch
        self._queue: list[tuple[ToArchive, asyncio.Future[Saved]]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._sqlite = SqliteBatchWriter(db.sqlite_path) if db.is_sqlite else None
        self._postgres = PostgresBatchWriter()
        self.on_commit: list[Any] = []  # callbacks(list[Saved with job]) run after each commit
        self.batches = 0
        self.rows = 0
        self.jobs_written = 0  # new messages committed with a follow-up job

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="archive-writer")

    async def stop(self) -> None:
        """Commit what is queued, then stop."""
        if self._task is None:
            return
        await cancel_and_wait(self._task)
        self._task = None
        while self._queue:
            await self._flush()
        if self._sqlite is not None:
            await self._sqlite.close()

    async def save(self, items: Sequence[ToArchive]) -> list[Saved]:
        """Queue items for the next group commit and wait until they are durable."""
        return list(await asyncio.gather(*await self._queued(items)))

    async def save_one(self, item: ToArchive) -> Saved:
        """``save`` of one item (a callback's message), without gathering a list of one."""
        return await (await self._queued((item,)))[0]

    async def _queued(self, items: Sequence[ToArchive]) -> list[asyncio.Future[Saved]]:
        """Queue items for the writer task (or write them now when it is not running: CLI, tests)."""
        loop = asyncio.get_running_loop()
        futures = []
        for item in items:
            fut: asyncio.Future[Saved] = loop.create_future()
            self._queue.append((item, fut))
            futures.append(fut)
        self._wakeup.set()
        if self._task is None:
            while self._queue:  # a batch at a time: a kf page of 1,000 is two
                await self._flush()
        return futures

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                await self._flush()

    async def _flush(self) -> None:
        batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch:]
        if not batch:
            return
        try:
            results = await retry_busy(lambda: self._write([item for item, _ in batch], [fut for _, fut in batch]),
                                       attempts=10)
        except asyncio.CancelledError:
            # stopped mid-write: the batch goes back for stop() to write (had its commit landed, the
            # rows are found again, as duplicates: on SQLite its waiters heard of the commit already),
            # or its waiters would never be answered
            self._queue[:0] = batch
            raise
        except Exception as exc:  # noqa: BLE001 - a waiter whose message is not stored is not acked
            if len(batch) == 1 or is_busy(exc):
                log.error("archive write of %d messages failed: %s", len(batch), exc)
                _fail(batch, exc)
                return
            # one message the database refuses must not take its batch-mates down: each goes alone
            log.error("archive write of %d messages failed (%s); writing them one at a time", len(batch), exc)
            batch, results = await self._one_at_a_time(batch)
            if not batch:
                return
        for (_, fut), saved in zip(batch, results):
            if not fut.done():
                fut.set_result(saved)
        self.batches += 1
        self.rows += len(batch)
        self.jobs_written += sum(1 for (item, _), saved in zip(batch, results) if item.job and saved.message_id)
        for hook in self.on_commit:
            try:
                hook(results)
            except Exception:  # noqa: BLE001
                log.exception("on_commit hook failed")

    async def _one_at_a_time(self, batch: list[tuple[ToArchive, asyncio.Future[Saved]]]
                             ) -> tuple[list[tuple[ToArchive, asyncio.Future[Saved]]], list[Saved]]:
        """Write a refused batch's messages one by one: the refused ones fail alone. Returns the
        stored ones and their results."""
        stored, results = [], []
        for item, fut in batch:
            try:
                [saved] = await retry_busy(lambda: self._write([item], [fut]), attempts=10)
            except Exception as exc:  # noqa: BLE001
                log.error("archive refused a message of %s (%s): %s", item.account_id, item.msg.dedup_key, exc)
                _fail([(item, fut)], exc)
                continue
            stored.append((item, fut))
            results.append(saved)
        return stored, results

    async def _write(self, items: list[ToArchive], waiters: list[asyncio.Future[Saved]]) -> list[Saved]:
        if self._sqlite is not None:
            return await self._write_sqlite(items, waiters)
        return await self._write_postgres(items)

    async def _write_sqlite(self, items: list[ToArchive], waiters: list[asyncio.Future[Saved]]) -> list[Saved]:
        """The waiters are answered as soon as the commit is back (the callbacks' 200s go out
        first), the rest of ``_flush`` (counts, hooks, the next batch) follows."""
        saved: list[Saved] = []

        def durable(written: list[tuple[int | None, int]]) -> None:  # (always before write() returns)
            saved.extend(Saved(mid, conv) for mid, conv in written)
            for fut, result in zip(waiters, saved):
                if not fut.done():
                    fut.set_result(result)
        rows = [_row(it) for it in items]
        await self.db.gate.acquire(urgent=True)
        try:
            await self._sqlite.write(rows, self.clock.now(), durable)
        finally:
            self.db.gate.release()
        return saved

    def forget_conversations(self) -> None:
        if self._sqlite is not None:
            self._sqlite.forget_conversations()
        self._postgres.forget_conversations()

    async def _write_postgres(self, items: list[ToArchive]) -> list[Saved]:
        written = await self._postgres.write(self.db, [_row(it) for it in items], self.clock.now())
        return [Saved(mid, conv) for mid, conv in written]


def _fail(batch: Sequence[tuple[ToArchive, asyncio.Future[Saved]]], exc: Exception) -> None:
    for _, fut in batch:
        if not fut.done():
            fut.set_exception(exc)


def _row(it: ToArchive) -> dict[str, Any]:
    """One message as the batch writers take it: its columns plus "thread" and "job"."""
    m = it.msg
    text = m.text
    if text is not None and "\x00" in text:  # (a pulled kf item's JSON may carry one)
        text = text.replace("\x00", "\ufffd")
    return {"account_id": it.account_id, "thread": fit(m.thread, 64), "channel": m.channel, "direction": m.direction,
            "kind": fit(kind_of(m), 48), "peer_id": fit(m.peer_id, 128), "sender": fit(m.sender, 64),
            "dedup_key": fit(m.dedup_key, 160), "text": text, "data": m.data_json(), "raw": m.raw,
            "sent_at": m.sent_at if -2**63 <= m.sent_at < 2**63 else 0, "job": it.job}


def fit(value: str, limit: int) -> str:
    """A platform's value made to fit its column (models/archive.py): PostgreSQL refuses a longer one
    (or a NUL), and the message would never be stored (an Official Account menu VIEW event's key is
    its URL, often past 160 characters). A long value keeps a digest of the whole, so two keys or
    ids that differ only past the cut stay distinct, and a retry gets the same one."""
    if len(value) <= limit and "\x00" not in value:
        return value
    digest = hashlib.sha1(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return value.replace("\x00", "\ufffd")[:limit - 17] + "#" + digest
