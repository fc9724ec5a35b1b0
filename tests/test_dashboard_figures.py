"""Today's figures: reply times in a session carried over from before midnight count for its group too."""
from __future__ import annotations

import pytest

from hub.clock import FakeClock
from hub.supervisor.stats import Stats
from tests.test_stats import T0, Seed


@pytest.fixture
def clock():
    return FakeClock(T0)


async def test_replies_in_a_session_begun_yesterday_count_for_its_group(hub):  # noqa: ANN001
    s = Seed(hub)
    cid = await s.conversation(1)
    # handed over at 22:00 yesterday (Shanghai), still open; today a question answered in 60 s
    await s.session(cid, state="active", group="aftersales", agent_id=7, created_at=T0 - 12 * 3600,
                    handover_at=T0 - 12 * 3600, first_reply_at=T0 - 12 * 3600 + 30)
    await s.msg(cid, T0 - 12 * 3600, "customer")
    await s.msg(cid, T0 - 12 * 3600 + 30, "agent:7")
    await s.msg(cid, T0 - 100, "customer")
    await s.msg(cid, T0 - 40, "agent:7")
    today = await Stats(hub.db, hub.clock, hub.settings).today()
    assert today["total"]["sessions"] == 0  # not handed over today
    assert today["total"]["replies"] == 1 and today["total"]["avg_reply"] == 60
    assert today["agents"]["7"]["avg_reply"] == 60
    assert today["groups"]["aftersales"]["replies"] == 1 and today["groups"]["aftersales"]["avg_reply"] == 60
    assert today["groups"]["aftersales"]["sessions"] == 0


async def test_a_question_left_in_a_closed_session_is_not_the_next_sessions_reply_time(hub):  # noqa: ANN001
    s = Seed(hub)
    cid = await s.conversation(1)
    # 08:36: a question, then the session closes unanswered at 08:40
    await s.session(cid, state="closed", group="presales", agent_id=7, created_at=T0 - 5000, handover_at=T0 - 5000,
                    first_reply_at=T0 - 4950, closed_at=T0 - 4700)
    await s.msg(cid, T0 - 5000, "customer")
    await s.msg(cid, T0 - 4950, "agent:7")
    await s.msg(cid, T0 - 4800, "customer")
    # 09:43: the customer comes back; a new session, answered in 60 s by another agent
    await s.session(cid, state="active", group="presales", agent_id=8, created_at=T0 - 1000, handover_at=T0 - 1000,
                    first_reply_at=T0 - 940)
    await s.msg(cid, T0 - 1000, "customer")
    await s.msg(cid, T0 - 940, "agent:8")
    today = await Stats(hub.db, hub.clock, hub.settings).today()
    # 50 s (agent 7) and 60 s (agent 8); the question closed unanswered is no 3,860 s reply by agent 8
    assert today["total"]["replies"] == 2 and today["total"]["avg_reply"] == 55
    assert today["agents"]["8"]["replies"] == 1 and today["agents"]["8"]["avg_reply"] == 60


@pytest.mark.parametrize("value", ["inf", "1e999", float("inf"), "nan", -5, "abc"])
async def test_an_unusable_first_reply_sla_setting_falls_back_to_the_default(hub, value):  # noqa: ANN001
    from hub.supervisor.dashboard import DEFAULT_FIRST_REPLY_SLA, Dashboard
    await hub.settings.set("dashboard_first_reply_sla", value)
    # Infinity is no JSON: the dashboard page could not parse the snapshot
    assert await Dashboard(hub)._first_reply_sla() == DEFAULT_FIRST_REPLY_SLA


async def test_reply_times_before_a_session_was_reopened_still_count(hub):  # noqa: ANN001
    """A customer writing soon after a close reopens the same session row (handover_at moves on): the
    replies of its earlier period today are still reply times."""
    from hub.models import ServiceSession, SessionEvent
    s = Seed(hub)
    cid = await s.conversation(1)
    await s.session(cid, state="active", group="presales", agent_id=7, created_at=T0 - 5000, handover_at=T0 - 1000,
                    first_reply_at=T0 - 950)
    async with hub.db.write() as conn:
        sid = (await conn.execute(ServiceSession.__table__.select())).first().id
        for kind, at in (("created", T0 - 5000), ("closed", T0 - 4000), ("reopened", T0 - 1000)):
            await conn.execute(SessionEvent.__table__.insert().values(session_id=sid, kind=kind, actor="system",
                                                                      data="{}", at=at))
    await s.msg(cid, T0 - 5000, "customer")
    await s.msg(cid, T0 - 4900, "customer")
    await s.msg(cid, T0 - 4880, "agent:7")  # 100 s and 20 s in the first period
    await s.msg(cid, T0 - 3000, "customer")  # between the close and the reopen: with the bot, not counted
    await s.msg(cid, T0 - 1000, "customer")
    await s.msg(cid, T0 - 950, "agent:7")  # 50 s after the reopen
    today = await Stats(hub.db, hub.clock, hub.settings).today()
    assert today["total"]["replies"] == 3 and today["total"]["avg_reply"] == round((120 + 20 + 50) / 3, 1)
