"""Agents' actions racing each other or a timer: each writes only while the session is as it read it
(hub/service/sessions.py ``_change``). Each race is made certain by holding one action after its read
(a gate on ``_get``/``_owned``) while the other runs; without the gate it is a few milliseconds wide."""
from __future__ import annotations

import asyncio

from sqlalchemy import select

from hub.models import ServiceSession
from tests.conftest import WECOM
from tests.helpers import post
from tests.test_realtime import alice_with_a_customer, desk, online  # noqa: F401 - desk is a fixture
from tests.rt_helpers import make_user
from tests.wechat_client import text_xml

sessions_t = ServiceSession.__table__


async def _rows(hub) -> list:  # noqa: ANN001
    async with hub.db.read() as conn:
        return (await conn.execute(select(sessions_t).order_by(sessions_t.c.id))).all()


def _held_after_read(hub, method: str, who: int) -> asyncio.Event:  # noqa: ANN001
    """``hub.sessions.<method>`` (a read) waits for the returned gate when ``who`` is the user (or, for
    ``_get``, always) after reading."""
    gate, real = asyncio.Event(), getattr(hub.sessions, method)

    async def held(*args, **kw):  # noqa: ANN002, ANN003, ANN202
        row = await real(*args, **kw)
        user = args[0] if method == "_owned" else None
        if user is None or user.id == who:
            await gate.wait()
        return row
    setattr(hub.sessions, method, held)
    return gate


async def test_a_close_that_read_before_a_transfer_leaves_the_session_with_its_new_holder(client, hub, desk, wecom):
    await make_user(hub, "alice")
    bob = await make_user(hub, "bob", groups=("aftersales",))
    await make_user(hub, "sam", role="supervisor", groups=())
    a, b, sam = await desk("alice"), await desk("bob"), await desk("sam")
    await online(a)
    await online(b)
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmRace1", "在吗", 61001))
    [bundle] = await a.wait("session.new")
    sid = bundle["session"]["id"]
    alice_id = bundle["session"]["agent_id"]
    gate = _held_after_read(hub, "_owned", alice_id)
    closing = asyncio.ensure_future(a.call("close", {"session_id": sid}))
    await asyncio.sleep(0.2)  # alice's close has read the session
    assert (await sam.call("transfer", {"session_id": sid, "to_agent": bob.id}))["ok"]
    await b.wait("session.new")
    gate.set()
    await closing
    [row] = await _rows(hub)
    if row.state == "closed":  # the close read again and closed it: bob is told, his place freed
        assert row.agent_id == bob.id and (await b.wait("session.closed"))[0]["session_id"] == sid
    load = {x.id: x.load for x in hub.sessions.dispatcher.agents()}
    held = sum(1 for r in await _rows(hub) if r.agent_id == bob.id and r.state in ("assigned", "active"))
    assert load.get(bob.id, 0) == held


async def test_an_accept_after_the_accept_timer_requeued_is_refused(client, hub, desk, wecom):
    await hub.settings.set("accept_timeout", 1)
    await make_user(hub, "alice", cap=1)
    a = await desk("alice")
    await online(a)
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmLate", "在吗", 61101))
    [bundle] = await a.wait("session.new")
    await make_user(hub, "bob", cap=2)
    await online(await desk("bob"))  # someone else who could take it: the timer takes it back
    sid, alice_id = bundle["session"]["id"], bundle["session"]["agent_id"]
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmNext", "在吗", 61102))  # to bob: alice is full
    gate = _held_after_read(hub, "_owned", alice_id)
    accepting = asyncio.ensure_future(a.call("accept", {"session_id": sid}))
    await a.wait("session.removed", timeout=5)  # the timer took it back meanwhile
    gate.set()
    ack = await accepting
    assert not ack["ok"] and ack["error"] == "session_changed"
    assert all(r.state != "active" or r.agent_id is not None for r in await _rows(hub))  # never active, unheld


async def test_a_customer_writing_while_the_session_closes_reaches_a_session(client, hub, desk, wecom):
    """The job read the open session before the bots ran; the agent closed it meanwhile: the message was
    pushed to the closed session and reached nobody."""
    a, bundle = await alice_with_a_customer(client, hub, desk, wecom, "wmBye", "在吗", 61201)
    sid = bundle["session"]["id"]
    assert (await a.call("accept", {"session_id": sid}))["ok"]
    real, delivered = hub.sessions.customer_message, asyncio.Event()

    async def after_a_close(conversation_id, message_row, row=None):  # noqa: ANN001, ANN202
        await hub.sessions.close(None, sid, "resolved")  # lands between the job's read and its delivery
        try:
            return await real(conversation_id, message_row, row)
        finally:
            delivered.set()
    hub.sessions.customer_message = after_a_close
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmBye", "还有一个问题", 61202))
    await asyncio.wait_for(delivered.wait(), 5)
    await hub.pipeline.drain()
    rows = await _rows(hub)
    assert any(r.state != "closed" for r in rows), [(r.id, r.state) for r in rows]  # a session holds it


