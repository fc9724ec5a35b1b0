"""SLA alerts end to end on a controllable clock: first-response and unanswered deadlines fire as
scheduled timers, raise stored alerts pushed to supervisors and the agent, clear when met, survive a
restart, count business hours only when asked, escalate; the bot's time never counts."""
from __future__ import annotations

import asyncio

import pytest

from hub.app import HUB, create_app
from hub.clock import FakeClock
from hub.supervisor.api import SUPERVISION
from tests.conftest import WECOM, auth
from tests.helpers import post, wait_for
from tests.rt_helpers import Agent, login, make_user, server_url
from tests.wechat_client import PlatformSim, text_xml

T0 = 1_732_500_000.0  # Mon 2024-11-25 02:00 UTC = 10:00 Asia/Shanghai


class Desk:
    """A hub on a fake clock, an online agent and a supervisor on real Socket.IO clients."""

    def __init__(self, client, clock: FakeClock):  # noqa: ANN001
        self.client, self.clock = client, clock
        self.hub = client.server.app[HUB]
        self.wecom = PlatformSim("wecom", WECOM["id"], WECOM["token"], WECOM["encoding_aes_key"], WECOM["receive_id"],
                                 clock)
        self.sockets: list[Agent] = []
        self.msg_id = 30000

    async def connect(self, username: str) -> Agent:
        agent = await Agent(server_url(self.client), await login(self.client, username)).connect()
        self.sockets.append(agent)
        return agent

    async def customer_says(self, peer: str, text: str) -> None:
        self.msg_id += 1
        resp = await post(self.client, self.wecom, text_xml(WECOM["receive_id"], peer, text, self.msg_id,
                                                            int(self.clock.now())))
        assert resp.status == 200

    async def rule(self, **body) -> dict:  # noqa: ANN003
        resp = await self.client.post("/api/sla/rules", json=body, headers=auth())
        assert resp.status == 201, await resp.text()
        return await resp.json()

    async def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await self.hub.timers.fire_due()

    async def alerts(self, state: str = "open") -> list[dict]:
        resp = await self.client.get(f"/api/alerts?state={state}", headers=auth())
        assert resp.status == 200
        return (await resp.json())["alerts"]


async def open_desk(aiohttp_client, hub_config, clock: FakeClock, users: tuple[str, ...] = ("alice", "sam")) -> Desk:
    """A hub on ``clock`` with the presales group as default, no reassign timer, and the given users of
    alice (agent) and sam (supervisor)."""
    client = await aiohttp_client(create_app(hub_config, clock))
    d = Desk(client, clock)
    await d.hub.settings.set("default_group", "presales")
    await d.hub.settings.set("unanswered_minutes", 0)  # the #5 reassign timer stays out of these tests
    if "alice" in users:
        await make_user(d.hub, "alice")
    if "sam" in users:
        await make_user(d.hub, "sam", role="supervisor", groups=())
    return d


@pytest.fixture
async def desk(aiohttp_client, hub_config):
    d = await open_desk(aiohttp_client, hub_config, FakeClock(T0))
    yield d
    for s in d.sockets:
        await s.close()


async def armed(desk: Desk, key: str, at: float) -> None:
    """The clock ``key`` is set for ``at``. The alert engine arms it as it learns of the session's change,
    which may come just after the agent's push (and with several processes from its resync)."""
    await wait_for(lambda: (desk.hub.timers.when(key) or 0) == pytest.approx(at, abs=0.01))


async def start_session(desk: Desk, alice: Agent, peer: str = "wmSla1") -> dict:
    """The customer ``peer`` asks; the new session ``alice`` is given (a peer's earlier sessions'
    ``session.new`` are passed over: the second session of a customer is the second event)."""
    def of_peer(b: dict) -> bool:
        return b["customer"]["identities"][0]["value"] == peer
    before = len([b for b in alice.by_name["session.new"] if of_peer(b)])
    await desk.customer_says(peer, "这款面霜敏感肌能用吗")
    return (await alice.wait("session.new", count=before + 1, where=of_peer))[-1]["session"]


