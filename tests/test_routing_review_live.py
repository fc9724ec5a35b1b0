"""Review of the agent's live session list and routing (real Socket.IO clients against a running hub)."""
from __future__ import annotations

from tests.conftest import WECOM
from tests.helpers import post
from tests.rt_helpers import Agent, login, make_user, server_url
from tests.test_realtime import alice_with_a_customer, desk, online  # noqa: F401 - desk is the fixture (agents connected by name)
from tests.wechat_client import text_xml


async def test_a_session_assigned_while_the_list_is_read_is_not_lost(client, hub, desk, wecom, monkeypatch):
    """The `sessions` ack promises: the list reflects everything up to its `seq`, later events have a
    higher seq. A session assigned after the list was read but before the ack's seq was taken got a
    seq <= the ack's seq and was not in the list: the console dropped its session.new as already
    applied (or removed it when the list came), and the customer's session was gone from the list."""
    await make_user(hub, "alice")
    alice = await desk("alice")
    await online(alice)
    sessions = hub.sessions
    read_list = sessions.list_for

    async def list_then_a_customer_arrives(user):  # noqa: ANN001, ANN202
        listed = await read_list(user)
        await post(client, wecom, text_xml(WECOM["receive_id"], "wmRace", "你好，在吗", 61001))
        await hub.pipeline.drain()
        return listed

    monkeypatch.setattr(sessions, "list_for", list_then_a_customer_arrives)
    ack = await alice.call("sessions")
    assert ack["ok"], ack
    [new] = await alice.wait("session.new")
    listed = {s["id"] for s in ack["sessions"]}
    # the console keeps the session only if the list has it or its event comes after the list's seq
    assert new["session"]["id"] in listed or new["seq"] > ack["seq"], (ack["seq"], new["seq"], listed)


async def test_a_transfer_to_the_agents_own_group_goes_to_a_colleague(client, hub, desk, wecom):
    """An agent hands a session to their own skill group ("someone else of 售前, please"): the least
    loaded agent of the group was the one who had just released it, so it came straight back to them
    (session.removed 'transferred', then session.new of the same session) while a colleague had room."""
    await make_user(hub, "alice")
    await make_user(hub, "carol")
    alice, carol = await desk("alice"), await desk("carol")
    await online(alice)
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmOwn1", "你好", 62001))
    [first] = await alice.wait("session.new")
    await online(carol)
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmOwn2", "在吗", 62002))
    await carol.wait("session.new")
    sid = first["session"]["id"]
    ack = await alice.call("transfer", {"session_id": sid, "to_group": "presales", "note": "请同事接一下"})
    assert ack["ok"], ack
    await alice.wait("session.removed")
    [moved] = (await carol.wait("session.new", count=2))[-1:]
    assert moved["session"]["id"] == sid and moved["session"]["group"] == "presales"
    assert not [b for b in alice.by_name["session.new"] if b["session"]["id"] == sid and b is not first]
    assert hub.sessions.dispatcher.agent_of(sid) != first["session"]["agent_id"]


async def test_a_status_set_in_one_tab_reaches_the_agents_other_tab(client, hub, desk):
    """Two consoles of one agent: going 离开 (or offline) in one tab left the other showing 在线 (the
    console applies agent.status for its own user, but it went to the supervisors' room only), so the
    agent waited in the other tab for customers that no longer came."""
    await make_user(hub, "alice")
    tab1, tab2 = await desk("alice"), await desk("alice")
    await online(tab1)
    assert (await tab1.call("status", {"status": "away"}))["ok"]
    [me] = [u for u in hub.sessions.agents.values() if u.username == "alice"]
    got = await tab2.wait("agent.status", where=lambda d: d["status"] == "away")
    assert got[-1]["agent_id"] == me.id
    assert (await tab2.call("status", {"status": "online"}))["ok"]
    await tab1.wait("agent.status", where=lambda d: d["status"] == "online", count=2)