async def test_a_close_reason_must_be_text_and_is_cut_everywhere(client, hub, desk, wecom):
    a, bundle = await alice_with_a_customer(client, hub, desk, wecom, "wmReason", "在吗", 61301)
    sid = bundle["session"]["id"]
    for bad in (5, ["x"], {"a": 1}, True):
        ack = await a.call("close", {"session_id": sid, "reason": bad})
        assert not ack["ok"] and ack["error"] == "invalid_reason", bad
    assert (await a.call("close", {"session_id": sid, "reason": "长" * 5_000}))["ok"]
    [closed] = await a.wait("session.closed")
    assert closed["reason"] == "长" * 64
    ack = await a.call("transfer", {"session_id": sid, "to_agent": bundle["session"]["agent_id"]})
    assert not ack["ok"]


async def test_a_transfer_to_an_agent_going_offline_meanwhile_stays_queued(client, hub, desk, wecom):
    """bob went offline between the transfer's pick of him and its write: his requeue read his sessions
    before this one was his, and it waited for him until the accept timeout (for ever with none)."""
    await make_user(hub, "alice")
    bob = await make_user(hub, "bob", groups=("aftersales",))
    a, b = await desk("alice"), await desk("bob")
    await online(a)
    await online(b)
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmGone", "在吗", 61401))
    [bundle] = await a.wait("session.new")
    sid = bundle["session"]["id"]
    real = hub.sessions._apply

    async def bob_leaves_first(assignment):  # noqa: ANN001, ANN202
        if assignment is not None and assignment.agent_id == bob.id:
            assert (await b.call("status", {"status": "offline"}))["ok"]
        return await real(assignment)
    hub.sessions._apply = bob_leaves_first
    await a.call("transfer", {"session_id": sid, "to_agent": bob.id})
    [row] = await _rows(hub)
    assert row.agent_id != bob.id and row.state in ("queued", "assigned"), (row.state, row.agent_id)


async def test_an_erased_customers_session_leaves_the_agents_console_at_once(client, hub, desk, wecom):
    """The console kept the chat open (messages and all) until a reload, and a reply failed."""
    from tests.conftest import auth
    a, bundle = await alice_with_a_customer(client, hub, desk, wecom, "wmErase", "请删除我的信息", 61501)
    await hub.pipeline.drain()
    customer = bundle["customer"]["customer_id"]
    resp = await client.post(f"/api/customers/{customer}/erase", headers=auth(), json={"requester": "本人"})
    assert resp.status == 200, await resp.text()
    [gone] = await a.wait("session.removed")
    assert gone == {**gone, "session_id": bundle["session"]["id"], "reason": "erased"}


async def test_the_sessions_list_carries_the_queue_as_it_is_now(client, hub, desk, wecom):
    """queue.changed comes only when the queue changes: after a reload the counter was gone."""
    await hub.settings.set("default_group", "presales")
    await make_user(hub, "alice")
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmWaits", "有人吗", 61601))  # nobody online: queued
    await hub.pipeline.drain()
    a = await desk("alice")
    ack = await a.call("sessions", {})
    assert ack["ok"] and ack["queue"] == {"presales": 1}


async def test_a_merge_updates_the_side_panel_of_the_agent_holding_the_customer(client, hub, desk, wecom):
    from hub.orders import custom
    from hub.orders.api import ORDERS
    from tests.conftest import auth
    a, bundle = await alice_with_a_customer(client, hub, desk, wecom, "wmMerge", "我的订单呢", 61701)
    await hub.pipeline.drain()
    target = bundle["customer"]["customer_id"]
    order = custom.parse_order({"platform": "custom", "order_id": "MG1", "buyer_id": "buyer-mg", "status": "paid",
                                "paid_fen": 27900, "created_at": 1_700_000_000, "modified_at": 1_700_000_000,
                                "items": [{"title": "面霜", "quantity": 1, "price_fen": 27900}]})
    await client.server.app[ORDERS].write([order], None)
    source = next(c["customer_id"] for c in await hub.customers.segment() if c["customer_id"] != target)
    resp = await client.post("/api/customers/merge", headers=auth(), json={"source": source, "target": target,
                                                                           "why": "同一人"})
    assert resp.status == 200, await resp.text()
    [update] = await a.wait("customer.updated")
    assert update["session_id"] == bundle["session"]["id"]
    assert [o["order_id"] for o in update["customer"]["orders"]] == ["MG1"]


async def test_a_session_nobody_else_could_take_stays_with_its_agent_at_the_accept_timeout(client, hub, desk, wecom):
    """Alone online, alice let a session lapse: it was taken back and handed straight back to her, every
    timeout (session.removed and session.new, a toast and a beep each time, its SLA clocks restarted)."""
    await hub.settings.set("accept_timeout", 0.5)
    a, bundle = await alice_with_a_customer(client, hub, desk, wecom, "wmAlone", "在吗", 61301)
    await asyncio.sleep(1.6)  # three timeouts
    assert [e for e, _ in a.events if e in ("session.removed", "session.new")] == ["session.new"]
    [row] = await _rows(hub)
    assert row.state == "assigned" and row.agent_id == bundle["session"]["agent_id"]
    assert (await a.call("accept", {"session_id": row.id}))["ok"]