async def test_first_reply_alert_raised_at_deadline_and_cleared_by_reply(desk):
    rule = await desk.rule(kind="first_reply", seconds=60, name="首响 60 秒")
    alice, sam = await desk.connect("alice"), await desk.connect("sam")
    assert (await alice.call("status", {"status": "online"}))["ok"]
    session = await start_session(desk, alice)
    key = f"sla:{rule['id']}:{session['id']}"
    await armed(desk, key, session["handover_at"] + 60)
    await desk.advance(59)
    assert await desk.alerts() == []
    await desk.advance(1)
    [raised] = await sam.wait("alert.raised")
    assert raised["kind"] == "first_reply" and raised["session_id"] == session["id"]
    assert raised["agent_id"] == session["agent_id"] and raised["rule_name"] == "首响 60 秒"
    assert raised["deadline"] == pytest.approx(session["handover_at"] + 60)
    [mine] = await alice.wait("alert.raised")
    assert mine["id"] == raised["id"]
    [stored] = await desk.alerts()
    assert stored["state"] == "open" and [e["kind"] for e in stored["timeline"]] == ["raised"]
    # the agent's own view
    resp = await desk.client.get("/api/alerts?mine=1", headers={"Authorization": f"Bearer {alice.token}"})
    assert [a["id"] for a in (await resp.json())["alerts"]] == [raised["id"]]
    # a reply meets it: cleared at once, to both
    await desk.advance(5)
    assert (await alice.call("reply", {"session_id": session["id"], "text": "您好，可以的"}))["ok"]
    [cleared] = await sam.wait("alert.cleared")
    assert cleared["id"] == raised["id"] and cleared["state"] == "cleared" and cleared["clear_reason"] == "replied"
    await alice.wait("alert.cleared")
    assert await desk.alerts() == []
    [done] = await desk.alerts("all")
    assert [e["kind"] for e in done["timeline"]] == ["raised", "cleared"]
    assert done["cleared_at"] == pytest.approx(T0 + 65, abs=1)


async def test_reply_before_deadline_cancels_the_timer(desk):
    rule = await desk.rule(kind="first_reply", seconds=60)
    alice = await desk.connect("alice")
    await alice.call("status", {"status": "online"})
    session = await start_session(desk, alice)
    key = f"sla:{rule['id']}:{session['id']}"
    assert key in desk.hub.timers.pending("sla:")
    await desk.advance(30)
    await alice.call("reply", {"session_id": session["id"], "text": "您好"})
    assert key not in desk.hub.timers.pending("sla:")
    await desk.advance(120)
    assert await desk.alerts("all") == []


async def test_unanswered_counts_from_the_oldest_unanswered_message_and_rearms(desk):
    rule = await desk.rule(kind="unanswered", seconds=120)
    alice, sam = await desk.connect("alice"), await desk.connect("sam")
    await alice.call("status", {"status": "online"})
    session = await start_session(desk, alice)
    await alice.call("reply", {"session_id": session["id"], "text": "您好"})
    key = f"sla:{rule['id']}:{session['id']}"
    assert key not in desk.hub.timers.pending("sla:")  # nobody is waiting
    await desk.advance(10)
    await desk.customer_says("wmSla1", "订单什么时候发货")
    await wait_for(lambda: desk.hub.timers.when(key) is not None)
    first = desk.hub.timers.when(key)
    assert first == pytest.approx(T0 + 10 + 120, abs=1)
    await desk.advance(60)
    await desk.customer_says("wmSla1", "在吗？")  # a second message does not push the deadline out
    await alice.wait("message.new", count=2, where=lambda d: d["message"]["direction"] == "in")
    assert desk.hub.timers.when(key) == first
    await desk.advance(60)
    [raised] = await sam.wait("alert.raised")
    assert raised["kind"] == "unanswered" and raised["deadline"] == pytest.approx(first)
    await alice.call("reply", {"session_id": session["id"], "text": "马上为您查询"})
    await sam.wait("alert.cleared")
    # a new wait re-arms from the next customer message
    await desk.advance(5)
    await desk.customer_says("wmSla1", "好的谢谢")
    await wait_for(lambda: (desk.hub.timers.when(key) or 0) == pytest.approx(desk.clock.now() + 120, abs=1))


async def test_close_clears_and_reopen_starts_new_clocks(desk):
    rule = await desk.rule(kind="first_reply", seconds=60)
    alice, sam = await desk.connect("alice"), await desk.connect("sam")
    await alice.call("status", {"status": "online"})
    session = await start_session(desk, alice)
    await desk.advance(61)
    await sam.wait("alert.raised")
    await alice.call("close", {"session_id": session["id"], "reason": "resolved"})
    [cleared] = await sam.wait("alert.cleared")
    assert cleared["clear_reason"] == "closed"
    await desk.advance(100)  # within the reopen window: the same session reopens
    await desk.customer_says("wmSla1", "我又想问一下")
    again = (await alice.wait("session.new", count=2))[1]
    assert again["session"]["id"] == session["id"]
    key = f"sla:{rule['id']}:{session['id']}"
    # the new first-response clock starts at the new handover, not the old one
    await armed(desk, key, again["session"]["handover_at"] + 60)
    assert again["session"]["handover_at"] == pytest.approx(T0 + 161, abs=1)


