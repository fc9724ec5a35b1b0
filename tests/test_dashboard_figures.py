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
