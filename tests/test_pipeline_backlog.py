"""The pipeline with a backlog larger than one read of the job queue: every job runs, in order per
conversation, also when the head is read again mid-way (after a failure, or the periodic re-read)."""
from __future__ import annotations

import asyncio

import pytest

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


async def _six_waiting_in_postgres(client, hub, wecom, sender: str, first_id: int) -> None:
    """Several processes (PostgreSQL only): six jobs of three customers wait, the pipeline stopped."""
    if hub.db.dialect != "postgresql":
        pytest.skip("several processes run on PostgreSQL")
    await hub.pipeline.stop()
    for i in range(6):
        r = await post(client, wecom, text_xml(wecom.receive_id, f"{sender}{i % 3}", f"第{i}条", first_id + i))
        assert r.status == 200


async def test_several_processes_backlog_is_the_queue_not_what_this_process_wrote(client, hub, wecom):
    """With several processes another one may run the jobs this process's writer wrote: the backlog
    (which makes callbacks go first under a burst) must then follow the queue in the database,
    not stay at written-minus-done for ever (it kept a worker trickling after a flood)."""
    from hub.clock import Clock
    from hub.pipeline import Pipeline
    await _six_waiting_in_postgres(client, hub, wecom, "wmOther", 8_300_000)
    mine = hub.pipeline
    await mine.run_once(limit=1)  # a pass that sees a long queue (a full head): it counts it
    assert mine.backlog(hub.writer) == 5  # the six waiting but the one this pass claimed
    while mine._running:
        await asyncio.gather(*list(mine._running), return_exceptions=True)
    await mine._flush_finished()
    other = Pipeline(hub.db, Clock())  # another process: it runs the rest
    for _ in range(50):
        if not await pending_jobs(hub):
            break
        await other.run_once()
        while other._running:
            await asyncio.gather(*list(other._running), return_exceptions=True)
        await other._flush_finished()
    assert await pending_jobs(hub) == []
    assert hub.writer.jobs_written - mine.done >= 4  # what this process alone would believe
    await mine.run_once()
    assert mine.backlog(hub.writer) == 0


async def test_several_processes_count_a_long_queue_only_as_far_as_it_matters(client, hub, wecom):
    """A full head means a long queue: it is counted, but only up to ``backlog_count_cap`` (the backlog
    only decides whether callbacks go first; counting a flood's whole queue every second was most of
    what PostgreSQL read for the pipeline in bench/scale.py)."""
    await _six_waiting_in_postgres(client, hub, wecom, "wmCap", 8_400_000)
    pipe = hub.pipeline
    pipe.backlog_count_cap = 3
    await pipe.run_once(limit=1)  # a full head: counted, up to the cap
    assert pipe.backlog(hub.writer) == 3
    pipe._counted_at = 0.0
    pipe.backlog_count_cap = 10
    await pipe.run_once(limit=1)  # counted again (a second later): 4 still waiting, below the cap
    assert pipe.backlog(hub.writer) == 4


async def test_under_pressure_jobs_yield_only_while_the_loop_has_no_time_to_spare(hub):
    """A burst makes the pipeline leave the loop to callbacks, but only while the loop's thread is
    saturated: with CPU to spare (steady traffic after a burst) the jobs take it, or the backlog
    the burst left would drain at a fraction of the speed the machine allows (with several
    processes it grew for as long as customers wrote)."""
    import time
    pipe = hub.pipeline
    pipe.pressure = lambda: True
    pipe.saturated_share = 0.5  # far from both cases below, on a busy test machine too
    pipe.machine_share = 2.0  # never: the test machine's other work must not decide this test

    def window_passes(busy: bool) -> None:
        end = time.perf_counter() + 0.15
        while time.perf_counter() < end:
            if not busy:
                time.sleep(0.01)

    pipe._yielding()  # starts a window
    window_passes(busy=True)
    assert pipe._yielding() is True
    window_passes(busy=False)
    assert pipe._yielding() is False  # one process or several: CPU to spare, the jobs take it
    # several processes (PostgreSQL): the jobs' cost is the database's, which this thread does not
    # show: a busy machine counts, and so do slow saves
    pipe.machine_share = 0.0
    window_passes(busy=False)
    assert pipe._yielding() is pipe.shared
    pipe.machine_share = 2.0
    pipe.acks_slow = lambda: True
    window_passes(busy=False)
    assert pipe._yielding() is pipe.shared
    window_passes(busy=True)
    assert pipe._yielding() is True
    pipe.pressure = lambda: False
    assert pipe._yielding() is False  # no pressure: never


async def test_a_flood_of_callbacks_makes_jobs_yield_though_the_loop_has_time_to_spare(hub):
    """Acknowledgements that wait on the commit's fsync leave the loop idle between batches, so a
    flood never reads as a saturated thread: the rate of saves decides then (bench/callbacks.py)."""
    pipe = hub.pipeline
    pipe.pressure = lambda: True
    pipe.saturated_share = 2.0  # never: only the rate decides here
    pipe.machine_share = 2.0
    pipe.acks_slow = lambda: False
    rate = [0.0]
    pipe.ack_rate = lambda: rate[0]
    pipe.flood_share = 0.0  # the thread is busy enough
    rate[0] = pipe.flood_rate - 1
    assert pipe._yielding() is False  # steady traffic: the jobs run at full speed
    rate[0] = pipe.flood_rate
    assert pipe._yielding() is True
    pipe.flood_share = 2.0  # a machine to which that rate is light work: the jobs keep up
    assert pipe._yielding() is False
    pipe.flood_share = 0.0
    pipe.pressure = lambda: False
    assert pipe._yielding() is False  # no backlog worth yielding for: never


def test_save_rate_counts_the_callbacks_saved_over_the_last_window():
    from hub.callbacks.common import RATE_WINDOW, CallbackDeps
    from hub.clock import Clock
    deps = CallbackDeps(None, None, Clock(), 300, 1 << 20)  # type: ignore[arg-type]
    t = 1000.0
    deps.save_rate(t)  # starts a window
    deps.saved += 500
    assert deps.save_rate(t + RATE_WINDOW / 2) == 0.0  # the window is not over yet
    rate = deps.save_rate(t + RATE_WINDOW * 1.25)
    assert rate == 500 / (RATE_WINDOW * 1.25)
    assert deps.save_rate(t + RATE_WINDOW * 1.5) == rate  # within the next window: the last full one's figure
    assert deps.save_rate(t + RATE_WINDOW * 2.5) == 0.0  # nothing saved in the last window
    deps.saved += 10
    assert deps.save_rate(t + RATE_WINDOW * 10) == 0.0  # a window long past tells nothing about now


async def test_the_pipeline_reads_the_rate_of_the_callbacks_the_app_acknowledged(client, hub, wecom):
    """The app wires the callbacks' save count to the pipeline: what it acknowledges is what counts
    (a refused callback does not)."""
    rate = hub.pipeline.ack_rate
    assert rate is not None
    deps = rate.__self__
    before = deps.saved
    for i in range(5):
        r = await post(client, wecom, text_xml(wecom.receive_id, "wmRate0001", f"第{i}条", 8_200_000 + i))
        assert r.status == 200
    r = await client.post(f"/callbacks/wecom/{wecom.account_id}?msg_signature=bad&timestamp=1&nonce=n", data=b"<xml/>")
    assert r.status in (400, 401)
    assert deps.saved == before + 5
