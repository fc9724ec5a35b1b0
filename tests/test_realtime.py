"""Socket.IO with real python-socketio clients against a running hub: login, routing a customer
callback to the right agent, replies reaching the platform, transfer, offline requeue, resume."""
from __future__ import annotations

import asyncio

import pytest
import socketio

from tests.conftest import WECOM
from tests.helpers import messages, post
from tests.rt_helpers import Agent, login, make_user, server_url
from tests.wechat_client import text_xml


@pytest.fixture
async def desk(client, hub):
    await hub.settings.set("default_group", "presales")
    agents: list[Agent] = []

    async def connect(username: str, **auth) -> Agent:  # noqa: ANN003
        agent = await Agent(server_url(client), await login(client, username)).connect(**auth)
        agents.append(agent)
        return agent

    yield connect
    for a in agents:
        await a.close()


async def online(agent: Agent) -> None:
    assert (await agent.call("status", {"status": "online"}))["ok"]


async def alice_with_a_customer(client, hub, desk, wecom, peer: str, text: str, msg_id: int):  # noqa: ANN001, ANN201
    """Agent alice online at her desk, and the session.new of a customer ``peer`` who wrote ``text``."""
    await make_user(hub, "alice")
    alice = await desk("alice")
    await online(alice)
    await post(client, wecom, text_xml(WECOM["receive_id"], peer, text, msg_id))
    [bundle] = await alice.wait("session.new")
    return alice, bundle


async def test_socket_requires_login(client, hub):
    sio = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(server_url(client), transports=["websocket"], wait_timeout=3)
    sio = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(server_url(client), auth={"token": "forged"}, transports=["websocket"], wait_timeout=3)
    assert (await client.post("/api/login", json={"username": "nobody", "password": "x" * 8})).status == 401


async def test_callback_reaches_agent_and_reply_reaches_platform(client, hub, desk, wecom, standin):
    alice, bundle = await alice_with_a_customer(client, hub, desk, wecom, "wmCust1", "这款面霜敏感肌能用吗", 20001)
    assert bundle["session"]["state"] == "assigned" and bundle["session"]["group"] == "presales"
    assert bundle["history"][-1]["text"] == "这款面霜敏感肌能用吗"
    assert bundle["customer"]["identities"][0]["value"] == "wmCust1"
    sid = bundle["session"]["id"]
    # the next customer message goes straight to her
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmCust1", "在吗？", 20002))
    [msg] = await alice.wait("message.new", where=lambda d: d["message"]["direction"] == "in")
    assert msg["session_id"] == sid and msg["message"]["text"] == "在吗？"
    ack = await alice.call("reply", {"session_id": sid, "text": "您好，可以放心使用~", "client_id": "c1"})
    assert ack["ok"] and ack["message_id"]
    await hub.outbound.drain()
    assert standin.sent[-1]["body"]["text"]["content"] == "您好，可以放心使用~"
    assert standin.sent[-1]["path"] == "/cgi-bin/externalcontact/add_msg_template"
    out = await messages(hub, direction="out", sender=f"agent:{bundle['session']['agent_id']}")
    assert len(out) == 1 and out[0].status == "sent"
    # the same client_id again (a retry after a flaky network) does not send twice
    assert (await alice.call("reply", {"session_id": sid, "text": "您好，可以放心使用~", "client_id": "c1"}))["ok"]
    await hub.outbound.drain()
    assert len([s for s in standin.sent if s["body"]["text"]["content"] == "您好，可以放心使用~"]) == 1
    assert (await alice.call("close", {"session_id": sid, "reason": "resolved"}))["ok"]
    await alice.wait("session.closed")


async def test_routes_to_the_right_group_by_rule(client, hub, desk, oa):
    from hub.models import RoutingRule
    async with hub.db.write() as conn:
        await conn.execute(RoutingRule.__table__.insert().values(
            position=1, enabled=True, name="售后关键词", updated_at=0,
            data='{"conditions": [{"kind": "keywords_any", "value": ["退货", "退款"]}], "actions": {"group": "aftersales"}}'))
    await make_user(hub, "alice")
    await make_user(hub, "bob", groups=("aftersales",))
    alice, bob = await desk("alice"), await desk("bob")
    await online(alice)
    await online(bob)
    await post(client, oa, text_xml("gh_1", "oRefund", "我要退货，怎么操作", 21001))
    [bundle] = await bob.wait("session.new")
    assert bundle["session"]["group"] == "aftersales"
    await post(client, oa, text_xml("gh_1", "oPre", "有优惠券吗", 21002))
    [bundle] = await alice.wait("session.new")
    assert bundle["session"]["group"] == "presales"
    assert not [e for e in alice.events if e[0] == "session.new" and e[1]["session"]["group"] == "aftersales"]


