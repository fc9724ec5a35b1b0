"""One clock object injected wherever time matters, so tests control time instead of sleeping."""
from __future__ import annotations

import time


class Clock:
    """Wall-clock time in epoch seconds."""

    def now(self) -> float:
        return time.time()


class FakeClock(Clock):
    """A clock tests move by hand."""

    def __init__(self, start: float = 1_732_261_000.0):
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds
