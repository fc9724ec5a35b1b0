"""The unanswered timer after a long gap (the "hang" when the clock jumped 24 h and every due timer fired).

What looked like a SQLite lock-up was a livelock: the unanswered timer reassigned the session, the only
agent got it back, and the timer was re-armed from the customer's day-old message, a deadline already
past, so it fired again at once, reassigned again, and so on without end (hundreds of writes a second,
every task found inside ``SessionService._unanswered`` / ``db.write()``). The deadline now counts from
the customer's message or from when the holder got the session, whichever is later. These tests fire
every due timer with SLA rules, quality rules and a ticket's due time armed, on both databases."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from hub.app import create_app
from hub.clock import FakeClock
from hub.models import SessionEvent
from hub.supervisor.api import SUPERVISION
from hub.supervisor.seed import seed_default_rules
from tests.conftest import auth
from tests.helpers import wait_for
from tests.rt_helpers import make_user
from tests.test_sla import Desk, start_session

T0 = 1_732_500_000.0
DAY = 24 * 3600.0
UNANSWERED = 5 * 60.0  # the default unanswered_minutes
events_t = SessionEvent.__table__


@pytest.fixture
async def desk(aiohttp_client, hub_config):
    """A hub on a fake clock with the default SLA and quality rules and the default unanswered timer
    (5 minutes, reassign)."""
    clock = FakeClock(T0)
    client = await aiohttp_client(create_app(hub_config, clock))
    d = Desk(client, clock)
    await d.hub.settings.set("default_group", "presales")
    await seed_default_rules(d.hub.db, clock)
    supervision = client.server.app[SUPERVISION]
    await supervision.alerts.rules_changed()
    await supervision.quality.load_rules()
    await make_user(d.hub, "alice")
    await make_user(d.hub, "sam", role="supervisor", groups=())
    yield d
    for s in d.sockets:
        await s.close()


async def session_events(desk: Desk, session_id: int) -> list[tuple[str, str]]:
    async with desk.hub.db.read() as conn:
        rows = (await conn.execute(select(events_t.c.kind, events_t.c.actor).where(events_t.c.session_id == session_id)
                                   .order_by(events_t.c.id))).all()
    return [(r.kind, r.actor) for r in rows]


async def fire_due(desk: Desk) -> int:
    """Every due timer, within 10 s; then a moment for what they scheduled to run (a re-armed timer
    already past its deadline fires on the loop's next turns)."""
    fired = await asyncio.wait_for(desk.hub.timers.fire_due(), 10)
    await asyncio.sleep(0.3)
    return fired


async def test_a_day_later_every_due_timer_fires_once_and_the_unanswered_one_does_not_loop(desk):
    alice, sam = await desk.connect("alice"), await desk.connect("sam")
    assert (await alice.call("status", {"status": "online"}))["ok"]
    session = await start_session(desk, alice)
    sid = session["id"]
    assert (await alice.call("accept", {"session_id": sid}))["ok"]
    made = await desk.client.post("/api/tickets", headers=auth(), json={"title": "瓶子破了", "type": "return",
                                                                        "session_id": sid})
    assert made.status == 201, await made.text()
    ticket = await made.json()
    await desk.customer_says("wmSla1", "我要投诉，急")  # left unanswered
    assert f"accept:{sid}" not in desk.hub.timers.pending()
    assert {f"unanswered:{sid}", f"ticket-due:{ticket['id']}"} <= set(desk.hub.timers.pending())

    desk.clock.advance(DAY + 60)
    before = desk.hub.timers.fired
    assert await fire_due(desk) >= 3  # the SLA first-reply deadline, the ticket's due time, unanswered
    assert desk.hub.timers.fired - before < 10  # nothing re-fires by itself
    kinds = [k for k, _ in await session_events(desk, sid)]
    assert kinds.count("unanswered") == 1 and kinds.count("requeued") == 1
    assert kinds[-1] == "assigned"  # nobody else is online: back to alice, passed over only if someone could take it
    await sam.wait("session.escalated", where=lambda p: p["session_id"] == sid)
    await sam.wait("alert.raised", where=lambda a: a["session_id"] == sid and a["kind"] == "first_reply")
    await alice.wait("ticket.overdue", where=lambda p: p["ticket"]["id"] == ticket["id"])
    # handed back now, alice has the full unanswered time from now, not a deadline a day old
    assert desk.hub.timers.when(f"unanswered:{sid}") == pytest.approx(desk.clock.now() + UNANSWERED)

    # she accepts it again but still leaves it unanswered: escalated once more (once per lapse, not a loop)
    alice = await desk.connect("alice")  # a day later: her login of yesterday has expired, she logs in again
    assert (await alice.call("accept", {"session_id": sid}))["ok"]
    desk.clock.advance(UNANSWERED + 1)
    await fire_due(desk)
    kinds = [k for k, _ in await session_events(desk, sid)]
    assert kinds.count("unanswered") == 2 and kinds.count("requeued") == 2
    assert desk.hub.timers.when(f"unanswered:{sid}") == pytest.approx(desk.clock.now() + UNANSWERED)

    # a reply ends it
    assert (await alice.call("reply", {"session_id": sid, "text": "您好，马上为您处理"}))["ok"]
    assert f"unanswered:{sid}" not in desk.hub.timers.pending()
    desk.clock.advance(DAY)
    await fire_due(desk)
    assert [k for k, _ in await session_events(desk, sid)].count("unanswered") == 2


async def test_a_session_that_waited_in_the_queue_gets_the_full_unanswered_time_once_assigned(desk):
    alice = await desk.connect("alice")
    await desk.customer_says("wmQueue", "有人吗")  # nobody online: it waits in the queue
    desk.clock.advance(DAY)
    await fire_due(desk)
    alice = await desk.connect("alice")  # the next day: logged in again
    assert (await alice.call("status", {"status": "online"}))["ok"]
    [bundle] = await alice.wait("session.new")
    sid = bundle["session"]["id"]
    assert desk.hub.timers.when(f"unanswered:{sid}") == pytest.approx(desk.clock.now() + UNANSWERED)
    await asyncio.sleep(0.3)  # a deadline counted from the day-old message would have fired already
    assert "unanswered" not in [k for k, _ in await session_events(desk, sid)]
    assert bundle["session"]["agent_id"] == (await desk.hub.sessions._get(sid)).agent_id


async def test_lapsed_session_goes_to_another_online_agent_who_gets_the_full_time(desk):
    await make_user(desk.hub, "bob")
    alice, bob = await desk.connect("alice"), await desk.connect("bob")
    assert (await alice.call("status", {"status": "online"}))["ok"]
    session = await start_session(desk, alice, peer="wmLapse")
    sid = session["id"]
    assert (await alice.call("accept", {"session_id": sid}))["ok"]
    assert (await bob.call("status", {"status": "online"}))["ok"]
    desk.clock.advance(UNANSWERED + 1)
    await fire_due(desk)
    [removed] = await alice.wait("session.removed", where=lambda p: p["session_id"] == sid)
    assert removed["reason"] in ("unanswered", "not_accepted")
    await bob.wait("session.new", where=lambda b: b["session"]["id"] == sid)
    row = await desk.hub.sessions._get(sid)
    assert row.agent_id != alice_id(desk) and row.state == "assigned"
    assert desk.hub.timers.when(f"unanswered:{sid}") == pytest.approx(desk.clock.now() + UNANSWERED)
    assert [k for k, _ in await session_events(desk, sid)].count("unanswered") == 1


def alice_id(desk: Desk) -> int:
    return next(a.id for a in desk.hub.sessions.agents.values() if a.username == "alice")


async def test_a_customer_writing_again_does_not_push_the_unanswered_deadline_out(desk):
    """The customer's "在吗?" every few minutes: the wait counts from their first unanswered message,
    as the SLA clock does, not from the newest (which never let the deadline come)."""
    alice = await desk.connect("alice")
    assert (await alice.call("status", {"status": "online"}))["ok"]
    session = await start_session(desk, alice, peer="wmNag")
    sid = session["id"]
    assert (await alice.call("accept", {"session_id": sid}))["ok"]
    assert (await alice.call("reply", {"session_id": sid, "text": "您好"}))["ok"]
    await desk.advance(10)
    await desk.customer_says("wmNag", "订单什么时候发货")
    await alice.wait("message.new", count=1, where=lambda d: d["message"]["direction"] == "in")
    await wait_for(lambda: desk.hub.timers.when(f"unanswered:{sid}") is not None)
    first = desk.hub.timers.when(f"unanswered:{sid}")
    assert first == pytest.approx(desk.clock.now() + UNANSWERED, abs=1)
    await desk.advance(UNANSWERED - 60)
    await desk.customer_says("wmNag", "在吗？")
    await alice.wait("message.new", count=2, where=lambda d: d["message"]["direction"] == "in")
    await desk.hub.pipeline.drain()
    assert desk.hub.timers.when(f"unanswered:{sid}") == pytest.approx(first)
    await desk.advance(61)
    await asyncio.sleep(0.3)
    assert "unanswered" in [k for k, _ in await session_events(desk, sid)]


async def test_a_timer_that_read_the_session_before_the_agent_acted_changes_nothing(desk, monkeypatch):
    """The accept timer (or the unanswered one) reads an assigned session; the agent accepts (or
    closes it) before the timer writes: the session stays the agent's (or closed), not queued for a
    colleague. The stale read is made explicit here: the timer is handed the row as it was."""
    from types import SimpleNamespace

    alice = await desk.connect("alice")
    assert (await alice.call("status", {"status": "online"}))["ok"]
    session = await start_session(desk, alice, peer="wmRace")
    sid = session["id"]
    stale = SimpleNamespace(**(await desk.hub.sessions._get(sid))._mapping)
    assert stale.state == "assigned"
    assert (await alice.call("accept", {"session_id": sid}))["ok"]
    real_get = desk.hub.sessions._get

    async def get_once_stale(session_id):  # noqa: ANN001, ANN202
        monkeypatch.setattr(desk.hub.sessions, "_get", real_get)
        return stale

    monkeypatch.setattr(desk.hub.sessions, "_get", get_once_stale)
    await desk.hub.sessions._accept_timeout(sid)
    row = await real_get(sid)
    assert (row.state, row.agent_id) == ("active", stale.agent_id)
    assert desk.hub.sessions.dispatcher.agent_of(sid) == stale.agent_id
    # closed meanwhile: the reassignment (unanswered, SLA) leaves it closed
    assert (await alice.call("close", {"session_id": sid, "reason": "resolved"}))["ok"]
    active = SimpleNamespace(**{**stale.__dict__, "state": "active"})
    monkeypatch.setattr(desk.hub.sessions, "_get", lambda session_id: _value(active))
    assert await desk.hub.sessions.reassign(sid, "unanswered") is False
    monkeypatch.setattr(desk.hub.sessions, "_get", real_get)
    assert (await real_get(sid)).state == "closed"
    assert "requeued" not in [k for k, _ in await session_events(desk, sid)]


async def _value(v):  # noqa: ANN001, ANN202
    return v
