"""Ids, cursors and counts from requests: one past what a BIGINT column holds (2**63 - 1) is a 400
naming the parameter, or a 404 for an id in the path; it was a 500 (OverflowError on SQLite,
asyncpg's DataError on PostgreSQL). The socket's ``history`` cursor is parsed the same way."""
from __future__ import annotations

from sqlalchemy import select

from hub.models import Conversation
from tests.conftest import WECOM, auth
from tests.helpers import post
from tests.rt_helpers import Agent, login, make_user, server_url
from tests.wechat_client import text_xml

HUGE = "100000000000000000000"  # 10**20


async def _field(resp) -> str:  # noqa: ANN001
    return (await resp.json()).get("field", "")


async def test_oversized_ids_and_cursors_are_refused_not_a_500(client, hub, wecom):
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmHuge", "你好", 27001))
    await hub.pipeline.drain()
    t = Conversation.__table__
    async with hub.db.read() as conn:
        conv_id, customer_id = (await conn.execute(select(t.c.id, t.c.customer_id).where(t.c.peer_id == "wmHuge"))).one()
    for path in (f"/api/conversations/{HUGE}", f"/api/conversations/{HUGE}/messages", f"/api/customers/{HUGE}",
                 f"/api/conversations/{2 ** 63 - 1}/messages"):
        resp = await client.get(path, headers=auth())
        assert resp.status == 404, (path, await resp.text())
    assert (await client.post(f"/api/conversations/{HUGE}/messages", json={"text": "x"}, headers=auth())).status == 404
    assert (await client.post(f"/api/merges/{HUGE}/undo", headers=auth())).status == 404
    bad = [(f"/api/conversations/{conv_id}/messages?before={HUGE}", "before"),
           (f"/api/conversations/{conv_id}/messages?before=-1", "before"),
           (f"/api/conversations/{conv_id}/messages?limit={HUGE}", "limit"),
           (f"/api/tickets?before={HUGE}", "before"), (f"/api/tickets?conversation_id={HUGE}", "conversation_id"),
           (f"/api/tickets?assignee={HUGE}", "assignee"), (f"/api/orders?customer_id={HUGE}", "customer_id"),
           (f"/api/segments?min_spend_fen={HUGE}", "min_spend_fen"), (f"/api/alerts?session={HUGE}", "session"),
           (f"/api/quality/results?agent={HUGE}", "agent")]
    for path, field in bad:
        resp = await client.get(path, headers=auth())
        assert resp.status == 400 and await _field(resp) == field, (path, resp.status, await resp.text())
    posts = [("/api/customers/merge", {"source": int(HUGE), "target": customer_id, "why": "同一人"}, "source"),
             ("/api/holds", {"kind": "customer", "target_id": int(HUGE), "reason": "诉讼"}, "target_id"),
             ("/api/reveal", {"message_id": int(HUGE)}, "message_id")]
    for path, body, field in posts:
        resp = await client.post(path, json=body, headers=auth())
        assert resp.status == 400 and await _field(resp) == field, (path, resp.status, await resp.text())
    resp = await client.post("/api/routing/test", data='{"vip_level": 1e400}',
                             headers={**auth(), "Content-Type": "application/json"})
    assert resp.status == 400 and await _field(resp) == "vip_level", await resp.text()
    page = await client.get(f"/api/conversations/{conv_id}/messages?before={2 ** 63 - 1}", headers=auth())
    assert page.status == 200 and [m["text"] for m in (await page.json())["messages"]] == ["你好"]


async def test_the_socket_history_cursor_is_checked(client, hub, wecom):
    await hub.settings.set("default_group", "presales")
    await make_user(hub, "alice")
    alice = await Agent(server_url(client), await login(client, "alice")).connect()
    try:
        assert (await alice.call("status", {"status": "online"}))["ok"]
        await post(client, wecom, text_xml(WECOM["receive_id"], "wmHistory", "在吗", 27101))
        [bundle] = await alice.wait("session.new")
        sid = bundle["session"]["id"]
        for before in ("abc", HUGE, -1):
            ack = await alice.call("history", {"session_id": sid, "before": before})
            assert ack["ok"] is False and ack["error"] == "invalid_before" and ack["field"] == "before", ack
        ack = await alice.call("history", {"session_id": sid, "before": 2 ** 63 - 1})
        assert ack["ok"] and [m["text"] for m in ack["messages"]] == ["在吗"]
    finally:
        await alice.close()


