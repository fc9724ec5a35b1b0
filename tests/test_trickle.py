"""The trickle: background work one piece at a time with pauses during a burst, at once outside it,
and everything waiting released the moment the burst ends (a pause is never slept out)."""
from __future__ import annotations

import asyncio

from hub.trickle import Trickle


class Piece:
    """Work that records when it ran; takes ``seconds``."""

    def __init__(self, log: list, name: str, seconds: float = 0.0, gate: asyncio.Event | None = None):
        self.log, self.name, self.seconds, self.gate = log, name, seconds, gate

    async def __call__(self) -> str:
        loop = asyncio.get_running_loop()
        self.log.append((self.name, "start", loop.time()))
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(self.seconds)
        self.log.append((self.name, "end", loop.time()))
        return self.name


def when(log: list, name: str, what: str) -> float:
    return next(t for n, w, t in log if n == name and w == what)


async def test_outside_a_burst_work_runs_at_once_and_side_by_side():
    trickle, log = Trickle(lambda: False), []
    gate = asyncio.Event()
    tasks = [asyncio.create_task(trickle.run(Piece(log, n, gate=gate))) for n in "abc"]
    await asyncio.sleep(0.01)
    assert sorted(n for n, w, _ in log if w == "start") == ["a", "b", "c"]  # all running together
    gate.set()
    assert await asyncio.gather(*tasks) == ["a", "b", "c"]


async def test_in_a_burst_pieces_run_one_at_a_time_with_a_pause_after_each():
    trickle, log = Trickle(lambda: True, share=0.5, poll=0.01), []
    results = await asyncio.gather(*(trickle.run(Piece(log, n, 0.05)) for n in "abc"))
    assert results == ["a", "b", "c"]
    for before, after in ("ab", "bc"):  # share 0.5: a pause as long as the piece before it
        gap = when(log, after, "start") - when(log, before, "end")
        assert gap >= 0.045, (before, after, gap)
    assert trickle.waiting == 0


async def test_when_the_burst_ends_everything_waiting_goes_at_once():
    burst = {"on": True}
    trickle, log = Trickle(lambda: burst["on"], share=0.01, poll=0.02), []
    first = asyncio.create_task(trickle.run(Piece(log, "a", 0.05)))  # then a pause of about 5 s
    await asyncio.sleep(0.01)
    gate = asyncio.Event()
    rest = [asyncio.create_task(trickle.run(Piece(log, n, gate=gate))) for n in "bcd"]
    await first
    await asyncio.sleep(0.1)
    assert [n for n, w, _ in log if w == "start"] == ["a"] and trickle.waiting == 3  # paused
    ended = asyncio.get_running_loop().time()
    burst["on"] = False
    await asyncio.sleep(0.1)
    starts = {n: t for n, w, t in log if w == "start" and n != "a"}
    assert sorted(starts) == ["b", "c", "d"]  # together (the gate holds them all open at once)
    assert max(starts.values()) - ended < 0.1  # within the poll, not after the pause
    gate.set()
    assert await asyncio.gather(*rest) == ["b", "c", "d"]


async def test_a_cancelled_waiter_or_granted_turn_does_not_stall_the_others():
    trickle, log = Trickle(lambda: True, share=0.9, poll=0.01), []
    gate = asyncio.Event()
    first = asyncio.create_task(trickle.run(Piece(log, "a", gate=gate)))
    await asyncio.sleep(0)
    doomed = asyncio.create_task(trickle.run(Piece(log, "x")))
    granted = asyncio.create_task(trickle.run(Piece(log, "y")))
    last = asyncio.create_task(trickle.run(Piece(log, "z")))
    await asyncio.sleep(0.01)
    doomed.cancel()  # while waiting
    gate.set()
    await first
    while not trickle._running:  # the turn is handed to y; cancel y before it resumes
        await asyncio.sleep(0)
    granted.cancel()
    assert await asyncio.wait_for(last, 2) == "z"
    assert [n for n, w, _ in log if w == "start"] == ["a", "z"]


class Steps:
    """Work of several steps that gives way between them, as a pipeline job does; each step takes
    ``seconds`` and is logged as (name, "step i", loop time)."""

    def __init__(self, trickle: Trickle, log: list, name: str, steps: int, seconds: float):
        self.trickle, self.log, self.name, self.steps, self.seconds = trickle, log, name, steps, seconds

    async def __call__(self) -> str:
        loop = asyncio.get_running_loop()
        for i in range(self.steps):
            await self.trickle.give_way()
            self.log.append((self.name, f"step {i}", loop.time()))
            await asyncio.sleep(self.seconds)
        self.log.append((self.name, "end", loop.time()))
        return self.name


async def test_work_started_before_a_burst_waits_its_turn_at_its_next_step():
    burst = {"on": False}
    trickle, log = Trickle(lambda: burst["on"], share=0.5, poll=0.01), []
    # started at full speed, side by side
    jobs = [asyncio.create_task(trickle.run(Steps(trickle, log, n, 3, 0.04))) for n in "ab"]
    await asyncio.sleep(0.02)
    assert {n for n, w, _ in log if w == "step 0"} == {"a", "b"}
    burst["on"] = True  # from their next step on, one at a time with a pause after each
    assert await asyncio.gather(*jobs) == ["a", "b"]
    first, second = sorted("ab", key=lambda n: when(log, n, "end"))
    # the second's remaining steps wait until the first (now a piece) has ended and paused
    assert when(log, second, "step 1") >= when(log, first, "end") + 0.03, log
    assert trickle.waiting == 0 and not trickle._running


async def test_giving_way_outside_a_burst_or_outside_a_piece_does_not_wait():
    trickle, log = Trickle(lambda: False), []
    jobs = [asyncio.create_task(trickle.run(Steps(trickle, log, n, 3, 0.02))) for n in "abc"]
    await asyncio.wait_for(asyncio.gather(*jobs), 0.5)  # side by side: about 0.06 s in all
    assert max(t for *_, t in log) - min(t for *_, t in log) < 0.15
    busy = Trickle(lambda: True)
    await asyncio.wait_for(busy.give_way(), 0.1)  # not inside a piece of this trickle: nothing to wait for
    assert not busy._running


async def test_a_piece_that_began_waiting_at_a_step_runs_on_when_the_burst_ends():
    burst = {"on": False}
    trickle, log = Trickle(lambda: burst["on"], share=0.01, poll=0.02), []
    a = asyncio.create_task(trickle.run(Steps(trickle, log, "a", 2, 0.05)))
    b = asyncio.create_task(trickle.run(Steps(trickle, log, "b", 2, 0.05)))
    await asyncio.sleep(0.01)
    burst["on"] = True
    done, _ = await asyncio.wait([a, b], timeout=0.5, return_when=asyncio.FIRST_COMPLETED)
    assert len(done) == 1  # one ran on as the piece; the other waits out a pause of ~5 s
    burst["on"] = False
    assert len(await asyncio.wait_for(asyncio.gather(a, b), 0.5)) == 2  # released within the poll
