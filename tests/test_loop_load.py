"""The load meter the pipeline asks before giving way to callbacks (hub/loop_load.py)."""
from __future__ import annotations

import time

from hub.loop_load import LoadMeter, machine_jiffies, thread_busy_s


class Readings:
    def __init__(self) -> None:
        self.now, self.thread, self.machine = 0.0, 0.0, (0, 0)

    def meter(self) -> LoadMeter:
        return LoadMeter(window=0.1, clock=lambda: self.now, thread=lambda: self.thread,
                         machine=lambda: self.machine)

    def advance(self, seconds: float, thread_s: float, busy: int, total: int) -> None:
        self.now += seconds
        self.thread += thread_s
        self.machine = (self.machine[0] + busy, self.machine[1] + total)


def test_a_thread_waiting_for_a_core_counts_as_busy_and_the_machine_too():
    r = Readings()
    meter = r.meter()
    r.advance(0.1, thread_s=0.09, busy=100, total=200)  # ran or waited for a core 90 % of the window
    assert meter.saturated(0.85) and meter.saturated(0.85, 0.9)
    r.advance(0.1, thread_s=0.03, busy=100, total=200)  # 30 %, machine half busy: CPU to spare
    assert not meter.saturated(0.85) and not meter.saturated(0.85, 0.9)
    r.advance(0.1, thread_s=0.03, busy=190, total=200)  # the machine is full (the database, say)
    assert not meter.saturated(0.85)  # one process: its own thread decides
    assert meter.saturated(0.85, 0.9)  # several: the machine counts
    assert round(meter.thread_share, 2) == 0.3 and meter.machine_share == 0.95


def test_readings_are_taken_once_per_window():
    r = Readings()
    meter = r.meter()
    r.advance(0.05, thread_s=0.05, busy=10, total=10)
    assert not meter.saturated(0.5)  # half a window: the first reading (none yet) stands
    r.advance(0.05, thread_s=0.05, busy=10, total=10)
    assert meter.saturated(0.5)  # the whole window was busy


def test_without_the_machine_figure_only_the_thread_counts():
    r = Readings()
    meter = LoadMeter(window=0.1, clock=lambda: r.now, thread=lambda: r.thread, machine=lambda: None)
    r.advance(0.1, thread_s=0.01, busy=0, total=0)
    assert not meter.saturated(0.85, 0.0) and meter.machine_share is None


def test_the_real_readings_move_with_work():
    before_thread, before_machine = thread_busy_s(), machine_jiffies()
    end = time.perf_counter() + 0.05
    while time.perf_counter() < end:
        pass
    assert thread_busy_s() - before_thread >= 0.04
    if before_machine is not None:  # Linux
        busy, total = machine_jiffies()
        assert total >= before_machine[1] and busy >= before_machine[0]
