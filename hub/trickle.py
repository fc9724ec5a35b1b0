"""Background work that gives way to acknowledging callbacks during a burst.

While ``yielding()`` says the hub is in a burst, pieces of background work (a pipeline job, an
automatic send) run one at a time, each followed by a pause of (1 - share) / share times what it
took, so that together they take about ``share`` of the loop. Outside a burst they run at once,
and the moment a burst ends everything still waiting goes at once too: a pause is never slept out
(one such pause held every job of a worker for seconds at 100 callbacks/s). Work that started at
full speed and is still running when a burst begins takes its turn at its next step (``give_way``).

One timer, not one per waiter, notices the end of a burst (every ``poll`` seconds while anything
waits), so a long queue of waiting work costs nothing while it waits.
"""
from __future__ import annotations

import asyncio
import contextvars
import time
from collections import deque
from typing import Awaitable, Callable, TypeVar

T = TypeVar("T")


class _Piece:
    """The piece of work the running task is doing for a ``Trickle``; ``started``: perf_counter()
    when it took its turn, None while it runs at full speed (outside a burst)."""

    __slots__ = ("trickle", "started")

    def __init__(self, trickle: "Trickle"):
        self.trickle = trickle
        self.started: float | None = None


_PIECE: contextvars.ContextVar[_Piece | None] = contextvars.ContextVar("hub_trickle_piece", default=None)


class Trickle:
    def __init__(self, yielding: Callable[[], bool], share: float = 0.1, poll: float = 0.05):
        self.yielding = yielding
        self.share = share
        self.poll = poll
        self._waiters: deque[asyncio.Future[bool]] = deque()  # result: True runs as the next piece
        self._running = False  # a piece is running
        self._next = 0.0  # loop time the next piece may start
        self._timer: asyncio.TimerHandle | None = None

    async def run(self, work: Callable[[], Awaitable[T]]) -> T:
        piece = _Piece(self)
        token = _PIECE.set(piece)
        try:
            if self.yielding():
                piece.started = await self._turn()
            return await work()
        finally:
            _PIECE.reset(token)
            if piece.started is not None:
                self._piece_done(time.perf_counter() - piece.started)

    async def give_way(self) -> None:
        """Called by a piece of work between its steps (holding no lock): work that started at full
        speed and finds a burst begun from here on runs as a piece, waiting its turn like the rest.
        Without it, the 32 jobs in flight when a burst began ran on at full speed, each ~10 ms of
        statements, and held the callbacks to two thirds of their rate for the burst's first seconds."""
        if self.would_wait():
            _PIECE.get().started = await self._turn()

    def would_wait(self) -> bool:
        """``give_way()`` would wait now: the running task's piece of this trickle started at full
        speed and a burst has begun."""
        piece = _PIECE.get()
        return piece is not None and piece.trickle is self and piece.started is None and self.yielding()

    async def _turn(self) -> float | None:
        """Wait for this piece's turn: the time it started as a piece, or None when the burst ended
        while it waited (it then runs at once, as a piece of no one's share)."""
        loop = asyncio.get_running_loop()
        if self._running or self._waiters or loop.time() < self._next:
            turn: asyncio.Future[bool] = loop.create_future()
            self._waiters.append(turn)
            self._schedule()
            try:
                as_piece = await turn
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled() and turn.result():
                    self._piece_done(0.0)  # granted the turn, then cancelled: pass it on
                elif turn in self._waiters:
                    self._waiters.remove(turn)
                raise
            if not as_piece:  # the burst is over
                return None
        else:
            self._running = True
        return time.perf_counter()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def _piece_done(self, spent: float) -> None:
        self._running = False
        self._next = asyncio.get_running_loop().time() + max(0.002, spent * (1 - self.share) / self.share)
        self._schedule()

    def _schedule(self) -> None:
        """After any change: release everyone when the burst is over, hand out the next turn when
        due, and otherwise look again at the next due time (or in ``poll`` seconds)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._waiters and self._waiters[0].done():  # cancelled waiters
            self._waiters.popleft()
        if not self._waiters:
            return
        loop = asyncio.get_running_loop()
        if not self.yielding():
            while self._waiters:
                turn = self._waiters.popleft()
                if not turn.done():
                    turn.set_result(False)
            return
        now = loop.time()
        if not self._running and now >= self._next:
            self._running = True
            self._waiters.popleft().set_result(True)
            if not self._waiters:
                return
            wait = self.poll
        else:
            wait = self.poll if self._running else min(self.poll, self._next - now)
        self._timer = loop.call_later(wait, self._schedule)
