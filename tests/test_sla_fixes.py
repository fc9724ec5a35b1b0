"""SLA alerts: acknowledged alerts stay acknowledged over a restart, and alerts raised by another hub
process are cleared once their condition is met."""
from __future__ import annotations

import asyncio

import pytest

from hub.app import HUB, create_app
from hub.clock import FakeClock
from hub.supervisor.api import SUPERVISION
from tests.conftest import ON_POSTGRES
from tests.rt_helpers import make_user
from tests.test_sla import T0, Desk, desk, open_desk, start_session  # noqa: F401 - the fixture


async def test_an_acknowledged_alert_is_not_raised_again_after_a_restart(aiohttp_client, hub_config):
    clock = FakeClock(T0)
    d = await open_desk(aiohttp_client, hub_config, clock)
    client = d.client
    await d.rule(kind="first_reply", seconds=60)
    alice, sam = await d.connect("alice"), await d.connect("sam")
    await alice.call("status", {"status": "online"})
    await start_session(d, alice)
    await d.advance(60)
    [alert] = await sam.wait("alert.raised")
    resp = await client.post(f"/api/alerts/{alert['id']}/clear", headers={"Authorization": f"Bearer {sam.token}"})
    assert resp.status == 200
    for s in d.sockets:
        await s.close()
    await client.close()
    clock.advance(30)
    client2 = await aiohttp_client(create_app(hub_config, clock))
    d2 = Desk(client2, clock)
    await asyncio.sleep(0.3)
    await d2.hub.timers.fire_due()
    await asyncio.sleep(0.1)
    # the supervisor acknowledged this breach: a restart does not raise it again
    assert await d2.alerts() == []
    assert [a["clear_reason"] for a in await d2.alerts("all")] == ["acknowledged"]


async def test_an_alert_raised_by_another_process_clears_when_met(desk):  # noqa: F811
    """With several processes the one that sees the reply may not know the alert another one raised
    after its last resync: the next resync clears it (it is not left open for good)."""
    await desk.rule(kind="first_reply", seconds=60)
    alice, sam = await desk.connect("alice"), await desk.connect("sam")
    await alice.call("status", {"status": "online"})
    session = await start_session(desk, alice)
    await desk.advance(60)
    [alert] = await sam.wait("alert.raised")
    engine = desk.client.server.app[SUPERVISION].alerts
    engine.open.clear()  # as if another process had raised it since this one's last resync
    assert (await alice.call("reply", {"session_id": session["id"], "text": "您好"}))["ok"]
    await engine.resync()
    assert await desk.alerts() == []
    [done] = await desk.alerts("all")
    assert done["id"] == alert["id"] and done["clear_reason"] == "replied"
    [cleared] = await sam.wait("alert.cleared")
    assert cleared["id"] == alert["id"]


async def test_an_alert_of_a_session_closed_in_another_process_clears(desk):  # noqa: F811
    await desk.rule(kind="first_reply", seconds=60)
    alice, sam = await desk.connect("alice"), await desk.connect("sam")
    await alice.call("status", {"status": "online"})
    session = await start_session(desk, alice)
    await desk.advance(60)
    [alert] = await sam.wait("alert.raised")
    engine = desk.client.server.app[SUPERVISION].alerts
    engine.open.clear()
    assert (await alice.call("close", {"session_id": session["id"]}))["ok"]
    await engine.resync()
    assert await desk.alerts() == []
    [done] = await desk.alerts("all")
    assert done["clear_reason"] == "closed"


def hold_alert_writes(engine) -> tuple[asyncio.Event, asyncio.Event]:  # noqa: ANN001
    """Alerts the engine raises wait before they are written: ``writing`` is set when one is, and it
    goes on when ``release`` is set."""
    release, writing = asyncio.Event(), asyncio.Event()
    store_raise = engine.store.raise_alert

    async def slow_raise(values, at):  # noqa: ANN001, ANN202
        writing.set()
        await release.wait()
        return await store_raise(values, at)

    engine.store.raise_alert = slow_raise
    return release, writing


