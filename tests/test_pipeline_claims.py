"""Several processes (PostgreSQL) share one job queue: two pipelines on the same database stand in
for two hub processes. Each conversation's jobs run once, in id order, and never in two processes at
once; a job waiting for its retry holds back the later jobs of its conversation in every process;
the jobs of a process that died are taken over once their lease runs out."""
from __future__ import annotations

import asyncio
import logging

import pytest

from hub.archive.store import Saved
from hub.clock import Clock
from hub.pipeline import JobContext, Pipeline
from hub.scale.job_shard import Shard, ShardLock
from tests.helpers import pending_jobs, post, wait_for
from tests.wechat_client import text_xml


@pytest.fixture
async def shared(hub):
    if hub.db.dialect != "postgresql":
        pytest.skip("several processes run on PostgreSQL")
    await hub.pipeline.stop()  # the test's own pipelines run the jobs
    return hub


async def queue(client, wecom, customers: int, per_customer: int, base: int) -> None:
    for i in range(customers * per_customer):
        r = await post(client, wecom, text_xml(wecom.receive_id, f"wmClaim{i % customers:03d}", f"第{i}条", base + i))
        assert r.status == 200


def process(hub, log: list, name: str, fail_first: set[str] | None = None, step_s: float = 0.005) -> Pipeline:
    """A pipeline with one step that records what it ran (and sleeps ``step_s``, so runs overlap)."""
    pipe = Pipeline(hub.db, Clock(), concurrency=4)
    failed: set[str] = set()

    async def step(ctx: JobContext) -> None:
        msg = ctx.message
        log.append(("start", name, msg.conversation_id, msg.id))
        await asyncio.sleep(step_s)
        if fail_first is not None and msg.text in fail_first and msg.text not in failed:
            failed.add(msg.text)
            raise RuntimeError("platform down")
        log.append(("end", name, msg.conversation_id, msg.id))

    pipe.add_inbound_step(step)
    return pipe


async def test_two_processes_run_each_conversation_once_in_order_never_at_once(client, shared, wecom):
    hub = shared
    await queue(client, wecom, customers=12, per_customer=5, base=8_400_000)
    log: list = []
    # jobs long enough that one process cannot finish them all before the other's first pass has
    # run, even on a loaded machine (at 5 ms a job, CI once saw "a" take all 60)
    a, b = process(hub, log, "a", step_s=0.02), process(hub, log, "b", step_s=0.02)
    a.start(), b.start()  # each process's own loop, as in the hub
    try:
        for _ in range(300):
            if not await pending_jobs(hub):
                break
            await asyncio.sleep(0.05)
    finally:
        await asyncio.gather(a.stop(), b.stop())
    assert await pending_jobs(hub) == []

    ends = [e for e in log if e[0] == "end"]
    assert len(ends) == 60 and len({e[3] for e in ends}) == 60  # every job once
    assert {e[1] for e in ends} == {"a", "b"}  # both processes took work (they skip each other's locks)
    by_conv: dict[int, list[int]] = {}
    running: dict[int, str] = {}  # conversation -> process running one of its jobs now
    for kind, name, conv, mid in log:
        if kind == "start":
            assert running.get(conv) in (None, name), f"conversation {conv} ran in two processes at once"
            running[conv] = name
            by_conv.setdefault(conv, []).append(mid)
        else:
            running.pop(conv)
    for conv, mids in by_conv.items():
        assert mids == sorted(mids), f"conversation {conv} out of order: {mids}"


async def test_a_retry_waiting_holds_back_its_conversation_in_every_process(client, shared, wecom):
    hub = shared
    await queue(client, wecom, customers=1, per_customer=3, base=8_500_000)
    log: list = []
    a = process(hub, log, "a", fail_first={"第0条"})
    b = process(hub, log, "b")
    await a.drain(timeout=5)  # the first job fails: retry in 2 s; the two behind it wait
    assert [e[0] for e in log] == ["start"]
    assert len(await pending_jobs(hub)) == 3
    await b.drain(timeout=1)  # the other process must not run the later ones ahead of it
    assert len(log) == 1
    # once the retry is due, either process runs all three, in order
    await asyncio.sleep(2.1)
    await b.drain(timeout=10)
    await b._flush_finished()
    assert [e[0] for e in log[1:]] == ["start", "end"] * 3
    mids = [e[3] for e in log if e[0] == "end"]
    assert mids == sorted(mids) and len(mids) == 3
    assert await pending_jobs(hub) == []