async def test_transfer_to_another_agent(client, hub, desk, wecom):
    await make_user(hub, "alice")
    await make_user(hub, "carol")
    alice, carol = await desk("alice"), await desk("carol")
    await online(alice)
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmT", "你好", 22001))
    [bundle] = await alice.wait("session.new")
    await online(carol)
    carol_id = (await (await client.get("/api/me", headers={"Authorization": f"Bearer {carol.token}"})).json())["user"]["id"]
    ack = await alice.call("transfer", {"session_id": bundle["session"]["id"], "to_agent": carol_id, "note": "她更懂"})
    assert ack["ok"], ack
    [moved] = await carol.wait("session.new")
    assert moved["session"]["id"] == bundle["session"]["id"] and moved["session"]["agent_id"] == carol_id
    await alice.wait("session.removed")


async def test_a_supervisor_moves_a_waiting_session_to_another_group(client, hub, desk, wecom):
    """Nobody of presales is online: the session waits; a supervisor moves it to aftersales, where
    an agent comes online and gets it (the move failed with 'internal', the queue kept the old group)."""
    await make_user(hub, "sam", role="supervisor", groups=("presales",))
    await make_user(hub, "bob", groups=("aftersales",))
    sam, bob = await desk("sam"), await desk("bob")
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmWait", "有人吗", 22501))
    await hub.pipeline.drain()
    [queued] = [q for q in hub.sessions.dispatcher.queue_snapshot()]
    ack = await sam.call("transfer", {"session_id": queued.session_id, "to_group": "aftersales"})
    assert ack["ok"], ack
    assert [q.group for q in hub.sessions.dispatcher.queue_snapshot()] == ["aftersales"]
    await online(bob)
    [bundle] = await bob.wait("session.new")
    assert bundle["session"]["id"] == queued.session_id and bundle["session"]["group"] == "aftersales"


async def test_offline_agent_sessions_requeued_to_colleague(client, hub, desk, wecom):
    await make_user(hub, "alice")
    await make_user(hub, "carol")
    alice, carol = await desk("alice"), await desk("carol")
    await online(alice)
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmOff", "你好", 23001))
    [bundle] = await alice.wait("session.new")
    await online(carol)
    assert (await alice.call("status", {"status": "offline"}))["ok"]
    [moved] = await carol.wait("session.new")
    assert moved["session"]["id"] == bundle["session"]["id"]


async def test_offline_grace_set_in_the_console_applies_without_a_restart(client, hub, desk):
    """PUT /api/settings offline_grace takes effect for the next disconnection (it was copied into
    presence once at start: the setting was saved and audited, and the grace stayed 60 s)."""
    from sqlalchemy import select

    from hub.models import User
    from tests.conftest import auth
    from tests.helpers import wait_for

    users = User.__table__

    alice_user = await make_user(hub, "alice")
    assert (await client.put("/api/settings", json={"offline_grace": 600}, headers=auth())).status == 200
    alice = await desk("alice")
    await online(alice)
    await alice.close()
    await wait_for(lambda: alice_user.id in hub.presence._offline_timers)
    timer = hub.presence._offline_timers[alice_user.id]
    assert timer.when() - asyncio.get_running_loop().time() > 590
    alice = await desk("alice")  # back in time: the timer is cancelled
    await online(alice)
    assert (await client.put("/api/settings", json={"offline_grace": 1}, headers=auth())).status == 200
    await alice.close()

    async def offline() -> bool:
        async with hub.db.read() as conn:
            return (await conn.execute(select(users.c.status).where(users.c.id == alice_user.id))).scalar() == "offline"

    assert not await offline()
    await wait_for(offline, timeout=5)


