"""Today's figures and the brand's health on a seeded archive with a fixed clock: known answers."""
from __future__ import annotations

import pytest

from hub.clock import FakeClock
from hub.models import BotOutcome, Conversation, Message, ServiceSession
from hub.models.orders import OrderRow
from hub.supervisor.stats import HealthWindow, Stats

T0 = 1_732_500_000.0  # Mon 2024-11-25 10:00 Asia/Shanghai
DAY = 86400.0
ACCOUNT = "acme-wecom"


@pytest.fixture
def clock():
    return FakeClock(T0)


class Seed:
    def __init__(self, hub):  # noqa: ANN001
        self.hub = hub

    async def conversation(self, n: int) -> int:
        async with self.hub.db.write() as conn:
            return (await conn.execute(Conversation.__table__.insert().values(
                account_id=ACCOUNT, channel="wecom", thread="", peer_id=f"peer{n}", created_at=T0 - 30 * DAY))
            ).inserted_primary_key[0]

    async def msg(self, cid: int, at: float, sender: str, kind: str = "text") -> None:
        direction = "in" if sender == "customer" else "out"
        async with self.hub.db.write() as conn:
            await conn.execute(Message.__table__.insert().values(
                account_id=ACCOUNT, conversation_id=cid, channel="wecom", direction=direction, kind=kind,
                peer_id=f"peer{cid}", sender=sender, text="…", sent_at=int(at), created_at=at))

    async def session(self, cid: int, **values) -> None:  # noqa: ANN003
        async with self.hub.db.write() as conn:
            await conn.execute(ServiceSession.__table__.insert().values(
                conversation_id=cid, account_id=ACCOUNT, **values))

    async def outcome(self, cid: int, mid: int, outcome: str, at: float) -> None:
        async with self.hub.db.write() as conn:
            await conn.execute(BotOutcome.__table__.insert().values(
                message_id=mid, conversation_id=cid, account_id=ACCOUNT, outcome=outcome, at=at))

    async def order(self, n: int, created_at: float, customer_id: int | None) -> None:
        async with self.hub.db.write() as conn:
            await conn.execute(OrderRow.__table__.insert().values(
                platform="taobao", order_id=f"o{n}", status="paid", customer_id=customer_id, created_at=created_at,
                modified_at=created_at, synced_at=created_at))


async def seed_archive(hub, agent_a: int = 7, agent_b: int = 8) -> None:  # noqa: ANN001
    s = Seed(hub)
    c = {n: await s.conversation(n) for n in (1, 2, 3, 4, 5)}  # generated ids (PostgreSQL sequences stay right)
    # conv 1: 100 s with the bot, first response 30 s after the handover, then two questions answered at once
    await s.session(c[1], state="active", group="presales", agent_id=agent_a, created_at=T0 - 3000,
                    handover_at=T0 - 2900, first_reply_at=T0 - 2870)
    for at, who in [(T0 - 3000, "customer"), (T0 - 2990, "bot"), (T0 - 2900, "customer"), (T0 - 2870, f"agent:{agent_a}"),
                    (T0 - 2000, "customer"), (T0 - 1990, "customer"), (T0 - 1900, f"agent:{agent_a}")]:
        await s.msg(c[1], at, who)
    # conv 2: handed over at once, answered in 100 s, closed
    await s.session(c[2], state="closed", group="aftersales", agent_id=agent_b, created_at=T0 - 1000,
                    handover_at=T0 - 1000, first_reply_at=T0 - 900, closed_at=T0 - 500, close_reason="resolved")
    await s.msg(c[2], T0 - 1000, "customer")
    await s.msg(c[2], T0 - 900, f"agent:{agent_b}")
    # conv 3: three days ago (not today): one question answered by the bot, the next one never answered
    await s.session(c[3], state="closed", group="presales", agent_id=agent_a, created_at=T0 - 3 * DAY,
                    handover_at=T0 - 3 * DAY, first_reply_at=None, closed_at=T0 - 3 * DAY + 60)
    await s.msg(c[3], T0 - 3 * DAY, "customer")
    await s.msg(c[3], T0 - 3 * DAY + 10, "bot")
    await s.msg(c[3], T0 - 3 * DAY + 20, "customer")
    await s.msg(c[3], T0 - 3 * DAY + 25, "system")  # a queue notice is no answer
    await s.msg(c[3], T0 - 3 * DAY + 30, "customer", kind="event.subscribe")  # an event, not a message
    await s.msg(c[3], T0 - 10 * DAY, "customer")  # outside the 7-day window
    # conv 4: assigned to agent a 100 s ago, not answered yet (inside its 48 h: pending)
    await s.session(c[4], state="assigned", group="presales", agent_id=agent_a, created_at=T0 - 100,
                    handover_at=T0 - 100)
    await s.msg(c[4], T0 - 100, "customer")
    # bots: conv 1 handed over, conv 5 resolved by an FAQ answer
    await s.outcome(c[1], 1, "handover", T0 - 3000)
    await s.outcome(c[5], 999, "faq", T0 - 500)
    for n, (at, cust) in enumerate([(T0 - DAY, 1), (T0 - 2 * DAY, 2), (T0 - 3 * DAY, None), (T0, 3),
                                    (T0 - 8 * DAY, None)]):
        await s.order(n, at, cust)


