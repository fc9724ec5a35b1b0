"""Pure SLA logic: rule validation, business-hours deadlines (lunch breaks, holidays, make-up
working days), reply-time pairing with the bot's time left out, rolling averages; and the demo's
default rules."""
from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from hub.business_hours import from_json
from hub.supervisor.deadlines import (
    ReplySample, TimelineEvent, deadline, elapsed, reply_samples, rolling_average, waiting_since, with_handovers)
from hub.supervisor.sla_rules import RuleError, parse_rule, rule_to_json, storable

SH = ZoneInfo("Asia/Shanghai")
HOURS = from_json({"timezone": "Asia/Shanghai",
                   "weekly": {str(d): [["09:00", "12:00"], ["13:30", "18:00"]] for d in range(5)},
                   "holidays": ["2024-10-01"], "workdays": ["2024-10-12"], "workday_weekday": 0})


def t(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=SH).timestamp()


def test_deadline_without_business_hours_is_plain_addition():
    assert deadline(1000.0, 60, None) == 1060.0
    assert elapsed(1000.0, 1100.0, None) == 100.0 and elapsed(1100.0, 1000.0, None) == 0.0


def test_deadline_skips_the_lunch_break_and_the_night():
    assert deadline(t("2024-11-25T11:59:30"), 60, HOURS) == t("2024-11-25T13:30:30")
    assert deadline(t("2024-11-25T17:59:00"), 120, HOURS) == t("2024-11-26T09:01:00")
    assert deadline(t("2024-11-25T12:30:00"), 60, HOURS) == t("2024-11-25T13:31:00")  # handed over at lunch
    assert elapsed(t("2024-11-25T11:00:00"), t("2024-11-25T14:00:00"), HOURS) == 90 * 60


def test_deadline_skips_weekends_and_holidays_and_counts_make_up_days():
    assert deadline(t("2024-11-29T17:59:00"), 120, HOURS) == t("2024-12-02T09:01:00")  # Fri -> Mon
    assert deadline(t("2024-09-30T17:59:00"), 120, HOURS) == t("2024-10-02T09:01:00")  # 10-01 is a holiday
    # Saturday 10-12 is a make-up working day (Monday's hours)
    assert deadline(t("2024-10-11T17:59:00"), 120, HOURS) == t("2024-10-12T09:01:00")


def test_a_schedule_that_never_opens_has_no_deadline():
    closed = from_json({"timezone": "UTC", "weekly": {}})
    assert math.isinf(deadline(0.0, 60, closed))


def test_reply_samples_leave_the_bot_time_out():
    events = [TimelineEvent(0, "customer", message_id=1), TimelineEvent(1, "bot"), TimelineEvent(100, "customer", message_id=2),
              TimelineEvent(101, "handover"), TimelineEvent(131, "agent", agent_id=7, message_id=3),
              TimelineEvent(140, "customer", message_id=4), TimelineEvent(150, "customer", message_id=5),
              TimelineEvent(200, "agent", agent_id=7, message_id=6), TimelineEvent(201, "agent", agent_id=7, message_id=7)]
    samples = reply_samples(events)
    assert [(s.waited_from, s.replied_at, s.waited_message_id) for s in samples] == [(101, 131, None), (140, 200, 4)]
    assert waiting_since(events[:7]) == 140 and waiting_since(events) is None
    assert rolling_average(samples, 20) == 45
    assert rolling_average(samples, 1) == 60
    assert rolling_average(samples, 20, min_samples=3) is None


def test_handovers_merge_in_archive_order():
    msgs = [TimelineEvent(10, "customer", message_id=1), TimelineEvent(10, "agent", agent_id=1, message_id=2)]
    merged = with_handovers(msgs, [TimelineEvent(10, "handover")])
    assert [e.kind for e in merged] == ["customer", "handover", "agent"]
    assert [e.kind for e in with_handovers(msgs[:1], [TimelineEvent(20, "handover")])] == ["customer", "handover"]