async def test_queue_then_assign_when_capacity_frees(client, hub, desk, wecom, standin):
    await hub.settings.set("queue_notify", True)
    await make_user(hub, "alice", cap=1)
    alice = await desk("alice")
    await online(alice)
    for i, name in enumerate(("第一位", "第二位", "第三位")):
        await post(client, wecom, text_xml(WECOM["receive_id"], f"wmQ{i}", name, 24001 + i))
        await hub.pipeline.drain()  # one after the other, as customers arrive
    [first] = await alice.wait("session.new")
    await hub.outbound.drain()
    notices = [s["body"]["text"]["content"] for s in standin.sent]
    assert "您是下一位，请稍候，客服马上为您服务。" in notices and "您前面还有 1 位，请稍候，客服马上为您服务。" in notices
    assert (await alice.call("close", {"session_id": first["session"]["id"]}))["ok"]
    bundles = await alice.wait("session.new", count=2)
    assert bundles[1]["session"]["first_message"] == "第二位"  # the oldest waiting one, at once


async def test_missed_events_resume_in_order(client, hub, desk, wecom):
    alice, bundle = await alice_with_a_customer(client, hub, desk, wecom, "wmR", "一", 25001)
    last = alice.seqs()[-1]
    epoch = bundle["epoch"]
    await alice.close()  # the laptop sleeps
    for i in range(5):
        await post(client, wecom, text_xml(WECOM["receive_id"], "wmR", f"离线消息{i}", 25002 + i))
    await hub.pipeline.drain()
    again = await desk("alice", epoch=epoch, last_seq=last)
    got = await again.wait("message.new", count=5)
    assert [m["message"]["text"] for m in got] == [f"离线消息{i}" for i in range(5)]
    assert again.seqs() == list(range(last + 1, last + 6))  # in order, nothing doubled
    # an unknown epoch (the hub restarted) is told to resync instead
    other = await desk("alice", epoch="stale", last_seq=3)
    await other.wait("resync")


async def test_two_people_on_one_session_see_each_other(client, hub, desk, wecom):
    await make_user(hub, "alice")
    await make_user(hub, "sam", role="supervisor", groups=("presales",))
    alice, sam = await desk("alice"), await desk("sam")
    await online(alice)
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmV", "你好", 26001))
    [bundle] = await alice.wait("session.new")
    sid = bundle["session"]["id"]
    assert (await alice.call("viewing", {"session_id": sid}))["ok"]
    assert (await sam.call("viewing", {"session_id": sid}))["ok"]
    seen = await alice.wait("presence.viewing", where=lambda d: len(d["viewers"]) == 2)
    assert {v["name"] for v in seen[-1]["viewers"]} == {"alice", "sam"}
    assert (await sam.call("typing", {"session_id": sid}))["ok"]
    [typing] = await alice.wait("presence.typing")
    assert typing["user"]["name"] == "sam"


async def test_agent_cannot_touch_others_sessions(client, hub, desk, wecom):
    await make_user(hub, "alice")
    await make_user(hub, "bob", groups=("aftersales",))
    alice, bob = await desk("alice"), await desk("bob")
    await online(alice)
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmX", "你好", 27001))
    [bundle] = await alice.wait("session.new")
    ack = await bob.call("reply", {"session_id": bundle["session"]["id"], "text": "hi"})
    assert ack == {"ok": False, "error": "forbidden", "message": "this session is not yours"}
    ack = await bob.call("reply", {"session_id": "x", "text": "hi"})
    assert ack["ok"] is False and ack["error"] == "invalid_session_id"
    # nor watch who views it, nor show alice a "typing" of theirs
    sid = bundle["session"]["id"]
    assert (await alice.call("viewing", {"session_id": sid}))["ok"]
    ack = await bob.call("viewing", {"session_id": sid})
    assert ack["ok"] is False and ack["error"] == "forbidden"
    ack = await bob.call("typing", {"session_id": sid})
    assert ack["ok"] is False and ack["error"] == "forbidden"
    await asyncio.sleep(0.2)
    assert not [e for e in alice.events if e[0] == "presence.typing"]
    assert all(len(d["viewers"]) == 1 for name, d in alice.events if name == "presence.viewing")