async def test_bot_time_is_not_first_response_time(desk):
    """The customer talks with the bot for minutes; the clock starts at the handover."""
    rule = await desk.rule(kind="first_reply", seconds=60)
    alice = await desk.connect("alice")
    await alice.call("status", {"status": "online"})
    await desk.customer_says("wmBot", "你好")  # greeting: the bot answers, no handover
    await desk.advance(300)
    session = await start_session(desk, alice, "wmBot")
    assert session["handover_at"] >= T0 + 300
    await armed(desk, f"sla:{rule['id']}:{session['id']}", session["handover_at"] + 60)
    # ... and the supervisor's figures show those minutes with the bot (they showed 0: a session was
    # created at its handover)
    assert (await bot_time_avg(desk)) == pytest.approx(300, abs=1)
    # closed, then the customer is back: bot time counts from their first message since the close
    await alice.call("close", {"session_id": session["id"], "reason": "resolved"})
    await desk.advance(3600)  # past the reopen window: a new session
    await desk.customer_says("wmBot", "你好")
    await desk.advance(120)
    await start_session(desk, alice, "wmBot")
    assert (await bot_time_avg(desk)) == pytest.approx((300 + 120) / 2, abs=1)


async def bot_time_avg(desk: Desk) -> float:
    from hub.supervisor.stats import Stats
    await desk.hub.pipeline.drain()
    return (await Stats(desk.hub.db, desk.hub.clock, desk.hub.settings).today())["total"]["bot_time_avg"]


async def test_timers_survive_a_restart_and_overdue_ones_fire_at_once(aiohttp_client, hub_config):
    clock = FakeClock(T0)
    d = await open_desk(aiohttp_client, hub_config, clock, users=("alice",))
    rule = await d.rule(kind="first_reply", seconds=60)
    alice = await d.connect("alice")
    await alice.call("status", {"status": "online"})
    session = await start_session(d, alice)
    await alice.close()
    await d.client.close()  # the hub stops with the deadline still ahead
    clock.advance(90)  # ... and is down past it
    client2 = await aiohttp_client(create_app(hub_config, clock))
    hub2 = client2.server.app[HUB]
    d2 = Desk(client2, clock)
    # rebuilt from the archive at start; the overdue timer was armed with no delay and fires by itself
    alerts = await wait_for(lambda: d2.alerts(), timeout=5)
    assert alerts[0]["session_id"] == session["id"] and alerts[0]["rule_id"] == rule["id"]
    assert alerts[0]["deadline"] == pytest.approx(session["handover_at"] + 60)
    assert hub2.timers.pending("sla:") == []


async def test_business_hours_pause_the_clock(desk):
    """09:00-12:00 and 13:30-18:00 Shanghai; a handover at 11:59:30 with a 60 s SLA is due at 13:30:30."""
    await desk.hub.settings.set("business_hours", {"timezone": "Asia/Shanghai", "weekly": {
        str(d): [["09:00", "12:00"], ["13:30", "18:00"]] for d in range(5)}})
    rule = await desk.rule(kind="first_reply", seconds=60, business_hours_only=True)
    alice = await desk.connect("alice")
    await alice.call("status", {"status": "online"})
    desk.clock.advance(2 * 3600 - 30 - 10 * 0)  # 10:00 -> 11:59:30
    session = await start_session(desk, alice)
    assert (await alice.call("accept", {"session_id": session["id"]}))["ok"]  # no requeue over lunch
    due = session["handover_at"] + 30 + 90 * 60 + 30
    await armed(desk, f"sla:{rule['id']}:{session['id']}", due)
    await desk.advance(31)  # 12:00:01: lunch, nothing fires
    assert await desk.alerts() == []
    await desk.advance(due - desk.clock.now() - 1)
    assert await desk.alerts() == []
    await desk.advance(1.001)
    assert len(await desk.alerts()) == 1