async def test_a_reply_while_the_breach_is_being_stored_clears_it(desk):  # noqa: F811
    """The deadline fired and the alert is being written (behind other writes) when the agent replies:
    the reply found no open alert to clear; the alert must not then stay open (nor escalate)."""
    await desk.rule(kind="first_reply", seconds=60, escalation="reassign")
    alice, sam = await desk.connect("alice"), await desk.connect("sam")
    await alice.call("status", {"status": "online"})
    session = await start_session(desk, alice)
    engine = desk.client.server.app[SUPERVISION].alerts
    release, writing = hold_alert_writes(engine)
    firing = asyncio.ensure_future(desk.advance(60))
    await asyncio.wait_for(writing.wait(), 5)
    assert (await alice.call("reply", {"session_id": session["id"], "text": "您好"}))["ok"]
    release.set()
    await asyncio.wait_for(firing, 5)
    assert await desk.alerts() == []
    [done] = await desk.alerts("all")
    assert done["clear_reason"] == "replied"
    assert [e["kind"] for e in done["timeline"]] == ["raised", "cleared"]  # not escalated: it was met
    assert (await desk.hub.sessions._get(session["id"])).agent_id == session["agent_id"]


async def test_a_close_while_a_quality_alert_is_being_stored_clears_it(desk):  # noqa: F811
    alice = await desk.connect("alice")
    await alice.call("status", {"status": "online"})
    session = await start_session(desk, alice)
    engine = desk.client.server.app[SUPERVISION].alerts
    release, writing = hold_alert_writes(engine)
    raising = asyncio.ensure_future(engine.raise_quality(1, "客户情绪预警", session["id"], {"words": ["投诉"]}))
    await asyncio.wait_for(writing.wait(), 5)
    assert (await alice.call("close", {"session_id": session["id"]}))["ok"]
    release.set()
    await asyncio.wait_for(raising, 5)
    assert await desk.alerts() == []
    [done] = await desk.alerts("all")
    assert done["kind"] == "quality" and done["clear_reason"] == "closed"


async def test_an_acknowledged_average_alert_is_not_raised_again_at_the_next_slow_reply(desk):  # noqa: F811
    await desk.rule(kind="avg_reply", seconds=120, window=3, min_samples=2)
    alice, sam = await desk.connect("alice"), await desk.connect("sam")
    await alice.call("status", {"status": "online"})
    session = await start_session(desk, alice)

    async def slow_exchange(n: int, wait: float) -> None:
        await desk.customer_says("wmSla1", f"还在吗{n}")
        await alice.wait("message.new", where=lambda d: d["message"]["text"] == f"还在吗{n}")
        await desk.advance(wait)
        assert (await alice.call("reply", {"session_id": session["id"], "text": "在的"}))["ok"]

    await desk.advance(200)
    await alice.call("reply", {"session_id": session["id"], "text": "您好"})
    await slow_exchange(0, 200)  # average 200 > 120
    [raised] = await sam.wait("alert.raised")
    assert raised["kind"] == "avg_reply"
    resp = await desk.client.post(f"/api/alerts/{raised['id']}/clear", headers={"Authorization": f"Bearer {sam.token}"})
    assert resp.status == 200
    await slow_exchange(1, 150)  # still above: the breach the supervisor acknowledged goes on
    await asyncio.sleep(0.2)
    assert [e for e in sam.events if e[0] == "alert.raised"] == [("alert.raised", raised)]
    assert await desk.alerts() == []
    # ... and a restart does not raise it again either
    engine = desk.client.server.app[SUPERVISION].alerts
    engine._acknowledged.clear()
    engine._acknowledged_averages.clear()
    await engine.start()
    assert await desk.alerts() == []
    # once the average is back under the limit, a new breach is raised again
    for n in range(2, 5):
        await slow_exchange(n, 5)
    for n in range(5, 8):
        await slow_exchange(n, 300)
    [again] = await desk.alerts()
    assert again["kind"] == "avg_reply" and again["id"] != raised["id"]


async def test_a_reply_in_a_session_this_process_had_not_seen_clears_its_alert_at_once(desk):  # noqa: F811
    """Several processes: the session was handed over in another one (no clock here), its alert is known
    from a resync; the reply handled here clears it now, not at the next resync."""
    await desk.rule(kind="first_reply", seconds=60)
    alice, sam = await desk.connect("alice"), await desk.connect("sam")
    await alice.call("status", {"status": "online"})
    session = await start_session(desk, alice)
    await desk.advance(60)
    [alert] = await sam.wait("alert.raised")
    engine = desk.client.server.app[SUPERVISION].alerts
    engine.clocks.clear()
    assert (await alice.call("reply", {"session_id": session["id"], "text": "您好"}))["ok"]
    [cleared] = await sam.wait("alert.cleared")
    assert cleared["id"] == alert["id"] and cleared["clear_reason"] == "replied"
    assert await desk.alerts() == []


