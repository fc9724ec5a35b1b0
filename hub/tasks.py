"""Background tasks' end."""
from __future__ import annotations

import asyncio


async def cancel_and_wait(task: asyncio.Task) -> None:
    """Cancel a background task and wait until it has stopped (its CancelledError is the expected end)."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
