"""Business hours as pure data: open/closed checks and SLA arithmetic that counts only business time.

Semantics (all times are epoch seconds; nothing here reads the clock):

* ``weekly[wd]`` lists local-time periods for weekday ``wd`` (0=Mon .. 6=Sun). A period whose end is not
  after its start crosses midnight: ``("22:00", "02:00")`` on Monday is Mon 22:00 -> Tue 02:00. ``"24:00"``
  is accepted as an end and means midnight at the end of the day. A period belongs to the day it starts on.
* ``holidays`` close their whole local calendar day [00:00, 24:00): periods starting on a holiday are dropped
  entirely (after-midnight tail included) and the tail of the previous day's overnight period is cut at
  00:00 of the holiday.
* ``workdays`` (调休 make-up days) follow the periods of weekday ``workday_weekday`` (default Monday)
  instead of their own weekday's. A date cannot be both a holiday and a workday.
* Local times go through ``zoneinfo`` (PEP 495, fold=0): a time skipped by a DST jump is pushed forward by the
  gap, a repeated time means its first occurrence. So a 09:00-18:00 day stays 9 real hours, and
  00:00-24:00 on a spring-forward day in Europe/Berlin lasts 23 hours.
* Intervals are half-open: open at a period's start, closed at its end.
* A schedule with no periods at all (and no future make-up day) never opens: ``next_open`` and
  ``add_business_seconds`` then return ``math.inf``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_DAY = timedelta(days=1)
Period = tuple[str, str]


class BusinessHoursError(ValueError):
    """Invalid business-hours configuration; ``field`` names the offending field."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


def _minutes(value: Any, field_name: str, *, allow_24: bool) -> int:
    if allow_24 and value == "24:00":
        return 24 * 60
    m = _TIME.match(value) if isinstance(value, str) else None
    if not m:
        raise BusinessHoursError(field_name, f"bad time {value!r}, expected 'HH:MM'")
    return int(m.group(1)) * 60 + int(m.group(2))


@dataclass(frozen=True)
class BusinessHours:
    """Weekly opening periods in an IANA timezone, with holidays and make-up workdays."""

    timezone: str
    weekly: dict[int, tuple[Period, ...]] = field(hash=False)
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    workday_weekday: int = 0
    # weekday -> ((start_minute, end_minute_possibly_next_day), ...), built in __post_init__
    _spans: dict[int, tuple[tuple[int, int], ...]] = field(init=False, repr=False, compare=False, hash=False)
    _tz: ZoneInfo = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        try:
            tz = ZoneInfo(self.timezone) if isinstance(self.timezone, str) and self.timezone else None
        except (ZoneInfoNotFoundError, ValueError):
            tz = None
        if tz is None:
            raise BusinessHoursError("timezone", f"unknown timezone {self.timezone!r}")
        if not isinstance(self.workday_weekday, int) or isinstance(self.workday_weekday, bool) \
                or not 0 <= self.workday_weekday <= 6:
            raise BusinessHoursError("workday_weekday", "must be an int 0 (Mon) .. 6 (Sun)")
        spans: dict[int, tuple[tuple[int, int], ...]] = {}
        for wd, periods in self.weekly.items():
            if not isinstance(wd, int) or isinstance(wd, bool) or not 0 <= wd <= 6:
                raise BusinessHoursError(f"weekly.{wd}", "weekday must be 0 (Mon) .. 6 (Sun)")
            out = []
            for i, period in enumerate(periods):
                name = f"weekly.{wd}[{i}]"
                if not isinstance(period, (tuple, list)) or len(period) != 2:
                    raise BusinessHoursError(name, "a period is a pair [start, end]")
                start = _minutes(period[0], f"{name}.start", allow_24=False)
                end = _minutes(period[1], f"{name}.end", allow_24=True)
                if end == start:
                    raise BusinessHoursError(name, "end equals start (use 00:00-24:00 for a whole day)")
                out.append((start, end if end > start else end + 24 * 60))
            spans[wd] = tuple(sorted(out))
        overlap = self.holidays & self.workdays
        if overlap:
            raise BusinessHoursError("workdays", f"{min(overlap).isoformat()} is also a holiday")
        object.__setattr__(self, "_tz", tz)
        object.__setattr__(self, "_spans", spans)

    @classmethod
    def always(cls, timezone: str = "UTC") -> "BusinessHours":
        """A 24/7 schedule."""
        return cls(timezone, {wd: (("00:00", "24:00"),) for wd in range(7)})