async def test_today_figures_per_agent_and_group(hub):  # noqa: ANN001
    await seed_archive(hub)
    today = await Stats(hub.db, hub.clock, hub.settings).today()
    assert today["timezone"] == "Asia/Shanghai" and today["since"] == T0 - 10 * 3600
    total = today["total"]
    assert total["sessions"] == 3 and total["closed"] == 1 and total["awaiting_first_reply"] == 1
    assert total["first_response_p50"] == 65 and total["first_response_p90"] == 93  # 30 s and 100 s
    assert total["bot_time_avg"] == round(100 / 3, 1)
    # reply times: 30 (the bot-time question is not counted), 100, 90, 100
    assert total["replies"] == 4 and total["avg_reply"] == 80
    assert today["agents"]["7"]["sessions"] == 2 and today["agents"]["7"]["avg_reply"] == round(220 / 3, 1)
    assert today["agents"]["8"]["first_response_p50"] == 100 and today["agents"]["8"]["closed"] == 1
    assert today["groups"]["presales"]["sessions"] == 2 and today["groups"]["aftersales"]["avg_reply"] == 100
    assert today["bots"] == {"conversations": 2, "resolved_by_bot": 1, "handed_over": 1,
                             "bot_resolution_rate": 0.5, "handover_rate": 0.5}
    assert today["satisfaction"] is None


async def test_today_follows_the_brand_timezone(hub):  # noqa: ANN001
    await seed_archive(hub)
    await hub.settings.set("timezone", "UTC")  # 02:00 UTC: conv 1 (01:10 UTC) is still today, from 00:00 UTC
    today = await Stats(hub.db, hub.clock, hub.settings).today()
    assert today["timezone"] == "UTC" and today["since"] == T0 - 2 * 3600
    assert today["total"]["sessions"] == 3
    hub.clock.advance(2 * 3600)  # 04:00 UTC, 12:00 Shanghai; nothing new today under UTC changes
    await hub.settings.set("timezone", "Not/AZone")  # a bad value falls back to Shanghai
    assert (await Stats(hub.db, hub.clock, hub.settings).today())["timezone"] == "Asia/Shanghai"


async def test_health_48h_answered_share_and_linked_orders(hub):  # noqa: ANN001
    await seed_archive(hub)
    health = await Stats(hub.db, hub.clock, hub.settings).health()
    # 8 customer messages in 7 days: 6 answered in time, 1 still pending (conv 4), 1 never answered (conv 3)
    assert health["answered_48h"] == {"answered": 6, "judged": 7, "pending": 1, "share": round(6 / 7, 4),
                                      "healthy": False, "threshold": 0.9}
    assert health["linked_orders"] == {"orders": 4, "linked": 3, "share": 0.75}
    # two days later conv 4's message has had its 48 h: it counts against the share
    hub.clock.advance(2 * DAY + 1)
    later = await Stats(hub.db, hub.clock, hub.settings).health(window=HealthWindow(days=7))
    assert later["answered_48h"]["pending"] == 0 and later["answered_48h"]["judged"] == 8
    one_day = await Stats(hub.db, hub.clock, hub.settings).health(now=T0, window=HealthWindow(days=1))
    assert one_day["answered_48h"]["judged"] == 5 and one_day["answered_48h"]["healthy"] is True


async def test_empty_archive_gives_no_figures_not_zeros(hub):  # noqa: ANN001
    stats = Stats(hub.db, hub.clock, hub.settings)
    today, health = await stats.today(), await stats.health()
    assert today["total"]["first_response_p50"] is None and today["total"]["avg_reply"] is None
    assert today["bots"]["bot_resolution_rate"] is None
    assert health["answered_48h"]["share"] is None and health["linked_orders"]["share"] is None


async def test_a_question_before_midnight_answered_after_is_a_reply_of_today(hub):
    """Today's read began at midnight and never saw the 23:58 question: its 00:03 answer was on no day."""
    midnight = T0 - 10 * 3600  # 00:00 in Shanghai
    s = Seed(hub)
    cid = await s.conversation(1)
    await s.session(cid, state="active", group="presales", agent_id=7, created_at=midnight - 600,
                    handover_at=midnight - 600, first_reply_at=midnight - 540)
    await s.msg(cid, midnight - 600, "customer")
    await s.msg(cid, midnight - 540, "agent:7")  # answered yesterday: not today's
    await s.msg(cid, midnight - 120, "customer")
    await s.msg(cid, midnight + 180, "agent:7")
    today = await Stats(hub.db, hub.clock, hub.settings).today()
    assert today["total"]["replies"] == 1 and today["total"]["avg_reply"] == 300
