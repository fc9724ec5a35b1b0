"""Scheduled timers keyed by name (``call_later``, not a periodic sweep): set, replace, cancel.

The callers rebuild their timers from the database at start, so a restart loses none. With several
hub processes (``claims`` set), every process may arm the same timer (each rebuilds them from the
database); at its time each asks ``claims.claim(key, when)`` and only the one that wins runs the
action, so it happens once, and still happens if the process that armed it first has died. The
claim is a lease until the action has run (``claims.finish``): a process that lost it looks again
when the lease runs out, and takes the firing over if its runner died meanwhile.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Protocol

from ..clock import Clock

log = logging.getLogger(__name__)

# a timer whose action fails (the database failing over, say) is tried again after 5, 10, 20 … s
RETRY_FIRST, RETRY_MAX, RETRIES = 5.0, 300.0, 8


class Claims(Protocol):
    """Firings across processes (hub/scale/claims.py ``TimerClaims``)."""

    async def claim(self, key: str, when: float) -> bool | float:
        """True: run it; False: it ran elsewhere; a time: another process holds it until then."""

    async def finish(self, key: str, when: float) -> None:
        """The firing has run."""


class Timers:
    def __init__(self, clock: Clock, claims: Claims | None = None):
        self.clock = clock
        self.claims = claims  # across processes: only the winner of a firing runs it
        self._handles: dict[str, asyncio.TimerHandle] = {}
        self._due: dict[str, tuple[float, Callable[[], Awaitable[None]]]] = {}
        self._tasks: set[asyncio.Task] = set()
        self.fired = 0
        self._spent: dict[str, float] = {}  # with ``claims``: key -> the time it last fired (or lost the claim)
        self._failures: dict[str, int] = {}  # key -> failed firings in a row (each tried again later)

    def set(self, key: str, when: float, fn: Callable[[], Awaitable[None]]) -> None:
        """Run ``fn`` at epoch time ``when`` (replacing any timer with the same key)."""
        if self.claims is not None and self._spent.get(key) == when:
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
        claimed = False
        try:
            if self.claims is not None:
                self._spent[key] = when
                got = await self.claims.claim(key, when)
                if got is False:
                    return  # another process fired it
                if got is not True:
                    self._look_again(key, fn, when, got)
                    return
                claimed = True
            self.fired += 1
            await fn()
            self._failures.pop(key, None)
            if claimed:
                await self._finish(key, when)
        except Exception:  # noqa: BLE001 - tried again later (the actions read the state they act on)
            if claimed:  # the retry below is a firing of its own; cancelled, the lease runs out instead
                await self._finish(key, when)
            failures = self._failures[key] = self._failures.get(key, 0) + 1
            if key in self._due or failures > RETRIES:  # set again meanwhile, or given up
                log.exception("timer %s failed%s", key, " for good" if failures > RETRIES else "")
                return
            delay = min(RETRY_MAX, RETRY_FIRST * 2 ** (failures - 1))
            log.exception("timer %s failed, trying again in %.0f s", key, delay)
            self.set(key, self.clock.now() + delay, fn)  # a firing of its own (claimed anew)

    def _look_again(self, key: str, fn: Callable[[], Awaitable[None]], when: float, until: float) -> None:
        """Another process holds the firing until ``until``: ask again then (it has run by then, or
        its runner died and this process takes it over), unless the timer was set anew meanwhile."""
        if key in self._due:
            return
        delay = max(0.0, until - self.clock.now()) + 0.05
        self._handles[key] = asyncio.get_running_loop().call_later(delay, self._fire, key, fn, when)
        self._due[key] = (when, fn)

    async def _finish(self, key: str, when: float) -> None:
        try:
            await self.claims.finish(key, when)
        except Exception:  # noqa: BLE001 - the lease runs out and another process may run it again
            log.exception("timer %s: marking its firing done failed", key)

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