def from_json(data: Any) -> BusinessHours:
    """Build from ``{"timezone", "weekly": {"0": [["09:00","18:00"]]}, "holidays": [iso dates],
    "workdays": [...], "workday_weekday": 0}``; raises ``BusinessHoursError`` (a ValueError) naming the field."""
    if not isinstance(data, dict):
        raise BusinessHoursError("business_hours", "must be an object")
    weekly_raw = data.get("weekly", {})
    if not isinstance(weekly_raw, dict):
        raise BusinessHoursError("weekly", "must be an object keyed by weekday 0..6")
    weekly: dict[int, tuple[Period, ...]] = {}
    for key, periods in weekly_raw.items():
        if not (isinstance(key, int) and not isinstance(key, bool)) and not (isinstance(key, str) and key.isascii() and key.isdigit()):
            raise BusinessHoursError(f"weekly.{key}", "weekday must be 0 (Mon) .. 6 (Sun)")
        wd = int(key)
        if not isinstance(periods, (list, tuple)):
            raise BusinessHoursError(f"weekly.{key}", "must be a list of [start, end] pairs")
        weekly[wd] = tuple(tuple(p) if isinstance(p, (list, tuple)) else p for p in periods)  # type: ignore[misc]
    return BusinessHours(
        timezone=data.get("timezone", ""),
        weekly=weekly,
        holidays=_dates(data.get("holidays", []), "holidays"),
        workdays=_dates(data.get("workdays", []), "workdays"),
        workday_weekday=data.get("workday_weekday", 0),
    )


def _dates(raw: Any, name: str) -> frozenset[date]:
    if not isinstance(raw, (list, tuple)):
        raise BusinessHoursError(name, "must be a list of ISO dates")
    out = set()
    for i, v in enumerate(raw):
        try:
            out.add(date.fromisoformat(v))
        except (TypeError, ValueError):
            raise BusinessHoursError(f"{name}[{i}]", f"bad date {v!r}, expected 'YYYY-MM-DD'") from None
    return frozenset(out)


def to_json(bh: BusinessHours) -> dict:
    """The JSON form accepted by ``from_json``."""
    return {
        "timezone": bh.timezone,
        "weekly": {str(wd): [list(p) for p in bh.weekly[wd]] for wd in sorted(bh.weekly)},
        "holidays": sorted(d.isoformat() for d in bh.holidays),
        "workdays": sorted(d.isoformat() for d in bh.workdays),
        "workday_weekday": bh.workday_weekday,
    }


def _epoch(bh: BusinessHours, day: date, minute: int) -> float:
    d = day + timedelta(days=minute // 1440)
    minute %= 1440
    return datetime.combine(d, time(minute // 60, minute % 60), tzinfo=bh._tz).timestamp()


def _day_intervals(bh: BusinessHours, day: date) -> list[tuple[float, float]]:
    """Epoch intervals of the periods that start on local ``day`` (holiday rules applied)."""
    if day in bh.holidays:
        return []
    spans = bh._spans.get(bh.workday_weekday if day in bh.workdays else day.weekday(), ())
    cut = _epoch(bh, day, 1440) if (day + _DAY) in bh.holidays else math.inf
    out = []
    for start, end in spans:
        s, e = _epoch(bh, day, start), min(_epoch(bh, day, end), cut)
        if e > s:  # may be empty inside a DST gap
            out.append((s, e))
    out.sort()
    return out


def _pieces(bh: BusinessHours, start: float) -> Iterator[tuple[float, float]]:
    """Disjoint, ordered open intervals clipped to begin no earlier than ``start``; ends if never open again."""
    day = datetime.fromtimestamp(start, bh._tz).date() - _DAY  # yesterday's overnight period may still run
    has_weekly = any(bh._spans.values())
    last_workday = max(bh.workdays, default=date.min)
    last_end = start
    while True:
        if not has_weekly and day > last_workday:
            return
        for s, e in _day_intervals(bh, day):
            s = max(s, last_end)
            if e > s:
                yield s, e
                last_end = e
        day += _DAY


def is_open(bh: BusinessHours, now: float) -> bool:
    """Whether ``now`` falls inside business hours."""
    return next_open(bh, now) == now


def next_open(bh: BusinessHours, now: float) -> float:
    """When business hours next begin: ``now`` itself if open, ``math.inf`` if never."""
    for s, _ in _pieces(bh, now):
        return s
    return math.inf


def business_seconds_between(bh: BusinessHours, start: float, end: float) -> float:
    """Open seconds in [start, end); 0 if ``end <= start``."""
    total = 0.0
    if end <= start:
        return total
    for s, e in _pieces(bh, start):
        if s >= end:
            break
        total += min(e, end) - s
    return total


def add_business_seconds(bh: BusinessHours, start: float, seconds: float) -> float:
    """The earliest instant at which ``seconds`` of business time have elapsed since ``start``.

    An exact fit returns the closing instant rather than the next opening; ``seconds == 0`` returns ``start``.
    """
    if seconds < 0:
        raise ValueError("seconds must be >= 0")
    if seconds == 0:
        return start
    remaining = seconds
    for s, e in _pieces(bh, start):
        if remaining <= e - s:
            return s + remaining
        remaining -= e - s
    return math.inf