async def test_path_ids_past_bigint_name_nothing_in_every_view(client, hub):
    """Ids in the path read by path_int (tickets, rules, alerts, holds, erase, users), the archive export, keyword
    watches and channel codes: one past BIGINT is the 404 an unknown id gets (these were 500s)."""
    cases = [("GET", f"/api/tickets/{HUGE}", None, "unknown_ticket"),
             ("PATCH", f"/api/tickets/{HUGE}", {"priority": "high"}, "unknown_ticket"),
             ("POST", f"/api/tickets/{HUGE}/transition", {"status": "closed"}, "unknown_ticket"),
             ("POST", f"/api/tickets/{HUGE}/comments", {"text": "x"}, "unknown_ticket"),
             ("DELETE", f"/api/ticket-rules/{HUGE}", None, "unknown_rule"),
             ("DELETE", f"/api/sla/rules/{HUGE}", None, "unknown_rule"),
             ("POST", f"/api/alerts/{HUGE}/clear", None, "unknown_alert"),
             ("DELETE", f"/api/quality/rules/{HUGE}", None, "unknown_rule"),
             ("DELETE", f"/api/routing/rules/{HUGE}", None, "unknown_rule"),
             ("PUT", f"/api/users/{HUGE}", {"cap": 3}, "unknown_user"),
             ("DELETE", f"/api/holds/{HUGE}", None, "unknown_hold"),
             ("POST", f"/api/customers/{HUGE}/erase", {"requester": "客户本人", "reason": "PIPL"}, "unknown_customer"),
             ("POST", f"/api/customers/{HUGE}/erase?dry_run=1", None, "unknown_customer"),
             ("GET", f"/api/conversations/{HUGE}/export", None, "unknown_conversation"),
             ("PUT", f"/api/watches/{HUGE}", {"enabled": False}, "unknown_watch"),
             ("DELETE", f"/api/watches/{HUGE}", None, "unknown_watch"),
             ("GET", f"/api/channels/{HUGE}", None, "unknown_channel"),
             ("PUT", f"/api/channels/{HUGE}", {"name": "x"}, "unknown_channel"),
             ("DELETE", f"/api/channels/{HUGE}", None, "unknown_channel"),
             ("GET", f"/api/channels/{HUGE}/qr.png", None, "unknown_channel"),
             ("GET", f"/api/channels/{HUGE}/stats", None, "unknown_channel")]
    wrong = []
    for method, path, body, code in cases:
        resp = await client.request(method, path, json=body, headers=auth())
        if resp.status != 404 or (await resp.json()).get("error") != code:
            wrong.append((method, path, resp.status, await resp.text()))
    assert wrong == []
    resp = await client.get(f"/api/tickets/{-1}", headers=auth())  # the route takes any text: not past BIGINT
    assert resp.status == 404 and (await resp.json())["error"] == "unknown_ticket", await resp.text()
    resp = await client.get("/api/tickets/abc", headers=auth())
    assert resp.status == 400 and await _field(resp) == "id", await resp.text()


async def test_oversized_search_watch_and_audit_parameters(client, hub):
    wrong = []
    for path, field in [(f"/api/search?q=x&agent={HUGE}", "agent"), (f"/api/search?q=x&customer={HUGE}", "customer"),
                        (f"/api/search?q=x&before={HUGE}", "before"), ("/api/search?q=x&before=-1", "before"),
                        (f"/api/watch-hits?before={HUGE}", "before"), (f"/api/watch-hits?watch={HUGE}", "watch"),
                        (f"/api/audit?page={HUGE}", "page")]:
        resp = await client.get(path, headers=auth())
        if resp.status != 400 or await _field(resp) != field:
            wrong.append((path, resp.status, await resp.text()))
    assert wrong == []
    # an actor of digits is a user id or a name: past BIGINT it can only be a name
    resp = await client.get(f"/api/audit?actor={HUGE}", headers=auth())
    assert resp.status == 200 and (await resp.json())["entries"] == [], await resp.text()
    # the last page a page number can name: its offset is past BIGINT, and no entry is there
    resp = await client.get(f"/api/audit?page={(2 ** 63 - 1) // 50 + 2}", headers=auth())
    assert resp.status == 200 and (await resp.json())["entries"] == [], await resp.text()
