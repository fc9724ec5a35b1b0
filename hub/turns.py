"""Turns on the event loop for work that runs in its thread (SQLite statements).

On SQLite every statement runs in the loop's thread, so background work (the pipeline's bots and
routing, outbound bookkeeping, the search indexer) holds the loop for as long as it runs: a
new-session job is about 10 ms of statements with no real await in between. With 32 of them
ready, one loop iteration ran them all, 300 ms during which no callback was acknowledged and no
event reached an agent. ``Turns`` bounds that: the tasks share a turn of ``slice_s`` per loop
iteration. A task that finds the turn spent waits; the next turn starts on the loop's next
iteration (after it has polled its sockets) and wakes every waiter, in the order they came, each
going on only while the new turn lasts. Called at transaction boundaries only, never by a task
inside a write transaction (hub/db.py), so nothing is held while waiting.
"""
from __future__ import annotations

import asyncio
import time


class Turns:
    def __init__(self, slice_s: float = 0.003):
        self.slice_s = slice_s
        self._started = 0.0  # perf_counter() when the current turn began
        self._waiters: list[asyncio.Future[None]] = []
        self._scheduled = False
        self.waited = 0  # times a task waited for a turn (observability, tests)

    async def take(self) -> None:
        """Return at once while the current turn lasts; otherwise wait for one that does."""
        while time.perf_counter() - self._started > self.slice_s:
            loop = asyncio.get_running_loop()
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append(fut)
            if not self._scheduled:
                self._scheduled = True
                loop.call_soon(self._next)
            self.waited += 1
            await fut  # cancelled: the future goes with it, no turn is lost

    def _next(self) -> None:
        """A new turn (once per loop iteration while tasks wait): wake them all, first come first."""
        self._scheduled = False
        waiters, self._waiters = self._waiters, []
        self._started = time.perf_counter()
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