async def test_a_transfer_while_the_breach_is_being_stored_clears_it_and_arms_the_new_holders_clock(desk):  # noqa: F811
    carol_id = (await make_user(desk.hub, "carol")).id
    rule = await desk.rule(kind="first_reply", seconds=60)
    alice, carol = await desk.connect("alice"), await desk.connect("carol")
    await alice.call("status", {"status": "online"})
    session = await start_session(desk, alice)
    await carol.call("status", {"status": "online"})
    engine = desk.client.server.app[SUPERVISION].alerts
    release, writing = hold_alert_writes(engine)
    firing = asyncio.ensure_future(desk.advance(60))
    await asyncio.wait_for(writing.wait(), 5)
    ack = await alice.call("transfer", {"session_id": session["id"], "to_agent": carol_id})
    assert ack["ok"], ack
    release.set()
    await asyncio.wait_for(firing, 5)
    assert await desk.alerts() == []
    [done] = await desk.alerts("all")
    assert done["clear_reason"] == "transferred"
    # the new holder's own first-reply clock runs from the transfer
    assert desk.hub.timers.when(f"sla:{rule['id']}:{session['id']}") == pytest.approx(desk.clock.now() + 60)


async def test_an_alert_raised_by_another_process_can_be_acknowledged_at_once(desk):  # noqa: F811
    """The supervisor's request may reach a process that has not seen the alert yet (raised elsewhere
    since its last resync): it is acknowledged, not refused as "already cleared"."""
    await desk.rule(kind="first_reply", seconds=60)
    alice, sam = await desk.connect("alice"), await desk.connect("sam")
    await alice.call("status", {"status": "online"})
    await start_session(desk, alice)
    await desk.advance(60)
    [alert] = await sam.wait("alert.raised")
    desk.client.server.app[SUPERVISION].alerts.open.clear()
    sup = {"Authorization": f"Bearer {sam.token}"}
    resp = await desk.client.post(f"/api/alerts/{alert['id']}/clear", headers=sup)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["clear_reason"] == "acknowledged"
    assert (await desk.client.post(f"/api/alerts/{alert['id']}/clear", headers=sup)).status == 409
    await desk.advance(1)
    assert await desk.alerts() == []


@pytest.mark.skipif(not ON_POSTGRES, reason="several hub processes share PostgreSQL")
async def test_a_reply_clears_an_alert_another_process_raised_at_once(desk):  # noqa: F811
    await desk.rule(kind="first_reply", seconds=60)
    alice, sam = await desk.connect("alice"), await desk.connect("sam")
    await alice.call("status", {"status": "online"})
    session = await start_session(desk, alice)
    await desk.advance(60)
    [alert] = await sam.wait("alert.raised")
    desk.client.server.app[SUPERVISION].alerts.open.clear()  # raised elsewhere since our last resync
    assert (await alice.call("reply", {"session_id": session["id"], "text": "您好"}))["ok"]
    [cleared] = await sam.wait("alert.cleared")
    assert cleared["id"] == alert["id"] and cleared["clear_reason"] == "replied"


async def slow_replies(desk):  # noqa: ANN001, ANN201
    """An average-reply rule (120 s over 3 replies, 2 at least) and alice's two replies of 200 s:
    (alice, sam, session), the alert raised to sam."""
    await desk.rule(kind="avg_reply", seconds=120, window=3, min_samples=2)
    alice, sam = await desk.connect("alice"), await desk.connect("sam")
    await alice.call("status", {"status": "online"})
    session = await start_session(desk, alice)
    await desk.advance(200)
    await alice.call("reply", {"session_id": session["id"], "text": "您好"})
    await desk.customer_says("wmSla1", "还在吗")
    await alice.wait("message.new", where=lambda d: d["message"]["text"] == "还在吗")
    await desk.advance(200)
    await alice.call("reply", {"session_id": session["id"], "text": "在的"})
    return alice, sam, session


