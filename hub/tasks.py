"""Background tasks: their end, and the periodic ones."""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

log = logging.getLogger(__name__)


async def cancel_and_wait(task: asyncio.Task) -> None:
    """Cancel a background task and wait until it has stopped (its CancelledError is the expected end)."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


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