async def test_concurrent_sessions_never_over_cap_or_doubled(client, hub, desk, wecom):
    caps = {"a1": 3, "a2": 2, "a3": 4}
    for name, cap in caps.items():
        await make_user(hub, name, cap=cap)
    agents = {name: await desk(name) for name in caps}
    for a in agents.values():
        await online(a)
    await asyncio.gather(*(post(client, wecom, text_xml(WECOM["receive_id"], f"wmMany{i}", f"咨询{i}", 28000 + i))
                           for i in range(30)))
    await hub.pipeline.drain()
    # an assignment that lost a race (PostgreSQL's guard) is released and the queue handed out again
    # by a resync a moment later: the agents fill up by then, not always by the end of the jobs
    for name, a in agents.items():
        await a.wait("session.new", count=caps[name])
    await asyncio.sleep(0.2)  # anything extra (a double assignment, one over cap) would arrive by now
    from sqlalchemy import select
    from hub.models import ServiceSession
    t = ServiceSession.__table__
    async with hub.db.read() as conn:
        rows = (await conn.execute(select(t))).all()
    assert len(rows) == 30 and len({r.conversation_id for r in rows}) == 30
    held: dict[int, int] = {}
    for r in rows:
        if r.agent_id:
            held[r.agent_id] = held.get(r.agent_id, 0) + 1
    users = {u.username: u.id for u in await __import__("hub.users", fromlist=["x"]).list_users(hub.db)}
    for name, cap in caps.items():
        assert held.get(users[name], 0) == cap  # full, never over
    assert sum(1 for r in rows if r.state == "queued") == 30 - sum(caps.values())
    got = [b["session"]["id"] for a in agents.values() for b in a.by_name["session.new"]]
    assert len(got) == len(set(got)) == sum(caps.values())  # nobody was handed a session twice


async def test_live_pushes_to_an_agent_mask_personal_data(client, hub, desk, wecom, standin):
    """session.new and message.new carry phone numbers masked for an agent; the archive and the
    platform keep the real text (the agent reveals it with an audited action)."""
    alice, bundle = await alice_with_a_customer(client, hub, desk, wecom, "wmPii", "我的电话 13812345678 人工", 20101)
    assert "13812345678" not in str(bundle) and "138****5678" in bundle["history"][-1]["text"]
    sid = bundle["session"]["id"]
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmPii", "地址改成 13900001111 收", 20102))
    [msg] = await alice.wait("message.new", where=lambda d: d["message"]["direction"] == "in")
    assert msg["message"]["text"] == "地址改成 139****1111 收" and msg["message"]["masked"] is True
    assert (await alice.call("reply", {"session_id": sid, "text": "好的，已记下 13900001111"}))["ok"]
    [mine] = await alice.wait("message.new", where=lambda d: d["message"]["direction"] == "out")
    assert mine["message"]["text"] == "好的，已记下 139****1111"
    await hub.outbound.drain()
    assert standin.sent[-1]["body"]["text"]["content"] == "好的，已记下 13900001111"
    stored = await messages(hub, direction="in")
    assert any(m.text == "地址改成 13900001111 收" for m in stored)


async def test_a_disabled_agent_can_do_nothing_more_with_an_open_socket(client, hub, desk, monkeypatch):
    """Disabled (or logged out) while the console is open: the socket's next action is refused and
    the socket dropped; the agent is not set online nor given customers."""
    from sqlalchemy import update

    from hub import realtime
    from hub.models import User

    alice = await make_user(hub, "alice")
    agent = await desk("alice")
    async with hub.db.write() as conn:
        await conn.execute(update(User.__table__).where(User.__table__.c.id == alice.id).values(disabled=True))
    monkeypatch.setattr(realtime, "RECHECK", 0.0)  # (the socket's user is checked again every few seconds)
    ack = await agent.call("status", {"status": "online"})
    assert ack["ok"] is False and ack["error"] == "unauthorized"
    assert all(a.status != "online" for a in hub.sessions.dispatcher.agents() if a.id == alice.id)


async def test_a_replys_delivery_status_is_pushed_with_the_reason_it_failed(client, hub, desk, wecom, standin):
    alice, bundle = await alice_with_a_customer(client, hub, desk, wecom, "wmStatus", "发货了吗", 20301)
    sid = bundle["session"]["id"]
    ok = await alice.call("reply", {"session_id": sid, "text": "已经发货了"})
    [sent] = await alice.wait("message.status")
    assert sent["session_id"] == sid and sent["message_id"] == ok["message_id"] and sent["status"] == "sent"
    assert "seq" in sent  # in her stream: a reconnect replays it
    standin.fail_next = [45015]  # out of the platform's reply window: permanent
    failed_id = (await alice.call("reply", {"session_id": sid, "text": "请查收"}))["message_id"]
    [failed] = await alice.wait("message.status", where=lambda d: d["message_id"] == failed_id)
    assert failed["status"] == "failed" and failed["error"]["errcode"] == 45015 and failed["error"]["errmsg"]
    # the history says why too (a console opened later)
    ack = await alice.call("history", {"session_id": sid})
    [m] = [m for m in ack["messages"] if m["id"] == failed_id]
    assert m["status"] == "failed" and m["data"]["error"]["errcode"] == 45015


