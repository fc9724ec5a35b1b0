"""Work in the event loop's thread takes turns (hub/turns.py), WAL checkpoints run in their own thread
(hub/wal_checkpoint.py), and partial-index states are written into the SQL (hub/models/base.py)."""
from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest
from sqlalchemy.dialects import sqlite

from hub.db import Database
from hub.models.base import fixed
from hub.service.sessions import OPEN_SESSION_Q
from hub.turns import Turns
from hub.wal_checkpoint import WalCheckpointer
from tests.conftest import ON_POSTGRES
from tests.helpers import wait_for


def busy(seconds: float) -> None:
    """A synchronous stretch of work, as a few SQLite statements in the loop's thread are."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def test_turns_let_the_loop_in_between_and_every_task_finishes():
    turns = Turns(slice_s=0.002)
    done = []
    steps = 0  # worker steps run so far

    async def worker(n: int) -> None:
        nonlocal steps
        for _ in range(10):  # ten "transactions" of 1 ms each
            await turns.take()
            busy(0.001)
            steps += 1
        done.append(n)

    between: list[int] = []  # worker steps the loop ran between two turns of the ticker

    async def ticker() -> None:  # stands for a callback waiting for the loop
        while len(done) < 20:
            before = steps
            await asyncio.sleep(0)
            between.append(steps - before)

    await asyncio.gather(ticker(), *(worker(n) for n in range(20)))
    assert sorted(done) == list(range(20))  # nobody starves
    assert turns.waited > 0
    # without turns the loop ran every ready worker's step before the ticker got its turn again (20, see
    # below); with them a 2 ms turn holds two 1 ms steps and the one that began inside it (a machine
    # that is busy elsewhere only makes each step longer, so fewer fit)
    assert max(between) <= 3, between


async def test_without_turns_one_iteration_runs_every_ready_task():
    """The problem turns solve, shown with the same workers and no turns."""
    steps = 0
    finished = 0

    async def worker() -> None:
        nonlocal steps, finished
        for _ in range(10):
            await asyncio.sleep(0)
            busy(0.001)
            steps += 1
        finished += 1

    between: list[int] = []

    async def ticker() -> None:
        while finished < 20:
            before = steps
            await asyncio.sleep(0)
            between.append(steps - before)

    await asyncio.gather(ticker(), *(worker() for _ in range(20)))
    assert max(between) == 20


async def test_a_cancelled_waiter_leaves_the_others_their_turns():
    turns = Turns(slice_s=0.001)
    busy(0.002)  # the current turn is spent: both wait for the next one
    first = asyncio.ensure_future(turns.take())
    second = asyncio.ensure_future(turns.take())
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.wait_for(second, 1)
    with pytest.raises(asyncio.CancelledError):
        await first


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite only: PostgreSQL awaits on every statement")
async def test_a_task_inside_a_write_never_waits_for_a_turn(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    try:
        await db.create_schema()
        db.turns.slice_s = 0.001
        waited = db.turns.waited
        busy(0.002)  # the current turn is spent: a take now waits
        async with db.write() as conn:
            busy(0.002)  # and spent again inside the write
            async with db.read() as reader:  # a read nested in a write: the gate is held, so no waiting
                await reader.exec_driver_sql("SELECT 1")
            await conn.exec_driver_sql("SELECT 1")
        assert db.turns.waited == waited + 1  # only the write itself waited, before taking the gate
    finally:
        await db.dispose()


def test_checkpointer_copies_the_log_back_off_the_writers(tmp_path):
    path = str(tmp_path / "c.db")
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # as the hub's connections, while the checkpointer runs
    writer.execute("CREATE TABLE t (x TEXT)")
    checkpointer = WalCheckpointer(path, interval=0.01)
    checkpointer.start()
    try:
        for _ in range(200):
            writer.execute("INSERT INTO t VALUES (?)", ("消息" * 200,))
        deadline = time.monotonic() + 5
        while checkpointer.frames == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert checkpointer.running and checkpointer.checkpoints > 0 and checkpointer.frames > 0
    finally:
        checkpointer.stop()
        writer.close()
    assert not checkpointer.running
    assert sqlite3.connect(path).execute("SELECT count(*) FROM t").fetchone()[0] == 200


def test_log_starts_over_under_a_steady_stream_of_writes(tmp_path):
    """The archive writer's connection keeps its own checkpoints, the loop's connections leave theirs to
    the checkpointer: the log is reused from its beginning instead of growing with every write (a
    checkpointer alone, racing steady writers, never caught up and the log grew without end)."""
    path = str(tmp_path / "w.db")
    archive = sqlite3.connect(path, isolation_level=None)  # as hub/archive/sqlite_batch.py
    archive.execute("PRAGMA journal_mode=WAL")
    archive.execute("CREATE TABLE t (x TEXT)")
    loop_conn = sqlite3.connect(path, isolation_level=None)  # as hub/db.py while the checkpointer runs
    loop_conn.execute("PRAGMA wal_autocheckpoint=0")
    checkpointer = WalCheckpointer(path, interval=0.01)
    checkpointer.start()
    try:
        row = "消息" * 1000  # ~6 KB: two pages a row
        for i in range(3000):  # ~18 MB written in all
            (archive if i % 2 else loop_conn).execute("INSERT INTO t VALUES (?)", (row,))
    finally:
        checkpointer.stop()
    wal = tmp_path / "w.db-wal"
    assert wal.stat().st_size < 8 * 1024 * 1024, wal.stat().st_size
    archive.close()
    loop_conn.close()


def test_checkpointer_empties_a_copied_back_log_while_readers_come_and_go(tmp_path):
    """A burst leaves a long log behind; once it is copied back the checkpointer empties the file
    (TRUNCATE), though a reader keeps reading meanwhile (under a callback flood the log never started
    over by itself and grew past 1 GB)."""
    import threading
    path = str(tmp_path / "t.db")
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # as the hub's loop connections
    writer.execute("CREATE TABLE t (x TEXT)")
    stop = threading.Event()
    reads = 0

    def reader() -> None:
        nonlocal reads
        conn = sqlite3.connect(path, isolation_level=None)
        while not stop.is_set():
            conn.execute("SELECT count(*) FROM t").fetchone()
            reads += 1
        conn.close()

    wal = tmp_path / "t.db-wal"
    checkpointer = WalCheckpointer(path, interval=0.01, restart_frames=64)
    thread = threading.Thread(target=reader)
    thread.start()
    checkpointer.start()
    try:
        row = "消息" * 1000  # ~6 KB: two pages a row
        for _ in range(60):
            writer.execute("BEGIN IMMEDIATE")
            writer.executemany("INSERT INTO t VALUES (?)", [(row,)] * 20)
            writer.execute("COMMIT")
        written = wal.stat().st_size
        deadline = time.monotonic() + 10
        while wal.stat().st_size and time.monotonic() < deadline:
            time.sleep(0.01)
        emptied = wal.stat().st_size
    finally:
        checkpointer.stop()
        stop.set()
        thread.join()
    assert written > 64 * 4096 and reads > 0
    assert emptied == 0 and checkpointer.restarts > 0
    assert writer.execute("SELECT count(*) FROM t").fetchone()[0] == 1200
    writer.close()


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite only")
async def test_running_hub_checkpoints_in_its_thread(hub, wecom, client):
    from tests.helpers import post
    from tests.wechat_client import text_xml
    assert hub.db.checkpointer.running
    async with hub.db.read() as conn:  # the loop thread's connections leave checkpoints to that thread
        assert (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar() == 0
    for i in range(30):
        resp = await post(client, wecom, text_xml("wx5823bf96d3bd56c7", f"wmCkpt{i}", "你好" * 50, 900 + i))
        assert resp.status == 200
    await wait_for(lambda: hub.db.checkpointer.frames > 0, timeout=5)


def test_fixed_states_are_written_into_the_sql():
    sql = str(OPEN_SESSION_Q.compile(dialect=sqlite.dialect()))
    assert "state != 'closed'" in sql
    assert [str(c) for c in fixed("assigned", "active")] == ["'assigned'", "'active'"]
    with pytest.raises(ValueError):
        fixed("closed' OR '1'='1")


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite only: the loop thread's kept-open read connection")
async def test_a_failed_read_leaves_the_shared_read_connection_usable(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/r.db")
    try:
        await db.create_schema()
        with pytest.raises(Exception):
            async with db.read() as conn:
                await conn.exec_driver_sql("SELECT nope FROM nowhere")
        async with db.read() as conn:
            assert (await conn.exec_driver_sql("SELECT 1")).scalar() == 1
        first = db._reader
        async with db.read() as conn:  # the same connection, not one per read
            await conn.exec_driver_sql("SELECT 1")
        assert db._reader is first
    finally:
        await db.dispose()
