"""Pure business-hours logic: open checks, next opening and SLA arithmetic over business time only."""
from __future__ import annotations

import math
import random
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from hub.business_hours import (BusinessHours, BusinessHoursError, add_business_seconds, business_seconds_between,
                                from_json, is_open, next_open, to_json)

H = 3600.0
WEEKDAYS = (0, 1, 2, 3, 4)
LUNCH = (("09:00", "12:00"), ("13:30", "18:00"))


def at(tz: str, y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=ZoneInfo(tz)).timestamp()


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=timezone.utc).timestamp()


def office(tz: str = "Asia/Shanghai", periods=LUNCH, days=WEEKDAYS, **kw) -> BusinessHours:
    return BusinessHours(tz, {d: periods for d in days}, **kw)


# ---- configuration ------------------------------------------------------------------------------------

def test_json_round_trip() -> None:
    data = {"timezone": "Asia/Shanghai", "weekly": {"0": [["09:00", "12:00"], ["13:30", "18:00"]],
                                                    "6": [["22:00", "02:00"]], "5": [["00:00", "24:00"]]},
            "holidays": ["2024-10-01", "2024-10-02"], "workdays": ["2024-10-12"], "workday_weekday": 4}
    bh = from_json(data)
    assert bh.weekly[0] == (("09:00", "12:00"), ("13:30", "18:00"))
    assert bh.holidays == {date(2024, 10, 1), date(2024, 10, 2)}
    assert bh.workday_weekday == 4
    assert to_json(bh) == {**data, "weekly": {"0": data["weekly"]["0"], "5": data["weekly"]["5"],
                                             "6": data["weekly"]["6"]}}
    assert from_json(to_json(bh)) == bh
    hash(bh)


@pytest.mark.parametrize("patch, field", [
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"timezone": ""}, "timezone"),
    ({"weekly": {"0": [["25:00", "26:00"]]}}, "weekly.0[0].start"),
    ({"weekly": {"0": [["9:00", "12:00"]]}}, "weekly.0[0].start"),
    ({"weekly": {"1": [["09:00", "18:00"], ["13:00", "12:7"]]}}, "weekly.1[1].end"),
    ({"weekly": {"2": [["24:00", "02:00"]]}}, "weekly.2[0].start"),
    ({"weekly": {"0": [["09:00", "09:00"]]}}, "weekly.0[0]"),
    ({"weekly": {"0": [["09:00"]]}}, "weekly.0[0]"),
    ({"weekly": {"7": []}}, "weekly.7"),
    ({"weekly": {"mon": []}}, "weekly.mon"),
    ({"weekly": [["09:00", "18:00"]]}, "weekly"),
    ({"holidays": ["2024-13-01"]}, "holidays[0]"),
    ({"workdays": ["2024-10-12", 20241013]}, "workdays[1]"),
    ({"holidays": ["2024-10-12"], "workdays": ["2024-10-12"]}, "workdays"),
    ({"workday_weekday": 7}, "workday_weekday"),
])
def test_validation_names_the_field(patch: dict, field: str) -> None:
    data = {"timezone": "UTC", "weekly": {"0": [["09:00", "18:00"]]}, **patch}
    with pytest.raises(ValueError) as exc:
        from_json(data)
    assert isinstance(exc.value, BusinessHoursError)
    assert exc.value.field == field
    assert str(exc.value).startswith(field + ":")


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(BusinessHoursError):
        BusinessHours("UTC", {0: (("18:00", "18:00"),)})


# ---- lunch break, weekends ----------------------------------------------------------------------------

def test_lunch_break() -> None:
    bh = office()
    mon = lambda h, m=0: at("Asia/Shanghai", 2024, 6, 3, h, m)  # noqa: E731  (2024-06-03 is a Monday)
    assert not is_open(bh, mon(8, 59))
    assert is_open(bh, mon(9))
    assert is_open(bh, mon(11, 59))
    assert not is_open(bh, mon(12))
    assert not is_open(bh, mon(13, 29))
    assert is_open(bh, mon(13, 30))
    assert not is_open(bh, mon(18))
    assert next_open(bh, mon(12, 30)) == mon(13, 30)
    assert next_open(bh, mon(10)) == mon(10)
    assert business_seconds_between(bh, mon(9), mon(18)) == 7.5 * H
    assert business_seconds_between(bh, mon(11), mon(14)) == 1.5 * H
    assert add_business_seconds(bh, mon(11), 2 * H) == mon(14, 30)
    assert add_business_seconds(bh, mon(11), 1 * H) == mon(12)  # exact fit ends at closing, not next opening
    assert add_business_seconds(bh, mon(12, 15), 60) == mon(13, 31)