async def test_a_reopened_session_shows_the_new_question_and_its_suggestions(client, hub, desk):
    """A customer back within reopen_window reopens their closed session, routed by what they ask now;
    the session kept the old first message, FAQ suggestions and VIP level, so the agent's console showed
    推荐回答 for the previous question (and 首条消息, the list preview, the ticket title from it)."""
    from hub.service.sessions import Handover
    from tests.test_dashboard_api import new_conversation
    alice = await make_user(hub, "alice")
    await hub.sessions.set_status(alice, "online")
    conv = await new_conversation(hub, "wmBack")
    old = [{"id": 1, "question": "敏感肌能用吗", "answer": "可以放心使用", "score": 90}]
    first = await hub.sessions.route(Handover(conv, "acme-wecom", "面霜敏感肌能用吗", old))
    await hub.sessions.close(alice, first["id"], "resolved")
    new = [{"id": 2, "question": "怎么退货", "answer": "在订单页申请退货", "score": 88}]
    again = await hub.sessions.route(Handover(conv, "acme-wecom", "我要退货，面霜过敏了", new, vip_level=2))
    assert again["id"] == first["id"]  # reopened
    [listed] = await hub.sessions.list_for(alice)
    assert listed["first_message"] == "我要退货，面霜过敏了"
    assert listed["suggestions"] == new
    assert listed["vip_level"] == 2


async def test_the_transfer_note_reaches_the_agent_who_gets_the_session(client, hub, desk, wecom):
    """The transfer dialog asks for a note for the colleague ("客户要退货，已核对订单"); it was only written
    to the session's timeline, so the agent who got the session never saw it."""
    alice_user = await make_user(hub, "alice")
    carol_user = await make_user(hub, "carol")
    alice, carol = await desk("alice"), await desk("carol")
    await online(alice)
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmNote", "发票怎么开", 63001))
    [bundle] = await alice.wait("session.new")
    assert bundle["transfer"] is None
    await online(carol)
    sid = bundle["session"]["id"]
    ack = await alice.call("transfer", {"session_id": sid, "to_agent": carol_user.id, "note": "发票问题，麻烦跟进"})
    assert ack["ok"], ack
    [moved] = await carol.wait("session.new")
    assert moved["transfer"]["note"] == "发票问题，麻烦跟进"
    assert moved["transfer"]["from_agent"] == alice_user.id
    again = await carol.call("session", {"session_id": sid})  # a reload shows it too
    assert again["transfer"]["note"] == "发票问题，麻烦跟进"


async def test_a_reply_that_accepts_a_kf_session_hands_it_to_the_agent_on_the_platform(client, hub, wecom, standin):
    """Replying to a session 待接入 accepts it (docs/realtime.md, and the console says 直接回复也会自动接入),
    but only the 接入 button told 微信客服 that a person serves the customer now (service_state 3): a
    session accepted by replying stayed in the platform's 待接入池, and the accept never reached the
    session's observers."""
    from tests.wechat_client import event_xml
    await hub.settings.set("default_group", "presales")
    standin.add_kf_message("wkR", {"msgid": "r1", "open_kfid": "wkR", "external_userid": "wmKfReply",
                                   "send_time": int(hub.clock.now()), "origin": 3, "msgtype": "text", "text": {"content": "转人工"}})
    await make_user(hub, "alice")
    seen = []

    async def observe(change):  # noqa: ANN001, ANN202
        seen.append(change.kind)

    hub.sessions.observers.append(observe)
    alice = await Agent(server_url(client), await login(client, "alice")).connect()
    try:
        await online(alice)
        await post(client, wecom, event_xml(WECOM["receive_id"], "sys", "kf_msg_or_event", Token="T", OpenKfId="wkR"))
        [bundle] = await alice.wait("session.new")
        sid = bundle["session"]["id"]
        ack = await alice.call("reply", {"session_id": sid, "text": "您好，请问有什么可以帮您", "client_id": "k1"})
        assert ack["ok"], ack
        states = [(c["external_userid"], c["service_state"], c.get("servicer_userid", "")) for c in standin.state_changes]
        assert states == [("wmKfReply", 2, ""), ("wmKfReply", 3, "alice")]
        assert seen.index("accepted") < seen.index("agent_reply")
        assert (await hub.sessions.list_for(hub.sessions.agents[bundle["session"]["agent_id"]]))[0]["state"] == "active"
    finally:
        await alice.close()