async def test_a_dead_process_jobs_are_taken_over_when_its_lease_runs_out(client, shared, wecom):
    hub = shared
    await queue(client, wecom, customers=2, per_customer=2, base=8_600_000)
    log: list = []
    dead = process(hub, log, "dead")
    dead.lease = 0.5

    async def never(ctx: JobContext) -> None:  # the process dies while it runs them
        await asyncio.Event().wait()

    dead.inbound_steps[:] = [never]
    assert await dead.run_once() == 4  # both conversations claimed
    alive = process(hub, log, "alive")
    assert await alive.run_once() == 0  # live claims: nothing for the other process
    await asyncio.sleep(0.6)
    await alive.drain(timeout=10)
    await alive._flush_finished()
    ran = [e for e in log if e[0] == "end"]
    assert len(ran) == 4 and {e[1] for e in ran} == {"alive"} and len({e[3] for e in ran}) == 4
    for conv in {e[2] for e in ran}:
        mids = [e[3] for e in ran if e[2] == conv]
        assert mids == sorted(mids)
    assert await pending_jobs(hub) == []
    for task in list(dead._running):
        task.cancel()
    await asyncio.gather(*dead._running, return_exceptions=True)


async def test_a_message_for_a_conversation_running_elsewhere_waits_for_that_process(client, shared, wecom):
    """A new message of a conversation whose earlier jobs another process is running: the pending
    job is at the head of the queue, but only that process's claim may run the conversation."""
    hub = shared
    await queue(client, wecom, customers=1, per_customer=1, base=8_700_000)
    log: list = []
    release = asyncio.Event()
    a = process(hub, log, "a")

    async def slow(ctx: JobContext) -> None:
        log.append(("start", "a", ctx.message.conversation_id, ctx.message.id))
        await release.wait()
        log.append(("end", "a", ctx.message.conversation_id, ctx.message.id))

    a.inbound_steps[:] = [slow]
    assert await a.run_once() == 1
    await queue(client, wecom, customers=1, per_customer=1, base=8_700_100)  # the same customer again
    b = process(hub, log, "b")
    assert await b.run_once() == 0  # the conversation is a's until its job is done
    release.set()
    await a.drain(timeout=5)
    await a._flush_finished()
    await b.drain(timeout=5)
    await b._flush_finished()
    assert [e[0] for e in log] == ["start", "end", "start", "end"]  # one after the other
    assert log[0][3] == log[1][3] < log[2][3] == log[3][3]
    assert await pending_jobs(hub) == []


# -- shards (hub/scale/job_shard.py): a conversation's jobs go to one process while it lives ---------

async def sharded(hub, log: list, name: str, index: int, count: int = 2) -> Pipeline:  # noqa: ANN001
    pipe = process(hub, log, name)
    pipe.shard_lock = ShardLock(hub.db, Shard(index, count))
    pipe.shard_from = 0  # prefer its shard even when idle (the hub: from a quarter of its slots busy)
    await pipe.shard_lock.start()
    return pipe


async def test_each_process_runs_its_own_shard_while_the_other_lives(client, shared, wecom):
    hub = shared
    await queue(client, wecom, customers=12, per_customer=3, base=8_800_000)
    log: list = []
    a, b = await sharded(hub, log, "a", 0), await sharded(hub, log, "b", 1)
    try:
        assert a.shard_lock.held and b.shard_lock.held
        await a.drain(timeout=10)  # a alone first: b's conversations wait for b, alive
        await a._flush_finished()
        ran_a = {e[2] for e in log if e[0] == "end"}
        assert ran_a and all(conv % 2 == 0 for conv in ran_a)
        waiting = {j.conversation_id for j in await pending_jobs(hub)}
        assert waiting and all(conv % 2 == 1 for conv in waiting)
        await b.drain(timeout=10)
        await b._flush_finished()
        assert await pending_jobs(hub) == []
        ends = [e for e in log if e[0] == "end"]
        assert len(ends) == 36 and all(e[2] % 2 == (0 if e[1] == "a" else 1) for e in ends)
    finally:
        await asyncio.gather(a.shard_lock.stop(), b.shard_lock.stop())