def test_weekend_skips_to_monday() -> None:
    bh = office()
    fri_close = at("Asia/Shanghai", 2024, 6, 7, 18)
    assert next_open(bh, fri_close) == at("Asia/Shanghai", 2024, 6, 10, 9)
    assert add_business_seconds(bh, at("Asia/Shanghai", 2024, 6, 7, 17), 2 * H) == at("Asia/Shanghai", 2024, 6, 10, 10)
    # a whole week is 5 x 7.5h
    assert business_seconds_between(bh, at("Asia/Shanghai", 2024, 6, 3), at("Asia/Shanghai", 2024, 6, 10)) == 37.5 * H


# ---- periods across midnight --------------------------------------------------------------------------

def test_period_across_midnight() -> None:
    bh = BusinessHours("UTC", {0: (("22:00", "02:00"),), 6: (("23:00", "01:00"),)})
    assert not is_open(bh, utc(2024, 6, 3, 21, 59))
    assert is_open(bh, utc(2024, 6, 3, 22))
    assert is_open(bh, utc(2024, 6, 4, 1, 59))   # Tuesday early morning belongs to Monday's period
    assert not is_open(bh, utc(2024, 6, 4, 2))
    assert not is_open(bh, utc(2024, 6, 4, 22))  # Tuesday has no period of its own
    assert business_seconds_between(bh, utc(2024, 6, 3, 20), utc(2024, 6, 4, 3)) == 4 * H
    # Sunday's overnight period wraps into Monday of the next week
    assert is_open(bh, utc(2024, 6, 10, 0, 30))
    assert next_open(bh, utc(2024, 6, 4, 2)) == utc(2024, 6, 9, 23)
    assert add_business_seconds(bh, utc(2024, 6, 9, 23, 30), 2 * H) == utc(2024, 6, 10, 22, 30)  # 1.5h + 0.5h


def test_end_24_00_and_adjacent_days_do_not_double_count() -> None:
    bh = BusinessHours("UTC", {0: (("18:00", "24:00"),), 1: (("00:00", "06:00"), ("05:00", "07:00"))})
    assert business_seconds_between(bh, utc(2024, 6, 3), utc(2024, 6, 5)) == 13 * H
    assert add_business_seconds(bh, utc(2024, 6, 3, 12), 13 * H) == utc(2024, 6, 4, 7)


def test_always_open() -> None:
    bh = BusinessHours.always("Asia/Shanghai")
    t = utc(2024, 2, 29, 13, 7)
    assert is_open(bh, t) and next_open(bh, t) == t
    assert business_seconds_between(bh, t, t + 1234567) == 1234567
    assert add_business_seconds(bh, t, 400 * 86400) == t + 400 * 86400


def test_never_open() -> None:
    bh = BusinessHours("UTC", {})
    t = utc(2024, 1, 1)
    assert not is_open(bh, t)
    assert next_open(bh, t) == math.inf
    assert add_business_seconds(bh, t, 1) == math.inf
    assert business_seconds_between(bh, t, t + 10 * 86400) == 0
    only_makeup = BusinessHours("UTC", {0: ()}, workdays=frozenset({date(2024, 1, 6)}), workday_weekday=0)
    assert next_open(only_makeup, t) == math.inf  # Monday's periods are empty
    one_day = BusinessHours("UTC", {0: (("09:00", "10:00"),)}, holidays=frozenset(
        date(2024, 1, 1) + (date(2024, 1, 8) - date(2024, 1, 1)) * k for k in range(60)))
    assert next_open(one_day, t) == utc(2025, 2, 24, 9)  # holidays only delay, the schedule continues