async def test_escalation_reassigns_to_a_colleague(desk):
    await make_user(desk.hub, "carol")
    await desk.rule(kind="first_reply", seconds=60, escalation="reassign")
    alice, carol = await desk.connect("alice"), await desk.connect("carol")
    await alice.call("status", {"status": "online"})
    session = await start_session(desk, alice)
    assert session["agent_id"] == (await desk.hub.sessions._get(session["id"])).agent_id
    await carol.call("status", {"status": "online"})
    await desk.advance(61)
    [removed] = await alice.wait("session.removed")
    assert removed["reason"] == "sla_breach"
    [bundle] = await carol.wait("session.new")
    assert bundle["session"]["id"] == session["id"]
    [alert] = await desk.alerts("all")
    assert [e["kind"] for e in alert["timeline"]] == ["raised", "escalated", "cleared"]
    assert alert["timeline"][1]["data"] == {"action": "reassign", "from_agent": session["agent_id"]}
    assert alert["clear_reason"] == "transferred"


async def test_escalation_notifies_a_named_supervisor(desk):
    sam_user = next(a for a in desk.hub.sessions.agents.values() if a.username == "sam")
    await desk.rule(kind="first_reply", seconds=60, escalation="notify", notify_user_id=sam_user.id)
    alice, sam = await desk.connect("alice"), await desk.connect("sam")
    await alice.call("status", {"status": "online"})
    await start_session(desk, alice)
    await desk.advance(60)
    [note] = await sam.wait("alert.escalated")
    assert note["kind"] == "first_reply"
    [alert] = await desk.alerts()
    assert alert["timeline"][1]["data"] == {"action": "notify", "user_id": sam_user.id}


async def test_rolling_average_reply_time(desk):
    await desk.rule(kind="avg_reply", seconds=120, window=3, min_samples=2)
    alice, sam = await desk.connect("alice"), await desk.connect("sam")
    await alice.call("status", {"status": "online"})
    session = await start_session(desk, alice)
    await desk.advance(200)
    await alice.call("reply", {"session_id": session["id"], "text": "您好"})  # waited 200 s
    await desk.customer_says("wmSla1", "还在吗")
    await alice.wait("message.new", where=lambda d: d["message"]["text"] == "还在吗")
    await desk.advance(100)
    await alice.call("reply", {"session_id": session["id"], "text": "在的"})  # 100 s: average 150 > 120
    [raised] = await sam.wait("alert.raised")
    assert raised["kind"] == "avg_reply" and raised["agent_id"] == session["agent_id"]
    assert raised["detail"]["average"] == pytest.approx(150, abs=1)
    for n in range(2):
        await desk.customer_says("wmSla1", f"好的{n}")
        await alice.wait("message.new", where=lambda d, n=n: d["message"]["text"] == f"好的{n}")
        await desk.advance(10)
        await alice.call("reply", {"session_id": session["id"], "text": "嗯嗯"})
    [cleared] = await sam.wait("alert.cleared")  # (100 + 10 + 10) / 3 = 40 <= 120
    assert cleared["clear_reason"] == "met"
    # the average is derived again from the archive by a fresh engine
    engine = desk.hub.sessions.observers[0].__self__
    await engine.start()
    rule = next(r for r in engine.rules if r.kind == "avg_reply")
    assert engine.average(rule, session["agent_id"]) == pytest.approx(40, abs=1)


async def test_rule_validation_and_roles(desk):
    for body, field in (({"kind": "nope", "seconds": 5}, "kind"), ({"kind": "first_reply", "seconds": -1}, "seconds"),
                        ({"kind": "first_reply", "seconds": 5, "escalation": "notify"}, "notify_user_id"),
                        ({"kind": "avg_reply", "seconds": 5, "escalation": "reassign"}, "escalation"),
                        ({"kind": "first_reply", "seconds": 5, "business_hours_only": "yes"}, "business_hours_only")):
        resp = await desk.client.post("/api/sla/rules", json=body, headers=auth())
        assert resp.status == 400 and (await resp.json())["field"] == field
    resp = await desk.client.post("/api/sla/rules", data="{", headers=auth())
    assert resp.status == 400
    rule = await desk.rule(kind="first_reply", seconds=60)
    resp = await desk.client.put(f"/api/sla/rules/{rule['id']}", json={"seconds": 90}, headers=auth())
    assert (await resp.json())["seconds"] == 90
    assert (await desk.client.put("/api/sla/rules/999", json={}, headers=auth())).status == 404
    agent = {"Authorization": f"Bearer {await login(desk.client, 'alice')}"}
    sup = {"Authorization": f"Bearer {await login(desk.client, 'sam')}"}
    for method, path in (("GET", "/api/sla/rules"), ("POST", "/api/sla/rules"), ("PUT", f"/api/sla/rules/{rule['id']}"),
                         ("DELETE", f"/api/sla/rules/{rule['id']}"), ("GET", "/api/alerts"),
                         ("GET", "/api/alerts?state=all"), ("POST", "/api/alerts/1/clear")):
        resp = await desk.client.request(method, path, json={}, headers=agent)
        assert resp.status == 403, (method, path)
    assert (await desk.client.get("/api/sla/rules", headers=sup)).status == 200
    assert (await desk.client.post("/api/sla/rules", json={"kind": "first_reply", "seconds": 5},
                                   headers=sup)).status == 403
    assert (await desk.client.get("/api/alerts?state=bogus", headers=sup)).status == 400
    assert (await desk.client.get("/api/alerts?agent=x", headers=sup)).status == 400
    desk.client.session.cookie_jar.clear()  # the logins above left a cookie
    assert (await desk.client.get("/api/alerts")).status == 401
    assert (await desk.client.delete(f"/api/sla/rules/{rule['id']}", headers=auth())).status == 200
    assert (await desk.client.delete(f"/api/sla/rules/{rule['id']}", headers=auth())).status == 404