async def test_a_reply_that_fails_after_its_session_closed_still_reaches_its_writer(client, hub, desk, wecom):
    """微信客服 reports some failures after it took the message (the customer's session had closed on
    its side, the 48-hour window): the agent has closed the session by then, and is told all the same,
    with the customer and the reply, since that session has left their list."""
    alice, bundle = await alice_with_a_customer(client, hub, desk, wecom, "wmLate", "发货了吗", 20351)
    sid = bundle["session"]["id"]
    ok = await alice.call("reply", {"session_id": sid, "text": "明天发货"})
    await alice.wait("message.status", where=lambda d: d["message_id"] == ok["message_id"])  # sent
    assert (await alice.call("close", {"session_id": sid, "reason": "resolved"}))["ok"]
    assert await hub.outbound.failed_after_send(ok["message_id"], 3_000_005, "会话已关闭")
    [late] = await alice.wait("message.status", where=lambda d: d.get("closed"))
    assert late["session_id"] == sid and late["message_id"] == ok["message_id"] and late["status"] == "failed"
    assert late["error"] == {"errcode": 3_000_005, "errmsg": "会话已关闭"} and late["text"] == "明天发货"
    assert late["customer"] and "seq" in late  # whom it was for; in her stream (a reconnect replays it)
    # the history says so too
    async with hub.db.read() as conn:
        from hub.models import Message
        t = Message.__table__
        assert (await conn.execute(t.select().where(t.c.id == ok["message_id"]))).first().status == "failed"


async def test_a_reply_too_long_for_its_channel_is_refused_at_once(client, hub, desk, wecom, standin):
    alice, bundle = await alice_with_a_customer(client, hub, desk, wecom, "wmLong", "详细说说", 20401)
    sid = bundle["session"]["id"]
    ack = await alice.call("reply", {"session_id": sid, "text": "好" * 1334})  # 4,002 bytes: WeCom takes 4,000
    assert ack["ok"] is False and ack["error"] == "invalid_text" and "4000 bytes" in ack["message"]
    assert (await alice.call("reply", {"session_id": sid, "text": "好" * 1333}))["ok"]


async def test_an_open_console_follows_its_users_role_without_acting(client, hub, desk, monkeypatch):
    """A supervisor demoted (or disabled) while their console sits open: within a few seconds their
    socket leaves the supervisors' room (customers' words in watch hits, the dashboard) or is
    dropped, without waiting for them to act."""
    from sqlalchemy import update

    from hub import realtime
    from hub.models import User
    from hub.push import SUPERVISORS

    sue = await make_user(hub, "sue", role="supervisor")
    await make_user(hub, "alice")
    console = await desk("sue")
    agent = await desk("alice")
    await hub.push.to_room(SUPERVISORS, "note.test", {"i": 1})
    await console.wait("note.test")
    monkeypatch.setattr(realtime, "RECHECK", 0.0)  # (every few seconds in production)
    users = User.__table__
    async with hub.db.write() as conn:
        await conn.execute(update(users).where(users.c.id == sue.id).values(role="agent"))
    await hub.sio.namespace_handlers["/"].recheck_idle()
    await hub.push.to_room(SUPERVISORS, "note.test", {"i": 2})
    await asyncio.sleep(0.3)
    assert [d["i"] for d in console.by_name["note.test"]] == [1]
    # disabled: the socket is dropped
    alice = next(u for u in hub.sessions.agents.values() if u.username == "alice")
    async with hub.db.write() as conn:
        await conn.execute(update(users).where(users.c.id == alice.id).values(disabled=True))
    await hub.sio.namespace_handlers["/"].recheck_idle()
    await asyncio.sleep(0.5)
    assert not agent.sio.connected


async def test_the_lists_preview_is_not_the_hubs_queue_notice(client, hub, desk, wecom):
    """A queued customer's row previewed "您是下一位，请稍候…" (the hub's own notice to them), not their question."""
    await make_user(hub, "sam", role="supervisor", groups=())
    await hub.settings.set("queue_notify", True)
    sam = await desk("sam")
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmQueued", "会员积分怎么兑换", 73001))
    await hub.pipeline.drain()
    await hub.outbound.drain()
    assert any(m.sender == "system" for m in await messages(hub, peer_id="wmQueued"))  # the notice went out
    [listed] = (await sam.call("sessions"))["sessions"]
    assert listed["state"] == "queued" and listed["last_message"]["text"] == "会员积分怎么兑换"
