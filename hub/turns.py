"""Turns on the event loop for work that runs in its thread (SQLite statements).

On SQLite every statement runs in the loop's thread, so background work (the pipeline's bots and
routing, outbound bookkeeping, the search indexer) holds the loop for as long as it runs. With
many such tasks ready at once, one loop iteration ran them all, one after the other, and a callback
waiting to be acknowledged (or a push to an agent) waited 30-50 ms behind them. ``Turns`` hands
the loop to that work a turn at a time: a task that finds the current turn older than
``slice_s`` waits for the next one, and a new turn starts once per loop iteration, so between two
turns the loop always gets to its sockets. Called at transaction boundaries only (nothing held).
"""
from __future__ import annotations

import asyncio
import time
from collections import deque


class Turns:
    def __init__(self, slice_s: float = 0.001):
        self.slice_s = slice_s
        self._started = 0.0  # perf_counter() when the current turn began
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.waited = 0  # turns waited for (observability, tests)

    async def take(self) -> None:
        """Return at once within the current turn; otherwise wait for a turn of one's own."""
        if not self._waiters and time.perf_counter() - self._started <= self.slice_s:
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._waiters.append(fut)
        if len(self._waiters) == 1:
            loop.call_soon(self._next)
        self.waited += 1
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._started = 0.0  # handed over as we were cancelled: let the next one go
            elif fut in self._waiters:
                self._waiters.remove(fut)
            raise

    def _next(self) -> None:
        """Start the next turn (one per loop iteration while tasks wait)."""
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                self._started = time.perf_counter()
                fut.set_result(None)
                break
        if self._waiters:
            asyncio.get_running_loop().call_soon(self._next)