async def test_a_dead_shards_conversations_go_on_in_the_others_at_once(client, shared, wecom):
    hub = shared
    await queue(client, wecom, customers=8, per_customer=2, base=8_900_000)
    log: list = []
    a, b = await sharded(hub, log, "a", 0), await sharded(hub, log, "b", 1)
    try:
        await b.drain(timeout=10)
        await b._flush_finished()
        await b.shard_lock.stop()  # b dies: its session, and the lock with it, end
        await queue(client, wecom, customers=8, per_customer=1, base=8_900_100)
        await a.drain(timeout=10)  # no lease to wait for: nobody holds shard 1
        await a._flush_finished()
        assert await pending_jobs(hub) == []
        assert {e[2] % 2 for e in log if e[0] == "end" and e[1] == "a"} == {0, 1}
    finally:
        await asyncio.gather(a.shard_lock.stop(), b.shard_lock.stop())


async def test_a_shard_held_elsewhere_means_no_preference(client, shared, wecom, caplog):
    hub = shared
    first, twin = ShardLock(hub.db, Shard(1, 2)), ShardLock(hub.db, Shard(1, 2))
    await first.start()
    with caplog.at_level(logging.WARNING, logger="hub.pipeline"):
        await twin.start()
        await twin._take()  # the keep-alive's next try: still held elsewhere
    try:
        assert first.held and not twin.held
        assert twin.params()["shard_count"] == 1  # claims everything, as without a shard
        assert sum("held by another process" in r.getMessage() for r in caplog.records) == 1  # warned once
        await first.stop()
        await twin._take()
        assert twin.held
    finally:
        await asyncio.gather(first.stop(), twin.stop())


def test_shard_values():
    assert Shard.parse("") is None and Shard.parse("1/3") == Shard(1, 3)
    for bad in ("3/3", "x", "1/0", "-1/2", "1/2/3"):
        with pytest.raises(ValueError):
            Shard.parse(bad)


async def test_a_commit_wakes_the_process_of_its_jobs_shard(client, shared, wecom):
    """A message of shard 1's conversation arrives at shard 0's process: its commit wakes shard 1's
    process at once (LISTEN/NOTIFY), not at its next own commit or its once-a-second pass."""
    hub = shared
    log: list = []
    a, b = await sharded(hub, log, "a", 0), await sharded(hub, log, "b", 1)
    b.shard_lock.on_wake = b.notify
    b.start()
    try:
        await asyncio.sleep(0.3)  # b's first pass found nothing: it now waits for a wake-up (or 1 s)
        await queue(client, wecom, customers=6, per_customer=1, base=9_000_000)
        jobs = await pending_jobs(hub)
        assert {j.conversation_id % 2 for j in jobs} == {0, 1}
        started = asyncio.get_running_loop().time()
        a.shard_lock.committed([Saved(j.message_id, j.conversation_id) for j in jobs])  # a's writer hook
        await wait_for(lambda: {e[2] % 2 for e in log if e[0] == "end"} == {1}
                       and len([e for e in log if e[0] == "end"]) == len([j for j in jobs if j.conversation_id % 2]),
                       timeout=3)
        assert asyncio.get_running_loop().time() - started < 0.6
        await b._flush_finished()
        assert {j.conversation_id % 2 for j in await pending_jobs(hub)} == {0}  # a's own wait for a
    finally:
        await b.stop()
        await asyncio.gather(a.shard_lock.stop(), b.shard_lock.stop())


async def test_an_idle_process_takes_any_shards_jobs_at_once(client, shared, wecom):
    """Below ``shard_from`` conversations in flight there is no preference: at light load the
    process that was woken runs the job, with no wake-up hop to the owner."""
    hub = shared
    await queue(client, wecom, customers=6, per_customer=1, base=9_100_000)
    log: list = []
    a, b = await sharded(hub, log, "a", 0), await sharded(hub, log, "b", 1)
    a.shard_from = 1  # idle (nothing in flight): no preference
    try:
        await a.drain(timeout=10)
        await a._flush_finished()
        assert await pending_jobs(hub) == []
        assert {e[2] % 2 for e in log if e[0] == "end"} == {0, 1} and {e[1] for e in log} == {"a"}
    finally:
        await asyncio.gather(a.shard_lock.stop(), b.shard_lock.stop())
