"""The keyed timer store: a timer whose action fails is tried again later, not dropped."""
from __future__ import annotations

from hub.clock import FakeClock
from hub.service.timers import RETRY_FIRST, Timers


async def test_a_timer_whose_action_fails_is_tried_again():
    clock = FakeClock(1_000.0)
    timers = Timers(clock)
    calls: list[float] = []

    async def flaky() -> None:
        calls.append(clock.now())
        if len(calls) < 3:
            raise ConnectionError("database failing over")

    timers.set("accept:1", 1_010.0, flaky)
    clock.advance(10)
    await timers.fire_due()
    assert calls == [1_010.0] and timers.when("accept:1") == 1_010.0 + RETRY_FIRST
    clock.advance(RETRY_FIRST)
    await timers.fire_due()
    assert timers.when("accept:1") == clock.now() + 2 * RETRY_FIRST
    clock.advance(2 * RETRY_FIRST)
    await timers.fire_due()
    assert len(calls) == 3 and timers.when("accept:1") is None  # done: nothing left armed
    # a timer set again by its owner meanwhile is not doubled by the retry
    async def fails_after_rearming() -> None:
        timers.set("accept:2", clock.now() + 100, flaky)
        raise ConnectionError("x")

    timers.set("accept:2", clock.now(), fails_after_rearming)
    await timers.fire_due()
    assert timers.when("accept:2") == clock.now() + 100