def test_rolling_average_in_business_seconds():
    s = ReplySample(1, "", t("2024-11-25T11:59:00"), t("2024-11-25T13:31:00"))
    assert rolling_average([s], 5, HOURS) == 120
    assert s.seconds == 92 * 60


def test_rule_parsing():
    r = parse_rule({"kind": "first_reply", "seconds": 60, "group": "presales", "escalation": "notify",
                    "notify_user_id": 3}, 5)
    assert r.id == 5 and r.name == "首次响应" and r.applies_to("any", "presales") and not r.applies_to("any", "x")
    assert parse_rule(storable(r), 5) == r and rule_to_json(r)["notify_user_id"] == 3
    avg = parse_rule({"kind": "avg_reply", "seconds": 120})
    assert avg.window == 20 and avg.applies_to_agent(("x",))
    assert parse_rule({"kind": "unanswered", "seconds": 5, "escalation": "none", "notify_user_id": 3}).notify_user_id is None
    for body, field in (("x", "rule"), ({"kind": "first_reply"}, "seconds"), ({"kind": "first_reply", "seconds": True}, "seconds"),
                        ({"kind": "first_reply", "seconds": 9e9}, "seconds"),
                        ({"kind": "first_reply", "seconds": 5, "escalation": "fire"}, "escalation"),
                        ({"kind": "avg_reply", "seconds": 5, "window": 0}, "window"),
                        ({"kind": "first_reply", "seconds": 5, "group": 7}, "group"),
                        ({"kind": "first_reply", "seconds": 5, "escalation": "notify", "notify_user_id": "sam"},
                         "notify_user_id")):
        with pytest.raises(RuleError) as err:
            parse_rule(body)
        assert err.value.field == field


async def test_default_rules_seed_once(tmp_path):
    from hub.clock import Clock
    from hub.db import Database
    from hub.supervisor.alerts import AlertEngine
    from hub.supervisor.quality import QualityChecker
    from hub.supervisor.seed import DEFAULT_QUALITY, DEFAULT_SLA, seed_default_rules
    from tests.conftest import ON_POSTGRES
    if ON_POSTGRES:
        pytest.skip("a file database is enough for the seed")
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/seed.db")
    await db.create_schema()
    await seed_default_rules(db, Clock())
    await seed_default_rules(db, Clock())
    engine = AlertEngine(db, Clock(), None, None, None, None)  # type: ignore[arg-type]
    await engine.load_rules()
    assert [(r.kind, r.seconds) for r in engine.rules] == [("first_reply", 60), ("unanswered", 120), ("avg_reply", 120)]
    checker = QualityChecker(db, Clock())
    await checker.load_rules()
    assert len(checker.rules) == len(DEFAULT_QUALITY) and len(engine.rules) == len(DEFAULT_SLA)
    assert next(r for r in checker.rules if r.kind == "anxiety_words").params["words"] == ["投诉", "差评", "退款", "急"]
    await db.dispose()


async def test_rule_text_a_database_cannot_hold_and_unknown_targets_are_refused(client, hub):
    """A NUL or half an emoji in a rule's name or words was stored (SQLite) or a 500 (PostgreSQL, and a
    lone surrogate on SQLite); a misspelt group made a rule that never applies, an unknown user an
    escalation that tells nobody."""
    from tests.conftest import auth
    base = {"kind": "first_reply", "seconds": 60}
    for body, field in [({**base, "name": "首响\x00"}, "name"), ({**base, "name": "首响\ud83d"}, "name"),
                        ({**base, "account_id": "\x00"}, "account_id"), ({**base, "group": "presalse"}, "group"),
                        ({**base, "escalation": "notify", "notify_user_id": 987654}, "notify_user_id")]:
        resp = await client.post("/api/sla/rules", json=body, headers=auth())
        assert resp.status == 400 and (await resp.json())["field"] == field, (body, resp.status)
    for body in [{"kind": "forbidden_words", "name": "\ud83d", "params": {"words": ["滚"]}},
                 {"kind": "forbidden_words", "params": {"words": ["滚\x00"]}}]:
        resp = await client.post("/api/quality/rules", json=body, headers=auth())
        assert resp.status == 400, (body, resp.status)