async def test_supervisor_acknowledges_an_alert(desk):
    await desk.rule(kind="first_reply", seconds=60)
    alice, sam = await desk.connect("alice"), await desk.connect("sam")
    await alice.call("status", {"status": "online"})
    await start_session(desk, alice)
    await desk.advance(60)
    [alert] = await sam.wait("alert.raised")
    sup = {"Authorization": f"Bearer {sam.token}"}
    resp = await desk.client.post(f"/api/alerts/{alert['id']}/clear", headers=sup)
    assert resp.status == 200 and (await resp.json())["clear_reason"] == "acknowledged"
    assert (await desk.client.post(f"/api/alerts/{alert['id']}/clear", headers=sup)).status == 409
    assert (await desk.client.post("/api/alerts/99999/clear", headers=sup)).status == 404
    # acknowledged: the same breach is not raised (nor escalated) again
    await asyncio.sleep(0.2)
    await desk.advance(1)
    assert [e for e in sam.events if e[0] == "alert.raised"] == [("alert.raised", alert)]
    assert await desk.alerts() == []


async def test_a_breach_in_the_queue_shows_red_to_whoever_gets_the_session(desk):
    await desk.rule(kind="first_reply", seconds=60)
    alice, sam = await desk.connect("alice"), await desk.connect("sam")
    await desk.customer_says("wmQueue", "有人吗")  # nobody online: the session waits in the queue
    await wait_for(lambda: desk.hub.sessions.dispatcher.queue_snapshot())
    await desk.advance(61)
    [raised] = await sam.wait("alert.raised")
    assert raised["agent_id"] is None
    await alice.call("status", {"status": "online"})
    [bundle] = await alice.wait("session.new")
    [mine] = await alice.wait("alert.raised")
    assert mine["id"] == raised["id"] and bundle["session"]["id"] == raised["session_id"]
    resp = await desk.client.get("/api/alerts?mine=1", headers={"Authorization": f"Bearer {alice.token}"})
    assert [a["id"] for a in (await resp.json())["alerts"]] == [raised["id"]]
    await alice.call("reply", {"session_id": raised["session_id"], "text": "您好，让您久等了"})
    [cleared] = await alice.wait("alert.cleared")
    assert cleared["clear_reason"] == "replied"


async def test_resync_rearms_clocks_a_process_did_not_see(desk):
    """With several processes a session can change in another one: resync re-derives the clocks from
    the database, and an alert still fires once at its deadline."""
    rule = await desk.rule(kind="first_reply", seconds=60)
    alice, sam = await desk.connect("alice"), await desk.connect("sam")
    await alice.call("status", {"status": "online"})
    session = await start_session(desk, alice)
    key = f"sla:{rule['id']}:{session['id']}"
    engine = desk.client.server.app[SUPERVISION].alerts
    engine.clocks.clear()  # as if the session had been handed over in another process
    desk.hub.timers.cancel(key)
    assert key not in desk.hub.timers.pending("sla:")
    await engine.resync()
    assert desk.hub.timers.when(key) == pytest.approx(session["handover_at"] + 60)
    await engine.resync()  # idempotent: one timer, one alert
    await desk.advance(61)
    [raised] = await sam.wait("alert.raised")
    assert raised["session_id"] == session["id"] and len(await desk.alerts()) == 1
