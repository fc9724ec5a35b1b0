"""Stopping background tasks (hub/tasks.py): a stop ends even when a cancel is lost."""
from __future__ import annotations

import asyncio
import logging
import time

from hub.tasks import cancel_and_wait


async def test_a_cancel_lost_to_a_wakeup_in_the_same_instant_is_sent_again():
    """The loops' shape (wait for a wakeup, at most a second): on Python 3.11, ``wait_for`` returns
    the wakeup that raced the cancel and the cancel is gone; the loop goes round again."""
    wakeup = asyncio.Event()
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        while True:
            try:
                await asyncio.wait_for(wakeup.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                pass
            wakeup.clear()
            rounds += 1

    task = asyncio.create_task(loop(), name="wakeup-loop")
    await asyncio.sleep(0.05)
    wakeup.set()  # the wakeup and the stop in one instant
    started = time.monotonic()
    await asyncio.wait_for(cancel_and_wait(task), 5)
    assert task.cancelled()
    assert time.monotonic() - started < 2.5


async def test_a_task_that_will_not_stop_is_logged_and_left(caplog):
    stop = False

    async def stubborn() -> None:
        while not stop:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                pass  # every cancel swallowed

    task = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="hub.tasks"):
        await cancel_and_wait(task, grace=0.5)
    assert 0.4 < time.monotonic() - started < 2.0
    assert not task.done()
    assert "task stubborn did not stop" in caplog.text
    stop = True
    task.cancel()
    await asyncio.wait({task}, timeout=2)
    assert task.done()


async def test_a_task_that_had_failed_is_logged_not_raised(caplog):
    async def broken() -> None:
        raise RuntimeError("disk on fire")

    task = asyncio.create_task(broken(), name="broken")
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, logger="hub.tasks"):
        await cancel_and_wait(task)  # the rest of a shutdown still runs
    assert "task broken had failed" in caplog.text and "disk on fire" in caplog.text
