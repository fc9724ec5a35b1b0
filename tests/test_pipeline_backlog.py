"""The pipeline with a backlog larger than one read of the job queue: every job runs, in order per
conversation, also when the head is read again mid-way (after a failure, or the periodic re-read)."""
from __future__ import annotations

import asyncio

from tests.helpers import pending_jobs, post
from tests.wechat_client import text_xml


async def test_a_backlog_beyond_one_read_all_runs_after_the_head_is_read_again(client, hub, wecom):
    await hub.pipeline.stop()  # jobs pile up while nothing runs them
    senders = 150
    for i in range(2 * senders):  # two messages per customer: order within a conversation matters
        r = await post(client, wecom, text_xml(wecom.receive_id, f"wmBacklog{i % senders:04d}", f"第{i}条", 8_100_000 + i))
        assert r.status == 200
    jobs = await pending_jobs(hub)
    assert len(jobs) == 2 * senders

    pipe = hub.pipeline
    limit = 40  # a read of the head holds far fewer jobs than the backlog

    async def settle() -> None:  # what the passes started has run
        while pipe._running:
            await asyncio.gather(*list(pipe._running), return_exceptions=True)
        await pipe._flush_finished()

    await pipe.run_once(limit)  # the first pass reads the head
    await settle()
    await pipe.run_once(limit)  # later passes read only new ids, beyond the head
    await settle()
    pipe._resync = True  # e.g. a job failed: the next pass reads the head again
    for _ in range(100):
        if not await pending_jobs(hub):
            break
        await pipe.run_once(limit)
        await settle()
    assert await pending_jobs(hub) == []
    assert pipe.done == 2 * senders
