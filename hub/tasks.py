"""Background tasks: their end, and the periodic ones."""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

log = logging.getLogger(__name__)


async def cancel_and_wait(task: asyncio.Task, grace: float = 10.0) -> None:
    """Cancel a background task and wait until it has stopped (its CancelledError is the expected end).

    A cancel can be lost: 3.11's ``wait_for`` returns a result that raced it, and a loop that catches
    the timeout a cancel turned into goes round again. So the task is cancelled again every second;
    one that has not stopped after ``grace`` seconds is logged and left (a stop never hangs on it).
    Its own failure is logged, not raised: the rest of the shutdown still runs."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=min(1.0, max(0.0, deadline - loop.time())))
        if not task.done() and loop.time() >= deadline:
            log.error("task %s did not stop within %.0f s of being cancelled", task.get_name(), grace)
            return
    if not task.cancelled() and task.exception() is not None:
        log.error("task %s had failed", task.get_name(), exc_info=task.exception())


async def repeat(every: Callable[[], float], work: Callable[[], Awaitable[object]], what: str) -> None:
    """Run ``work`` every ``every()`` seconds until cancelled; a failure is logged and the next round
    tries again (``every`` is read each round: tests shorten it)."""
    while True:
        await asyncio.sleep(every())
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001
            log.exception("%s failed", what)