async def test_an_average_alert_acknowledged_in_another_process_is_not_raised_again(desk):  # noqa: F811
    alice, sam, session = await slow_replies(desk)
    [raised] = await sam.wait("alert.raised")
    resp = await desk.client.post(f"/api/alerts/{raised['id']}/clear", headers={"Authorization": f"Bearer {sam.token}"})
    assert resp.status == 200
    engine = desk.client.server.app[SUPERVISION].alerts
    engine._acknowledged_averages.clear()  # the acknowledgement reached another process
    await desk.customer_says("wmSla1", "还有问题")
    await alice.wait("message.new", where=lambda d: d["message"]["text"] == "还有问题")
    await desk.advance(150)
    await alice.call("reply", {"session_id": session["id"], "text": "请说"})
    await asyncio.sleep(0.2)
    assert [e for e in sam.events if e[0] == "alert.raised"] == [("alert.raised", raised)]
    assert await desk.alerts() == []


async def test_a_menu_click_after_the_reply_is_nobody_waiting_after_a_restart(desk):
    """A click stamps the session's last_customer_at like a message; read again at a start, with no
    message after the agent's reply, the clock fell back to it and raised an unanswered alert."""
    from hub.supervisor.api import SUPERVISION
    from tests.conftest import WECOM
    from tests.helpers import post
    from tests.test_sla import start_session
    from tests.wechat_client import event_xml
    await desk.rule(kind="unanswered", seconds=120)
    alice = await desk.connect("alice")
    await alice.call("status", {"status": "online"})
    session = await start_session(desk, alice)
    assert (await alice.call("reply", {"session_id": session["id"], "text": "您好"}))["ok"]
    await desk.advance(10)
    click = event_xml(WECOM["receive_id"], "wmSla1", "click", int(desk.clock.now()), EventKey="MENU1")
    assert (await post(desk.client, desk.wecom, click)).status == 200
    await desk.hub.pipeline.drain()
    await desk.client.server.app[SUPERVISION].alerts.start()  # as after a restart
    await desk.advance(200)
    assert await desk.alerts() == []


async def test_a_reassign_escalation_with_nobody_else_leaves_the_session_and_its_alert(desk):
    """With only its agent online the session came straight back to them: the alert was cleared as
    transferred and raised again each minute, and the supervisor's open list was empty in between."""
    from tests.helpers import wait_for
    from tests.test_sla import start_session
    await desk.rule(kind="first_reply", seconds=60, escalation="reassign")
    alice = await desk.connect("alice")
    await alice.call("status", {"status": "online"})
    session = await start_session(desk, alice)
    assert (await alice.call("accept", {"session_id": session["id"]}))["ok"]
    for _ in range(2):
        await desk.advance(61)

        async def skipped() -> bool:  # (the escalation is written after the alert: later on PostgreSQL)
            alerts = await desk.alerts()
            return len(alerts) == 1 and alerts[0]["timeline"][-1]["kind"] == "not_escalated"
        await wait_for(skipped)
    row = await desk.hub.sessions._get(session["id"])
    assert row.agent_id == session["agent_id"] and "session.removed" not in alice.by_name


async def test_a_reassign_escalation_of_a_queued_session_records_nothing_it_did_not_do(desk):
    from tests.helpers import wait_for
    await desk.rule(kind="first_reply", seconds=60, escalation="reassign")
    sam = await desk.connect("sam")
    await desk.customer_says("wmQ", "有人吗")  # nobody online: queued
    await wait_for(lambda: desk.hub.sessions.dispatcher.queue_snapshot())
    await desk.advance(61)
    await sam.wait("alert.raised")
    await asyncio.sleep(0.2)
    [alert] = await desk.alerts()
    assert [e["kind"] for e in alert["timeline"]] == ["raised"]


async def test_the_live_queue_push_carries_the_whole_queues_oldest(desk):
    """The push lists the first 100 in queue order (VIPs first): the page took the oldest from those and
    showed a normal customer's 10-minute wait as none until the next dashboard update."""
    from hub.routing.dispatch import QueuedSession
    sam = await desk.connect("sam")
    d = desk.hub.sessions.dispatcher
    d.enqueue(QueuedSession(900_001, "default", 0, desk.clock.now() - 600, None))
    for i in range(101):
        d.enqueue(QueuedSession(900_100 + i, "default", 10, desk.clock.now(), None))
    await desk.hub.sessions._push_queue()
    [pushed] = await sam.wait("queue.changed", where=lambda p: "queue" in p)
    assert len(pushed["queue"]) == 100 and pushed["oldest_enqueued_at"] == desk.clock.now() - 600


