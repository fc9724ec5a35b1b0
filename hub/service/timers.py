"""Scheduled timers keyed by name (``call_later``, not a periodic sweep): set, replace, cancel.

The callers rebuild their timers from the database at start, so a restart loses none. With several
hub processes (``claim`` set), every process may arm the same timer (each rebuilds them from the
database); at its time each asks ``claim(key, when)`` and only the one that wins runs the action,
so it happens once, and still happens if the process that armed it first has died.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

Claim = Callable[[str, float], Awaitable[bool]]

from ..clock import Clock

log = logging.getLogger(__name__)

# a timer whose action fails (the database failing over, say) is tried again after 5, 10, 20 … s
RETRY_FIRST, RETRY_MAX, RETRIES = 5.0, 300.0, 8


class Timers:
    def __init__(self, clock: Clock, claim: Claim | None = None):
        self.clock = clock
        self.claim = claim  # across processes: only the winner of a firing runs it
        self._handles: dict[str, asyncio.TimerHandle] = {}
        self._due: dict[str, tuple[float, Callable[[], Awaitable[None]]]] = {}
        self._tasks: set[asyncio.Task] = set()
        self.fired = 0
        self._spent: dict[str, float] = {}  # with ``claim``: key -> the time it last fired (or lost the claim)
        self._failures: dict[str, int] = {}  # key -> failed firings in a row (each tried again later)

    def set(self, key: str, when: float, fn: Callable[[], Awaitable[None]]) -> None:
        """Run ``fn`` at epoch time ``when`` (replacing any timer with the same key)."""
        if self.claim is not None and self._spent.get(key) == when:
            return  # this firing already happened (here or in another process): re-arming is a no-op
        self.cancel(key)
        delay = max(0.0, when - self.clock.now())
        loop = asyncio.get_running_loop()
        self._handles[key] = loop.call_later(delay, self._fire, key, fn, when)
        self._due[key] = (when, fn)

    def cancel(self, key: str) -> None:
        self._spent.pop(key, None)
        handle = self._handles.pop(key, None)
        self._due.pop(key, None)
        if handle is not None:
            handle.cancel()

    def pending(self, prefix: str = "") -> list[str]:
        return [k for k in self._handles if k.startswith(prefix)]

    def when(self, key: str) -> float | None:
        entry = self._due.get(key)
        return entry[0] if entry else None

    def _fire(self, key: str, fn: Callable[[], Awaitable[None]], when: float = 0.0) -> None:
        self._handles.pop(key, None)
        self._due.pop(key, None)
        task = asyncio.ensure_future(self._run(key, fn, when))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, key: str, fn: Callable[[], Awaitable[None]], when: float = 0.0) -> None:
        try:
            if self.claim is not None:
                self._spent[key] = when
                if not await self.claim(key, when):
                    return  # another process fired it
            self.fired += 1
            await fn()
            self._failures.pop(key, None)
        except Exception:  # noqa: BLE001 - tried again later (the actions read the state they act on)
            failures = self._failures[key] = self._failures.get(key, 0) + 1
            if key in self._due or failures > RETRIES:  # set again meanwhile, or given up
                log.exception("timer %s failed%s", key, " for good" if failures > RETRIES else "")
                return
            delay = min(RETRY_MAX, RETRY_FIRST * 2 ** (failures - 1))
            log.exception("timer %s failed, trying again in %.0f s", key, delay)
            self.set(key, self.clock.now() + delay, fn)

    async def fire_due(self) -> int:
        """Run, now, every timer whose time has come by the clock (tests move a fake clock)."""
        now = self.clock.now()
        due = [(k, fn, when) for k, (when, fn) in list(self._due.items()) if when <= now]
        for key, fn, when in due:
            self.cancel(key)
            await self._run(key, fn, when)
        return len(due)

    async def stop(self) -> None:
        for key in list(self._handles):
            self.cancel(key)
        for task in list(self._tasks):
            task.cancel()