def test_edge_cases() -> None:
    bh = office("UTC")
    t = utc(2024, 6, 3, 10)
    assert business_seconds_between(bh, t, t) == 0
    assert business_seconds_between(bh, t, t - 100) == 0
    assert add_business_seconds(bh, utc(2024, 6, 1), 0) == utc(2024, 6, 1)
    with pytest.raises(ValueError):
        add_business_seconds(bh, t, -1)


# ---- timezones and DST --------------------------------------------------------------------------------

def test_same_schedule_different_timezones() -> None:
    sh, u = office("Asia/Shanghai", (("09:00", "18:00"),)), office("UTC", (("09:00", "18:00"),))
    t = utc(2024, 6, 3, 2)  # 10:00 in Shanghai, 02:00 in UTC
    assert is_open(sh, t) and not is_open(u, t)
    assert next_open(u, t) == utc(2024, 6, 3, 9)
    assert next_open(sh, utc(2024, 6, 3, 10)) == utc(2024, 6, 4, 1)  # Shanghai opens 01:00 UTC
    assert business_seconds_between(sh, utc(2024, 6, 3), utc(2024, 6, 4)) == 9 * H


def test_berlin_spring_forward() -> None:
    bh = office("Europe/Berlin", (("09:00", "17:00"),), days=range(7))
    # 2024-03-31: clocks jump 02:00 -> 03:00; 09:00 local is 08:00 UTC on the 30th, 07:00 UTC on the 31st
    assert not is_open(bh, utc(2024, 3, 30, 7, 30)) and is_open(bh, utc(2024, 3, 31, 7, 30))
    assert next_open(bh, utc(2024, 3, 30, 17)) == utc(2024, 3, 31, 7)
    assert business_seconds_between(bh, at("Europe/Berlin", 2024, 3, 29), at("Europe/Berlin", 2024, 4, 2)) == 4 * 8 * H
    assert add_business_seconds(bh, utc(2024, 3, 30, 15), 3 * H) == utc(2024, 3, 31, 9)  # 1h Sat + 2h Sun
    full = BusinessHours("Europe/Berlin", {6: (("00:00", "24:00"),)})
    assert business_seconds_between(full, utc(2024, 3, 25), utc(2024, 4, 5)) == 23 * H
    gap = BusinessHours("Europe/Berlin", {6: (("02:15", "02:45"), ("01:00", "04:00"))})
    assert business_seconds_between(gap, utc(2024, 3, 30), utc(2024, 4, 1)) == 2 * H  # 01:00 CET -> 04:00 CEST


def test_berlin_fall_back() -> None:
    full = BusinessHours("Europe/Berlin", {6: (("00:00", "24:00"),)})
    assert business_seconds_between(full, utc(2024, 10, 21), utc(2024, 10, 30)) == 25 * H
    overnight = BusinessHours("Europe/Berlin", {5: (("22:00", "06:00"),)})
    assert business_seconds_between(overnight, utc(2024, 10, 26), utc(2024, 10, 28)) == 9 * H
    assert next_open(overnight, utc(2024, 10, 27, 6)) == at("Europe/Berlin", 2024, 11, 2, 22)


# ---- holidays and make-up workdays --------------------------------------------------------------------

def test_holiday_closes_the_whole_day() -> None:
    bh = office(holidays=frozenset({date(2024, 10, 1), date(2024, 10, 2)}))  # Tue, Wed
    assert not is_open(bh, at("Asia/Shanghai", 2024, 10, 1, 10))
    assert next_open(bh, at("Asia/Shanghai", 2024, 9, 30, 18)) == at("Asia/Shanghai", 2024, 10, 3, 9)
    assert add_business_seconds(bh, at("Asia/Shanghai", 2024, 9, 30, 17), 2 * H) == at("Asia/Shanghai", 2024, 10, 3, 10)