async def test_a_business_hours_change_moves_the_armed_deadlines(desk):
    """A first-reply deadline armed across a lunch break stayed there after the break was dropped from
    the business hours: the alert came 1.5 hours late."""
    from tests.conftest import auth
    from tests.test_sla import armed, start_session
    lunch = {str(d): [["09:00", "12:00"], ["13:30", "18:00"]] for d in range(5)}
    await desk.hub.settings.set("business_hours", {"timezone": "Asia/Shanghai", "weekly": lunch})
    rule = await desk.rule(kind="first_reply", seconds=60, business_hours_only=True)
    alice = await desk.connect("alice")
    await alice.call("status", {"status": "online"})
    desk.clock.advance(2 * 3600 - 30)  # 11:59:30 in Shanghai
    session = await start_session(desk, alice)
    key = f"sla:{rule['id']}:{session['id']}"
    await armed(desk, key, session["handover_at"] + 30 + 90 * 60 + 30)
    resp = await desk.client.put("/api/settings", headers=auth(), json={"business_hours": {
        "timezone": "Asia/Shanghai", "weekly": {str(d): [["09:00", "18:00"]] for d in range(5)}}})
    assert resp.status == 200, await resp.text()
    assert desk.hub.timers.when(key) == pytest.approx(session["handover_at"] + 60, abs=0.01)
    await desk.advance(61)
    assert len(await desk.alerts()) == 1


async def test_an_average_alert_clears_when_its_replies_age_out(desk):
    """Judged only at a reply: an agent who stopped replying kept an open average alert for good."""
    alice, sam, session = await slow_replies(desk)
    await sam.wait("alert.raised")
    await alice.call("close", {"session_id": session["id"]})
    await desk.advance(30 * 3600)  # no reply of the last 24 h counts any more
    await asyncio.sleep(0.2)
    assert await desk.alerts() == []
    [cleared] = await desk.alerts("all")
    assert cleared["clear_reason"] == "met"


@pytest.mark.parametrize("tap", [False, True], ids=["no-event", "menu-tap"])
async def test_a_menu_tap_after_the_agents_answer_is_not_a_customer_waiting(aiohttp_client, hub_config, standin, tap):
    """An Official Account event (a VIEW menu tap) stamps the session's last_customer_at: the unanswered
    timer, armed again at the next resync (each start; every second with several processes), took it
    for a message waiting for an answer and reassigned the session 5 minutes later."""
    from sqlalchemy import select

    from hub.models import ServiceSession, SessionEvent
    from tests.conftest import OA
    from tests.helpers import post
    from tests.wechat_client import PlatformSim, event_xml, text_xml
    clock = FakeClock(T0)
    client = await aiohttp_client(create_app(hub_config, clock))
    hub = client.server.app[HUB]
    oa = PlatformSim("oa", OA["id"], OA["token"], OA["encoding_aes_key"], OA["receive_id"], clock)
    await hub.settings.set("default_group", "presales")
    await hub.settings.set("unanswered_minutes", 5)
    alice = await make_user(hub, "alice")
    await hub.sessions.set_status(alice, "online")
    assert (await post(client, oa, text_xml("gh", "oTap", "转人工", 7001, int(clock.now())))).status == 200
    await hub.pipeline.drain()
    st, ev = ServiceSession.__table__, SessionEvent.__table__
    async with hub.db.read() as conn:
        [sess] = (await conn.execute(select(st))).all()
    assert sess.agent_id == alice.id
    await hub.sessions.reply(alice, sess.id, "您好，请问有什么可以帮您？")
    clock.advance(10)
    if tap:
        view = event_xml("gh", "oTap", "VIEW", int(clock.now()), EventKey="https://shop.example.com/")
        assert (await post(client, oa, view)).status == 200
    await hub.pipeline.drain()
    await hub.sessions.load()  # a resync arms the clocks again from the database
    clock.advance(301)
    await hub.timers.fire_due()
    async with hub.db.read() as conn:
        kinds = [r.kind for r in await conn.execute(select(ev.c.kind).where(ev.c.session_id == sess.id))]
        [sess] = (await conn.execute(select(st))).all()
    assert "unanswered" not in kinds and sess.agent_id == alice.id, kinds
