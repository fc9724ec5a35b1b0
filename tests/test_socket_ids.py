"""Ids from socket events: a ``session_id`` past what a BIGINT column holds (2**63 - 1), below 0 or not an
integer is the documented ``invalid_session_id`` in every event's ack, as an id the API refuses; one past
BIGINT was an ``internal`` error (OverflowError on SQLite, asyncpg's DataError on PostgreSQL). ``to_agent``
and ``last_seq`` are read the same way ('abc' was an internal error)."""
from __future__ import annotations

from tests.conftest import WECOM
from tests.helpers import post
from tests.rt_helpers import Agent, login, make_user, server_url
from tests.wechat_client import text_xml

HUGE = 10 ** 20

SESSION_EVENTS = ("session", "history", "reply", "accept", "transfer", "close", "tag", "viewing", "typing")


async def test_socket_session_ids_past_bigint_are_invalid_session_id(client, hub, wecom):
    await hub.settings.set("default_group", "presales")
    await make_user(hub, "alice")
    alice = await Agent(server_url(client), await login(client, "alice")).connect()
    try:
        assert (await alice.call("status", {"status": "online"}))["ok"]
        await post(client, wecom, text_xml(WECOM["receive_id"], "wmSocketIds", "在吗", 27201))
        [bundle] = await alice.wait("session.new")
        sid = bundle["session"]["id"]
        wrong = []
        for event in SESSION_EVENTS:
            for session_id in (HUGE, str(HUGE), -1, "abc", True):
                ack = await alice.call(event, {"session_id": session_id, "text": "好的", "to_group": "presales"})
                if ack.get("error") != "invalid_session_id" or ack.get("field") != "session_id":
                    wrong.append((event, session_id, ack))
        assert wrong == []
        ack = await alice.call("transfer", {"session_id": sid, "to_agent": "abc"})
        assert ack["ok"] is False and ack["error"] == "invalid_to_agent" and ack["field"] == "to_agent", ack
        ack = await alice.call("transfer", {"session_id": sid, "to_agent": HUGE})
        assert ack["ok"] is False and ack["error"] == "invalid_to_agent", ack
        ack = await alice.call("resume", {"epoch": "x", "last_seq": "abc"})
        assert ack["ok"] is False and ack["error"] == "invalid_last_seq" and ack["field"] == "last_seq", ack
        # the session itself still answers
        ack = await alice.call("session", {"session_id": sid})
        assert ack["ok"] and ack["session"]["id"] == sid, ack
        assert (await alice.call("viewing", {"session_id": str(sid)}))["ok"]
        assert (await alice.call("typing", {"session_id": sid}))["ok"]
    finally:
        await alice.close()
