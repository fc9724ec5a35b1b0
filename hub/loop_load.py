"""How busy the event loop's thread has been lately: its CPU time over wall time in a short window.

A backlog of pipeline jobs alone does not mean the hub is flooded: at a steady rate the pipeline may
lag a moment and catch up, as long as the loop has time to spare. Only a busy loop with a backlog is
a flood, where acknowledging callbacks must come first.
"""
from __future__ import annotations

import time
from collections import deque


class LoopLoad:
    """Sampled lazily, whenever asked, from the loop's own thread (``time.thread_time``)."""

    def __init__(self, window: float = 0.5):
        self.window = window
        self._marks: deque[tuple[float, float]] = deque()
        self._busy = 0.0

    def busy(self) -> float:
        """The loop thread's share of one core over about the last ``window`` seconds (0..1)."""
        now, cpu = time.monotonic(), time.thread_time()
        marks = self._marks
        if marks and now - marks[-1][0] < self.window / 5:
            return self._busy  # sampled a moment ago
        marks.append((now, cpu))
        while len(marks) > 2 and now - marks[1][0] >= self.window:
            marks.popleft()  # keep one mark at or just past the window's start
        start, start_cpu = marks[0]
        self._busy = min(1.0, (cpu - start_cpu) / (now - start)) if now > start else 0.0
        return self._busy
