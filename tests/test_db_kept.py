"""PostgreSQL's short reads and the archive writer's statements on connections kept open between uses
(hub/db_kept.py): reused, never a wait (reads beyond the kept ones, nested ones too, take a pooled
connection), and after the backends were terminated at most one use fails before they reconnect."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from hub.db import KEPT_READERS, Database
from tests.conftest import ON_POSTGRES

pytestmark = pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's read connections (HUB_TEST_DATABASE=postgres)")
PID = text("SELECT pg_backend_pid()")


@pytest.fixture
async def db(db_url):
    d = Database(db_url)
    await d.create_schema()
    yield d
    await d.dispose()


async def pid_of_read(db: Database) -> int:
    async with db.read() as conn:
        return (await conn.execute(PID)).scalar()


async def test_sequential_reads_reuse_one_kept_connection_outside_the_writes_pool(db):
    pids = {await pid_of_read(db) for _ in range(20)}
    assert len(pids) == 1
    assert db.engine.pool.checkedout() == 0  # the writes' pool lends nothing to a kept read
    async with db.write() as conn:
        assert (await conn.execute(PID)).scalar() not in pids


async def test_reads_beyond_the_kept_ones_and_nested_reads_never_wait(db):
    held: list = []
    try:
        for _ in range(KEPT_READERS):  # every kept connection lent at once
            cm = db.read()
            held.append((cm, await cm.__aenter__()))
        pids = {(await conn.execute(PID)).scalar() for _, conn in held}
        assert len(pids) == KEPT_READERS
        # one more read, while all are lent: a pooled connection at once, not a wait
        extra = await asyncio.wait_for(pid_of_read(db), 5)
        assert extra not in pids
    finally:
        for cm, _ in reversed(held):
            await cm.__aexit__(None, None, None)
    assert len({await pid_of_read(db) for _ in range(5)}) == 1  # kept ones lent again


async def test_a_failed_or_cancelled_read_leaves_the_next_reads_working(db):
    with pytest.raises(ZeroDivisionError):
        async with db.read() as conn:
            await conn.execute(PID)
            1 / 0
    task = asyncio.ensure_future(pid_of_read_slow(db))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(3):
        assert await asyncio.wait_for(pid_of_read(db), 5) > 0
    assert db.readers._open <= KEPT_READERS


async def pid_of_read_slow(db: Database) -> int:
    async with db.read() as conn:
        await conn.execute(text("SELECT pg_sleep(5)"))
        return (await conn.execute(PID)).scalar()


async def test_terminated_backends_fail_one_read_then_reads_reconnect(db):
    async def hold_all() -> list[int]:  # KEPT_READERS kept connections opened and idle
        gate = asyncio.Event()

        async def one() -> int:
            async with db.read() as conn:
                pid = (await conn.execute(PID)).scalar()
                await gate.wait()
                return pid
        tasks = [asyncio.ensure_future(one()) for _ in range(KEPT_READERS)]
        await asyncio.sleep(0.3)
        gate.set()
        return await asyncio.gather(*tasks)

    pids = await hold_all()
    assert len(set(pids)) == KEPT_READERS
    async with db.write() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(p) FROM unnest(CAST(:pids AS int[])) p"), {"pids": pids})
    failures = 0
    for _ in range(KEPT_READERS + 2):
        try:
            await pid_of_read(db)
        except Exception:  # noqa: BLE001 - the dead connection's error, whatever the driver calls it
            failures += 1
    assert failures <= 1
    assert await pid_of_read(db) not in pids


async def test_the_archive_writers_statements_reuse_a_kept_durable_connection(db):
    async def durable_pid() -> tuple[int, str]:
        async with db.durable_statements() as conn:
            assert conn.engine is db.durable_engine
            return ((await conn.execute(PID)).scalar(),
                    (await conn.exec_driver_sql("SHOW synchronous_commit")).scalar())

    seen = {await durable_pid() for _ in range(10)}
    assert len(seen) == 1 and next(iter(seen))[1] == "on"
    assert db.durable_engine.pool.checkedout() == 1  # kept (lent to nobody now), not returned per batch
    pid = next(iter(seen))[0]
    async with db.write() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    failures = 0
    for _ in range(3):
        try:
            await durable_pid()
        except Exception:  # noqa: BLE001 - the dead connection's error
            failures += 1
    assert failures <= 1
    assert (await durable_pid())[0] != pid
