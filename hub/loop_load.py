"""Is this process short of CPU? What the pipeline asks before giving way to callbacks.

The loop thread's CPU time alone under-reads a shared machine: a thread that is ready to run but
waits for a core (the other workers, PostgreSQL, the load balancer) looks idle. Linux reports that
wait beside the run time (``/proc/thread-self/schedstat``), so the thread counts as busy for both.
With several processes on one database the jobs' cost is mostly PostgreSQL's, which no thread of
ours shows: the machine's own busy share (``/proc/stat``) covers that. Where neither file exists
the thread's CPU time is all there is (and the machine is not read).

Sampled at most every ``window`` seconds (two small reads), so asking costs nothing in between.
"""
from __future__ import annotations

import time
from typing import Callable


def thread_busy_s() -> float:
    """Seconds this thread ran or waited for a core (run time alone without schedstat)."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as f:
            run_ns, wait_ns = f.read().split()[:2]
        return (int(run_ns) + int(wait_ns)) / 1e9
    except (OSError, ValueError):
        return time.thread_time()


def machine_jiffies() -> tuple[int, int] | None:
    """(busy, total) CPU ticks of the whole machine since boot, or None where unknown."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 5:
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    return total - idle, total


class LoadMeter:
    def __init__(self, window: float = 0.1, clock: Callable[[], float] = time.perf_counter,
                 thread: Callable[[], float] = thread_busy_s,
                 machine: Callable[[], tuple[int, int] | None] = machine_jiffies):
        self.window = window
        self._clock, self._thread, self._machine = clock, thread, machine
        self._at = clock()
        self._thread_at = thread()
        self._machine_at = machine()
        self.thread_share = 0.0  # of one core, over the last window
        self.machine_share: float | None = None  # of all cores, over the last window

    def sample(self) -> None:
        """Take a new reading once the window has passed."""
        now = self._clock()
        elapsed = now - self._at
        if elapsed < self.window:
            return
        busy, machine = self._thread(), self._machine()
        self.thread_share = (busy - self._thread_at) / elapsed
        if machine is not None and self._machine_at is not None and machine[1] > self._machine_at[1]:
            self.machine_share = (machine[0] - self._machine_at[0]) / (machine[1] - self._machine_at[1])
        else:
            self.machine_share = None
        self._at, self._thread_at, self._machine_at = now, busy, machine

    def saturated(self, thread_share: float, machine_share: float | None = None) -> bool:
        """The loop's thread wanted a core at least ``thread_share`` of the time, or (given) the whole
        machine was at least ``machine_share`` busy, over the last window."""
        self.sample()
        if self.thread_share >= thread_share:
            return True
        return machine_share is not None and self.machine_share is not None and self.machine_share >= machine_share
