"""Unread counts of the session list: a returning customer's new session counts what they wrote since
their previous session ended, not their whole past."""
from __future__ import annotations

import asyncio

import pytest

from hub.clock import FakeClock
from tests.conftest import WECOM
from tests.helpers import post
from tests.rt_helpers import make_user
from tests.wechat_client import text_xml

T0 = 1_732_500_000.0


@pytest.fixture
def clock():
    return FakeClock(T0)


async def test_a_returning_customers_new_session_counts_only_the_new_message(client, hub, wecom):  # noqa: ANN001
    alice = await make_user(hub, "alice")
    await hub.settings.set("default_group", "presales")
    await hub.settings.set("reopen_window", 0)  # a new session, not the old one reopened
    await hub.sessions.set_status(alice, "online")
    to = WECOM["receive_id"]
    for i, text in enumerate(("面霜敏感肌能用吗", "还有小样吗", "在吗")):
        hub.clock.advance(5)
        await post(client, wecom, text_xml(to, "wmBack", text, 60001 + i))
        await hub.pipeline.drain()
    [first] = await hub.sessions.list_for(alice)
    assert first["unread"] == 3
    hub.clock.advance(5)
    await hub.sessions.reply(alice, first["id"], "可以的", "c1")
    hub.clock.advance(5)
    await hub.sessions.close(alice, first["id"], "resolved")

    hub.clock.advance(3600)  # the next day, so to speak
    await post(client, wecom, text_xml(to, "wmBack", "上次的面霜到了，怎么用", 60010))
    await hub.pipeline.drain()
    [again] = await hub.sessions.list_for(alice)
    assert again["id"] != first["id"]
    assert again["unread"] == 1


async def test_a_supervisors_list_counts_every_sessions_unread_in_two_queries(client, hub, wecom):  # noqa: ANN001
    from sqlalchemy import event
    alice = await make_user(hub, "alice", cap=50)
    sam = await make_user(hub, "sam", role="supervisor", groups=())
    await hub.settings.set("default_group", "presales")
    await hub.sessions.set_status(alice, "online")
    to = WECOM["receive_id"]
    written = {}
    for c in range(12):  # customer c writes c + 1 messages
        for i in range(c + 1):
            hub.clock.advance(1)
            await post(client, wecom, text_xml(to, f"wmMany{c}", f"第{i}个问题", 70000 + c * 100 + i))
        written[f"wmMany{c}"] = c + 1
    await hub.pipeline.drain()
    mine = await hub.sessions.list_for(alice)
    answered = mine[0]
    hub.clock.advance(5)
    await hub.sessions.reply(alice, answered["id"], "您好", "c-many")
    hub.clock.advance(5)
    await post(client, wecom, text_xml(to, answered["peer_id"], "谢谢", 79999))
    await hub.pipeline.drain()
    written[answered["peer_id"]] = 1  # since the answer
    await hub.settings.set("reopen_window", 0)
    await post(client, wecom, text_xml(to, "wmBack", "上次的面霜", 79001))  # a returning customer, after them all
    await hub.pipeline.drain()
    [back] = [s for s in await hub.sessions.list_for(alice) if s["peer_id"] == "wmBack"]
    await hub.sessions.reply(alice, back["id"], "好的", "c-back")
    hub.clock.advance(5)
    await hub.sessions.close(alice, back["id"], "resolved")
    hub.clock.advance(5)
    await post(client, wecom, text_xml(to, "wmBack", "到了，怎么用", 79002))
    await hub.pipeline.drain()
    written["wmBack"] = 1  # since their last session ended (the others' counts do not start there)

    statements = []
    me = asyncio.current_task()

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        # this task's reads of the archive only: the hub's background work (the pipeline, PostgreSQL's
        # rebuilds) reads beside it, and a fresh connection sets itself up first
        if asyncio.current_task() is me and ("service_sessions" in statement or "messages" in statement):
            statements.append(statement)

    # SQLite: the loop thread's reads; PostgreSQL: the kept read connections and the pool behind them
    engines = [hub.db.sync_engine] if hub.db.sync_engine else [hub.db.engine.sync_engine, hub.db.readers.engine.sync_engine]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        listed = await hub.sessions.list_for(sam)
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)
    assert {s["peer_id"]: s["unread"] for s in listed} == written
    assert len(statements) == 2  # the sessions with their counts, their last messages; one or two per session before
    assert all(s["last_message"]["direction"] == "in" for s in listed)
    assert {s["peer_id"]: s["last_message"]["text"] for s in listed}["wmMany5"] == "第5个问题"
    assert [s["id"] for s in await hub.sessions.list_for(alice)] == [s["id"] for s in listed]
