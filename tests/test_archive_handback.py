"""The archive's commit is handed straight back to the callbacks that wait on it: they answer in the
loop's next turn, before the writer inserts the batch that queued meanwhile (bench/callbacks.py: the
platforms' 64 connections each wait for their answer before sending the next message, so every
turn between the fsync and the answers costs throughput)."""
from __future__ import annotations

import asyncio
import threading

import pytest

from hub.archive.store import ToArchive
from hub.messages import Text

from .conftest import ON_POSTGRES


def text(msg_id: str) -> ToArchive:
    return ToArchive("acme-wecom", Text(channel="wecom", peer_id="wmHandback", sent_at=1, msg_id=msg_id, content="在吗"))


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite's group commit (its COMMIT runs in a helper thread)")
async def test_a_batchs_callbacks_answer_before_the_next_batch_is_inserted(hub, monkeypatch):
    await hub.pipeline.stop()
    batch_writer = hub.writer._sqlite  # noqa: SLF001
    events: list[tuple[str, str]] = []
    real_insert = batch_writer._insert  # noqa: SLF001

    def insert(conn, rows, now):  # noqa: ANN001, ANN202
        events.append(("insert", ",".join(r["dedup_key"].rsplit(":", 1)[-1] for r in rows)))
        return real_insert(conn, rows, now)
    monkeypatch.setattr(batch_writer, "_insert", insert)

    async def callback(msg_id: str):  # noqa: ANN202 - as a callback handler awaits its save
        saved = await hub.writer.save_one(text(msg_id))
        events.append(("answered", msg_id))
        return saved

    hold = threading.Event()
    batch_writer._pool.submit(hold.wait, 10)  # noqa: SLF001 - the first COMMIT queues behind this
    try:
        first = asyncio.ensure_future(callback("h1"))
        while ("insert", "h1") not in events:
            await asyncio.sleep(0.001)
        second = asyncio.ensure_future(callback("h2"))  # queues while h1's batch commits
        for _ in range(3):
            await asyncio.sleep(0)
        assert hub.writer._queue and events == [("insert", "h1")]  # noqa: SLF001
    finally:
        hold.set()
    saved = await asyncio.wait_for(asyncio.gather(first, second), 10)
    assert not any(s.duplicate for s in saved)
    assert events == [("insert", "h1"), ("answered", "h1"), ("insert", "h2"), ("answered", "h2")]


class SlowCommit:
    """The writer's connection, its first COMMIT held until ``release`` (a slow fsync)."""

    def __init__(self, conn, release: threading.Event):  # noqa: ANN001
        self.conn, self.release, self.started = conn, release, threading.Event()

    def execute(self, sql: str, *args):  # noqa: ANN202
        if sql == "COMMIT" and not self.started.is_set():
            self.started.set()
            self.release.wait(10)
        return self.conn.execute(sql, *args)

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.conn, name)


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite's group commit (its COMMIT runs in a helper thread)")
@pytest.mark.parametrize("commit", ["queued", "running"])
async def test_stopping_while_the_batch_commits_stores_it_once_and_answers_it(hub, commit):
    """The writer stopped while its batch's COMMIT waits for the helper thread (called off, rolled back,
    written again by stop()) or runs in it (finished first: the connection is not for two threads at
    once). Either way the message is stored once and its waiter hears it was new."""
    from sqlalchemy import func, select

    from hub.models import Message

    await hub.pipeline.stop()
    batch_writer = hub.writer._sqlite  # noqa: SLF001
    release = threading.Event()
    if commit == "queued":
        batch_writer._pool.submit(release.wait, 10)  # noqa: SLF001 - the COMMIT queues behind this
        conn = batch_writer._connect()  # noqa: SLF001

        def committing() -> bool:
            return conn.in_transaction
    else:
        slow = batch_writer._conn = SlowCommit(batch_writer._connect(), release)  # noqa: SLF001
        committing = slow.started.is_set
    pending = asyncio.ensure_future(hub.writer.save_one(text("s1")))
    while not committing():
        await asyncio.sleep(0.001)
    threading.Timer(0.2, release.set).start()  # (stop() may wait for the thread, on the loop's thread)
    await asyncio.wait_for(hub.writer.stop(), 10)
    saved = await asyncio.wait_for(pending, 10)
    assert saved.conversation_id and not saved.duplicate
    messages = Message.__table__
    async with hub.db.read() as conn:
        stored = (await conn.execute(select(func.count()).select_from(messages)
                                     .where(messages.c.peer_id == "wmHandback"))).scalar()
    assert stored == 1