def test_holiday_and_overnight_periods() -> None:
    bh = BusinessHours("Asia/Shanghai", {d: (("22:00", "02:00"),) for d in range(7)},
                       holidays=frozenset({date(2024, 10, 1)}))
    sh = lambda d, h, m=0: at("Asia/Shanghai", 2024, 10, d, h, m)  # noqa: E731
    assert is_open(bh, sh(1, 0) - 1)                   # Sep 30 23:59:59, the eve is open
    assert not is_open(bh, sh(1, 0, 30))               # the eve's tail into the holiday is cut at 00:00
    assert not is_open(bh, sh(1, 23))                  # nothing starts on the holiday
    assert not is_open(bh, sh(2, 1))                   # ...including its after-midnight tail
    assert next_open(bh, sh(1, 0)) == sh(2, 22)
    assert business_seconds_between(bh, sh(1, 0) - 3 * H, sh(3, 3)) == 2 * H + 4 * H


def test_makeup_workday_follows_configured_weekday() -> None:
    fri_short = {**{d: (("09:00", "18:00"),) for d in range(4)}, 4: (("09:00", "16:00"),)}
    sat = date(2024, 10, 12)
    default = BusinessHours("Asia/Shanghai", fri_short, workdays=frozenset({sat}))
    as_friday = BusinessHours("Asia/Shanghai", fri_short, workdays=frozenset({sat}), workday_weekday=4)
    t = at("Asia/Shanghai", 2024, 10, 12, 17)
    assert is_open(default, t) and not is_open(as_friday, t)
    assert not is_open(default, at("Asia/Shanghai", 2024, 10, 13, 10))  # the Sunday after stays closed
    assert business_seconds_between(default, at("Asia/Shanghai", 2024, 10, 12), at("Asia/Shanghai", 2024, 10, 13)) == 9 * H
    assert next_open(as_friday, at("Asia/Shanghai", 2024, 10, 11, 20)) == at("Asia/Shanghai", 2024, 10, 12, 9)


def test_long_spans_are_fast() -> None:
    bh = office()
    start = at("Asia/Shanghai", 2024, 1, 1, 9)  # a Monday
    end = add_business_seconds(bh, start, 52 * 37.5 * H)
    assert end == at("Asia/Shanghai", 2024, 12, 27, 18)  # 52 full weeks later, Friday close
    assert business_seconds_between(bh, start, end) == 52 * 37.5 * H


# ---- property: add then measure gives back the seconds ------------------------------------------------

SCHEDULES = [
    office(),
    BusinessHours("Europe/Berlin", {0: LUNCH, 1: (("08:00", "12:00"), ("22:00", "02:30")), 2: (("00:00", "24:00"),),
                                    4: (("23:00", "01:00"),), 6: (("01:30", "03:30"),)},
                  holidays=frozenset({date(2024, 3, 27), date(2024, 10, 29), date(2024, 5, 1)}),
                  workdays=frozenset({date(2024, 3, 30), date(2024, 10, 26)}), workday_weekday=1),
    BusinessHours("UTC", {d: (("00:00", "24:00"),) for d in range(7)}, holidays=frozenset({date(2024, 7, 4)})),
]


@pytest.mark.parametrize("idx", range(len(SCHEDULES)))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_add_then_measure_round_trips(idx: int, seed: int) -> None:
    bh, rnd = SCHEDULES[idx], random.Random(seed)
    base = utc(2024, 1, 1)
    for _ in range(150):
        start = base + rnd.uniform(0, 366 * 86400)
        seconds = rnd.choice([rnd.uniform(0, 3 * H), rnd.uniform(0, 20 * 86400), float(rnd.randint(1, 50) * 1800)])
        end = add_business_seconds(bh, start, seconds)
        assert end >= start
        assert business_seconds_between(bh, start, end) == pytest.approx(seconds, abs=1e-3)
        assert is_open(bh, end - 1e-3)  # the deadline falls inside (or at the close of) business time
        other = start + rnd.uniform(0, 10 * 86400)
        measured = business_seconds_between(bh, start, other)
        back = add_business_seconds(bh, start, measured)
        assert back <= other + 1e-3
        assert business_seconds_between(bh, back, other) == pytest.approx(0, abs=1e-3)
        if is_open(bh, start):
            assert next_open(bh, start) == start
        else:
            opens = next_open(bh, start)
            assert opens > start and is_open(bh, opens)
            assert business_seconds_between(bh, start, opens) == 0