async def test_a_transfer_to_a_group_nobody_is_in_is_refused(client, hub, desk, wecom):
    """A group name with a typo queued the customer in a group no agent serves (the session left the
    agent's list and waited for ever); a name that is no text was an internal error on PostgreSQL."""
    alice, first = await alice_with_a_customer(client, hub, desk, wecom, "wmTypo", "你好", 63001)
    sid = first["session"]["id"]
    ack = await alice.call("transfer", {"session_id": sid, "to_group": "售前组"})
    assert not ack["ok"] and ack["error"] == "unknown_group", ack
    ack = await alice.call("transfer", {"session_id": sid, "to_group": 7})
    assert not ack["ok"] and ack["error"] == "invalid_group", ack
    assert hub.sessions.dispatcher.agent_of(sid) == first["session"]["agent_id"]
    assert not alice.by_name["session.removed"]


async def test_a_phone_number_in_a_transfer_note_is_masked_like_one_in_a_message(client, hub, desk, wecom):
    """The note is free text an agent types ("客户手机 13812345678，要改地址"): an agent who may not see a
    customer's personal data sees the number masked there, as in the customer's messages."""
    await make_user(hub, "alice")
    carol_user = await make_user(hub, "carol")
    alice, carol = await desk("alice"), await desk("carol")
    await online(alice)
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmNotePii", "改地址", 64001))
    [bundle] = await alice.wait("session.new")
    await online(carol)
    sid = bundle["session"]["id"]
    ack = await alice.call("transfer", {"session_id": sid, "to_agent": carol_user.id,
                                        "note": "客户手机 13812345678，要改地址"})
    assert ack["ok"], ack
    [moved] = await carol.wait("session.new")
    note = moved["transfer"]["note"]
    assert "13812345678" not in note and note.startswith("客户手机 138") and note.endswith("，要改地址"), note
    assert "13812345678" not in (await carol.call("session", {"session_id": sid}))["transfer"]["note"]


async def test_a_handover_after_the_bot_answered_is_routed_by_what_the_customer_asked(client, hub, oa):
    """The FAQ answered "怎么申请退货？", then the customer said "转人工": the session was routed by "转人工" (to
    the default group, past the 退货 rule), and the agent and the dashboard saw "转人工" as the question."""
    from sqlalchemy import select

    from hub.models import ServiceSession
    from tests.conftest import auth
    from tests.helpers import make_groups
    await make_groups(hub, "aftersales")
    await hub.settings.set("default_group", "presales")
    await hub.kb.create_many([{"question": "怎么申请退货？", "similar": ["我要退货"], "answer": "订单页点“申请售后”即可。",
                               "category": "售后", "enabled": True}])
    rule = {"name": "退货", "conditions": [{"kind": "keywords_any", "value": ["退货"]}], "actions": {"group": "aftersales"}}
    assert (await client.post("/api/routing/rules", json=rule, headers=auth())).status == 201
    await post(client, oa, text_xml("gh", "oAsked", "怎么申请退货？", 6101))
    await hub.pipeline.drain()
    await post(client, oa, text_xml("gh", "oAsked", "转人工", 6102))
    await hub.pipeline.drain()
    async with hub.db.read() as conn:
        [row] = (await conn.execute(select(ServiceSession.__table__))).all()
    assert row.group == "aftersales" and row.first_message == "怎么申请退货？ / 转人工"
