"""Work orders end to end over HTTP and Socket.IO: create from a conversation, rule routing, visibility,
the status flow (valid and invalid moves), history, custom types, overdue alerts with a fake clock."""
from __future__ import annotations

import pytest

from hub.clock import FakeClock
from hub.models import Conversation, ServiceSession
from hub.tickets.api import TICKETS
from tests.conftest import auth
from tests.helpers import make_groups
from tests.rt_helpers import Agent, login, make_user, server_url

T0 = 1_732_500_000.0


@pytest.fixture
def clock():
    return FakeClock(T0)


async def conversation_with_session(hub, agent_id: int, group: str = "presales", customer_id: int | None = 42) -> tuple[int, int]:  # noqa: ANN001
    async with hub.db.write() as conn:
        cid = (await conn.execute(Conversation.__table__.insert().values(
            account_id="acme-wecom", channel="wecom", thread="", peer_id=f"p{agent_id}-{group}", created_at=T0,
            customer_id=customer_id))).inserted_primary_key[0]
        sid = (await conn.execute(ServiceSession.__table__.insert().values(
            conversation_id=cid, account_id="acme-wecom", state="active", group=group, agent_id=agent_id,
            created_at=T0, handover_at=T0))).inserted_primary_key[0]
    return cid, sid


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def people(client, hub):  # noqa: ANN001
    alice = await make_user(hub, "alice", groups=("presales",))
    bob = await make_user(hub, "bob", groups=("aftersales",))
    carol = await make_user(hub, "carol", groups=("vip",))
    sup = await make_user(hub, "sam", role="supervisor", groups=())
    tokens = {u.username: bearer(await login(client, u.username)) for u in (alice, bob, carol, sup)}
    return {"alice": alice, "bob": bob, "carol": carol, "sam": sup, "h": tokens}


async def test_create_from_session_routes_by_rule_and_flows_through_statuses(client, hub, people):  # noqa: ANN001
    h = people["h"]
    r = await client.post("/api/ticket-rules", headers=auth(), json={"name": "破损转售后", "keywords": ["破损"],
                                                                      "group": "aftersales"})
    assert r.status == 201, await r.text()
    rule = await r.json()
    cid, sid = await conversation_with_session(hub, people["alice"].id)
    bob_socket = await Agent(server_url(client), h["bob"]["Authorization"][7:]).connect()
    try:
        r = await client.post("/api/tickets", headers=h["alice"], json={
            "session_id": sid, "type": "return", "title": "商品破损要求退货", "description": "收到时外箱破损"})
        assert r.status == 201, await r.text()
        t = await r.json()
        assert t["group"] == "aftersales" and t["rule_id"] == rule["id"] and t["status"] == "open"
        assert t["conversation_id"] == cid and t["session_id"] == sid and t["customer_id"] == 42
        assert t["priority"] == "normal" and t["due_at"] == T0 + 24 * 3600 and t["created_by"] == people["alice"].id
        created = await bob_socket.wait("ticket.created")  # bob's group room
        assert created[0]["ticket"]["id"] == t["id"]
    finally:
        await bob_socket.close()

    # visibility: creator and the group see it; another group's agent does not
    for who, sees in (("alice", True), ("bob", True), ("carol", False), ("sam", True)):
        listed = await (await client.get("/api/tickets", headers=h[who])).json()
        assert (t["id"] in [x["id"] for x in listed["tickets"]]) is sees, who
    assert (await client.get(f"/api/tickets/{t['id']}", headers=h["carol"])).status == 403
    assert (await client.post(f"/api/tickets/{t['id']}/transition", headers=h["carol"],
                              json={"status": "in_progress"})).status == 403

    # the flow: invalid moves are 409 with the allowed ones named; valid ones recorded in the history
    url = f"/api/tickets/{t['id']}/transition"
    r = await client.post(url, headers=h["bob"], json={"status": "resolved"})
    assert r.status == 409 and (await r.json())["error"] == "invalid_transition"
    r = await client.post(url, headers=h["bob"], json={"status": "finished"})
    assert r.status == 400 and (await r.json())["field"] == "status"
    for status in ("in_progress", "resolved", "in_progress", "resolved", "closed"):
        r = await client.post(url, headers=h["bob"], json={"status": status, "note": f"→{status}"})
        assert r.status == 200, await r.text()
    done = await r.json()
    assert done["status"] == "closed" and done["closed_at"] == T0 and done["resolved_at"] == T0
    r = await client.post(url, headers=h["bob"], json={"status": "in_progress"})
    assert r.status == 409
    r = await client.patch(f"/api/tickets/{t['id']}", headers=h["bob"], json={"priority": "high"})
    assert r.status == 409 and (await r.json())["error"] == "ticket_closed"

    full = await (await client.get(f"/api/tickets/{t['id']}", headers=h["alice"])).json()
    kinds = [(e["kind"], e["data"].get("to")) for e in full["history"]]
    assert kinds == [("created", None), ("status", "in_progress"), ("status", "resolved"), ("status", "in_progress"),
                     ("status", "resolved"), ("status", "closed")]
    assert full["history"][0]["actor"] == f"user:{people['alice'].id}"
    assert full["history"][0]["data"]["routed_by"] == "rule"
    assert full["history"][1]["actor"] == f"user:{people['bob'].id}" and full["history"][1]["data"]["note"] == "→in_progress"


async def test_edits_assignment_comments_and_bad_input(client, hub, people):  # noqa: ANN001
    h = people["h"]
    cid, _ = await conversation_with_session(hub, people["alice"].id)
    bad = [({"conversation_id": cid, "type": "return"}, "title"),
           ({"conversation_id": cid, "type": "nope", "title": "x"}, "type"),
           ({"conversation_id": cid, "type": "return", "title": "x", "priority": "asap"}, "priority"),
           ({"type": "return", "title": "x"}, "conversation_id"),
           ({"conversation_id": "abc", "type": "return", "title": "x"}, "conversation_id"),
           ({"conversation_id": cid, "type": "return", "title": "x", "due_at": "tomorrow"}, "due_at"),
           ({"conversation_id": cid, "type": "return", "title": "x", "assignee_id": 9999}, "assignee_id"),
           # what the database cannot hold: half an emoji (the console cut a title inside one: a 500), a NUL
           ({"conversation_id": cid, "type": "return", "title": "退货\ud83d"}, "title"),
           ({"conversation_id": cid, "type": "return", "title": "x", "description": "地址\u0000"}, "description")]
    for body, field in bad:
        r = await client.post("/api/tickets", headers=h["alice"], json=body)
        assert r.status == 400 and (await r.json())["field"] == field, (body, await r.text())
    # another group's agent cannot open a ticket on alice's conversation
    r = await client.post("/api/tickets", headers=h["carol"], json={"conversation_id": cid, "type": "return", "title": "x"})
    assert r.status == 403
    # no rule, no type group: the session's group
    r = await client.post("/api/tickets", headers=h["alice"], json={"conversation_id": cid, "type": "logistics",
                                                                     "title": "快递三天没动"})
    t = await r.json()
    assert r.status == 201 and t["group"] == "presales"
    r = await client.patch(f"/api/tickets/{t['id']}", headers=h["alice"], json={
        "assignee_id": people["bob"].id, "priority": "urgent", "group": "aftersales", "due_at": T0 + 600})
    assert r.status == 200, await r.text()
    r = await client.patch(f"/api/tickets/{t['id']}", headers=h["alice"], json={"status": "closed"})
    assert r.status == 400 and (await r.json())["error"] == "invalid_field"
    r = await client.post(f"/api/tickets/{t['id']}/comments", headers=h["bob"], json={"text": "已联系快递"})
    assert r.status == 201
    r = await client.post(f"/api/tickets/{t['id']}/comments", headers=h["bob"], json={"text": "  "})
    assert r.status == 400
    full = await (await client.get(f"/api/tickets/{t['id']}", headers=h["sam"])).json()
    kinds = sorted(e["kind"] for e in full["history"])
    assert kinds == ["assigned", "comment", "created", "due", "group", "priority"]
    mine = await (await client.get("/api/tickets?assignee=me", headers=h["bob"])).json()
    assert [x["id"] for x in mine["tickets"]] == [t["id"]]
    assert (await client.get("/api/tickets?status=bogus", headers=h["bob"])).status == 400
    assert (await client.get("/api/tickets?limit=0", headers=h["bob"])).status == 400
    assert (await client.get("/api/tickets/99999", headers=h["sam"])).status == 404


async def test_a_due_time_that_is_not_a_finite_number_is_refused(client, hub, people):  # noqa: ANN001
    """request.json() takes Infinity and NaN: stored as a due time, they made GET /api/tickets invalid
    JSON for everyone (a strict parser refuses Infinity); 1e400 is Infinity too."""
    import json

    h = people["h"]
    cid, _ = await conversation_with_session(hub, people["alice"].id)
    headers = {**h["alice"], "Content-Type": "application/json"}
    for due in ("Infinity", "-Infinity", "NaN", "1e400", "1" + "0" * 400):
        r = await client.post("/api/tickets", headers=headers,
                              data=f'{{"conversation_id": {cid}, "type": "return", "title": "x", "due_at": {due}}}')
        answer = await r.json()  # (400 digits: refused with the JSON itself, hub/safe_json.py)
        assert r.status == 400 and answer.get("field", "due_at") == "due_at", (due, r.status, answer)
    t = await (await client.post("/api/tickets", headers=h["alice"], json={"conversation_id": cid, "type": "return",
                                                                           "title": "退货"})).json()
    for due in ("Infinity", "NaN"):
        r = await client.patch(f"/api/tickets/{t['id']}", headers=headers, data=f'{{"due_at": {due}}}')
        answer = await r.json()  # (400 digits: refused with the JSON itself, hub/safe_json.py)
        assert r.status == 400 and answer.get("field", "due_at") == "due_at", (due, r.status, answer)

    def strict(constant: str) -> None:
        raise AssertionError(f"{constant} in the JSON")

    listed = json.loads(await (await client.get("/api/tickets", headers=h["sam"])).text(), parse_constant=strict)
    assert [x["due_at"] for x in listed["tickets"]] == [t["due_at"]]


async def test_oversized_ids_in_a_ticket_body_are_refused(client, hub, people):  # noqa: ANN001
    """A conversation or session id past BIGINT, or a rule position past INTEGER, is a 400 naming the
    field (a 500: OverflowError on SQLite, asyncpg's DataError on PostgreSQL)."""
    h = people["h"]
    for body, field in [({"conversation_id": 10 ** 20, "type": "return", "title": "x"}, "conversation_id"),
                        ({"session_id": 10 ** 20, "type": "return", "title": "x"}, "session_id")]:
        r = await client.post("/api/tickets", headers=h["sam"], json=body)
        assert r.status == 400 and (await r.json())["field"] == field, (body, r.status, await r.text())
    await make_groups(hub, "g")
    r = await client.post("/api/ticket-rules", headers=auth(), json={"name": "r", "keywords": ["x"], "group": "g",
                                                                      "position": 10 ** 12})
    assert r.status == 400 and (await r.json())["field"] == "position", await r.text()


async def test_custom_types_and_rules_are_admin_writes(client, hub, people):  # noqa: ANN001
    h = people["h"]
    types = await (await client.get("/api/ticket-types", headers=h["alice"])).json()
    assert [t["name"] for t in types["types"]] == ["return", "complaint", "logistics", "other"]
    new = {"name": "invoice", "label": "发票", "due_hours": 48, "priority": "low", "group": "finance"}
    await make_groups(hub, "finance", "escalations")
    assert (await client.post("/api/ticket-types", headers=h["alice"], json=new)).status == 403
    assert (await client.post("/api/ticket-types", headers=h["sam"], json=new)).status == 403
    assert (await client.post("/api/ticket-types", headers=auth(), json=new)).status == 201
    assert (await client.post("/api/ticket-types", headers=auth(), json=new)).status == 409
    r = await client.post("/api/ticket-types", headers=auth(), json={**new, "name": "Bad Name"})
    assert r.status == 400 and (await r.json())["field"] == "name"
    r = await client.put("/api/ticket-types/invoice", headers=auth(), json={**new, "due_hours": -1})
    assert r.status == 400 and (await r.json())["field"] == "due_hours"
    cid, _ = await conversation_with_session(hub, people["alice"].id)
    r = await client.post("/api/tickets", headers=h["alice"], json={"conversation_id": cid, "type": "invoice",
                                                                     "title": "开专票"})
    t = await r.json()
    assert t["group"] == "finance" and t["priority"] == "low" and t["due_at"] == T0 + 48 * 3600
    # rules: supervisors read, admins write; validated
    assert (await client.get("/api/ticket-rules", headers=h["alice"])).status == 403
    assert (await client.get("/api/ticket-rules", headers=h["sam"])).status == 200
    assert (await client.post("/api/ticket-rules", headers=h["sam"], json={"group": "x"})).status == 403
    for body, field in (({"name": "x"}, "group"), ({"group": "g", "min_priority": "max"}, "priority"),
                        ({"group": "g", "types": ["Return!"]}, "types"), ({"group": "g", "keywords": "破损"}, "keywords")):
        r = await client.post("/api/ticket-rules", headers=auth(), json=body)
        assert r.status == 400 and (await r.json())["field"] == field, body
    r = await client.post("/api/ticket-rules", headers=auth(), json={"name": "急单", "min_priority": "urgent",
                                                                      "group": "escalations"})
    rule = await r.json()
    r = await client.post("/api/tickets", headers=h["alice"], json={"conversation_id": cid, "type": "other",
                                                                     "title": "客户很着急", "priority": "urgent"})
    assert (await r.json())["group"] == "escalations"
    assert (await client.delete(f"/api/ticket-rules/{rule['id']}", headers=auth())).status == 200
    assert (await client.delete(f"/api/ticket-rules/{rule['id']}", headers=auth())).status == 404


async def test_overdue_ticket_alerts_group_and_supervisors_once(client, hub, people):  # noqa: ANN001
    h = people["h"]
    cid, sid = await conversation_with_session(hub, people["alice"].id)
    sup = await Agent(server_url(client), h["sam"]["Authorization"][7:]).connect()
    alice = await Agent(server_url(client), h["alice"]["Authorization"][7:]).connect()
    try:
        r = await client.post("/api/tickets", headers=h["alice"], json={"session_id": sid, "type": "complaint",
                                                                         "title": "投诉发货慢"})
        t = await r.json()
        assert t["priority"] == "high" and t["due_at"] == T0 + 4 * 3600
        assert hub.timers.when(f"ticket-due:{t['id']}") == T0 + 4 * 3600
        hub.clock.advance(4 * 3600 - 1)
        assert await hub.timers.fire_due() == 0
        hub.clock.advance(2)
        assert await hub.timers.fire_due() >= 1
        alert = (await sup.wait("ticket.overdue"))[0]["ticket"]
        assert alert["id"] == t["id"] and alert["overdue_at"] == T0 + 4 * 3600 + 1
        await alice.wait("ticket.overdue")  # the group room
        overdue = await (await client.get("/api/tickets?overdue=1", headers=h["sam"])).json()
        assert [x["id"] for x in overdue["tickets"]] == [t["id"]]
        # a restart rebuilds timers only for tickets not yet alerted: no second alert
        await client.server.app[TICKETS].load()
        assert hub.timers.when(f"ticket-due:{t['id']}") is None
        # moving the due time later clears the overdue mark and re-arms
        r = await client.patch(f"/api/tickets/{t['id']}", headers=h["alice"], json={"due_at": hub.clock.now() + 60})
        assert (await r.json())["overdue_at"] is None
        assert hub.timers.when(f"ticket-due:{t['id']}") == hub.clock.now() + 60
        # resolving cancels the timer
        for status in ("in_progress", "resolved"):
            await client.post(f"/api/tickets/{t['id']}/transition", headers=h["alice"], json={"status": status})
        assert hub.timers.when(f"ticket-due:{t['id']}") is None
        full = await (await client.get(f"/api/tickets/{t['id']}", headers=h["alice"])).json()
        assert [e for e in full["history"] if e["kind"] == "overdue"][0]["actor"] == "system"
        assert len(sup.by_name["ticket.overdue"]) == 1
    finally:
        await sup.close()
        await alice.close()


async def test_an_edit_sending_the_same_due_time_keeps_the_ticket_overdue(client, hub, people):  # noqa: ANN001
    """The console's form sends every field back: {"priority": "urgent", "due_at": <unchanged>} on an
    overdue ticket cleared its overdue mark (it left ?overdue=1, and was never alerted again)."""
    h = people["h"]
    cid, sid = await conversation_with_session(hub, people["alice"].id)
    t = await (await client.post("/api/tickets", headers=h["alice"], json={"session_id": sid, "type": "complaint",
                                                                           "title": "投诉发货慢"})).json()
    hub.clock.advance(4 * 3600 + 1)
    assert await hub.timers.fire_due() >= 1
    r = await client.patch(f"/api/tickets/{t['id']}", headers=h["alice"], json={"priority": "urgent",
                                                                                "due_at": t["due_at"]})
    assert r.status == 200, await r.text()
    edited = await r.json()
    assert edited["priority"] == "urgent" and edited["overdue_at"] == T0 + 4 * 3600 + 1
    overdue = await (await client.get("/api/tickets?overdue=1", headers=h["sam"])).json()
    assert [x["id"] for x in overdue["tickets"]] == [t["id"]]
    full = await (await client.get(f"/api/tickets/{t['id']}", headers=h["alice"])).json()
    assert not [e for e in full["history"] if e["kind"] == "due"]  # no change of due time recorded


async def test_two_status_moves_at_once_do_not_both_land(client, hub, people, monkeypatch):  # noqa: ANN001
    """X closes a resolved ticket while Y reopens it: each checked the move against the status it
    read, so the second to write is refused (409) instead of a closed ticket coming back in progress."""
    from types import SimpleNamespace

    h = people["h"]
    cid, _sid = await conversation_with_session(hub, people["alice"].id)
    r = await client.post("/api/tickets", headers=h["alice"], json={"conversation_id": cid, "type": "return",
                                                                    "title": "退货"})
    t = await r.json()
    url = f"/api/tickets/{t['id']}/transition"
    for target in ("in_progress", "resolved"):
        assert (await client.post(url, headers=h["alice"], json={"status": target})).status == 200
    svc = client.server.app[TICKETS]
    stale = SimpleNamespace(**(await svc._row(t["id"]))._mapping)  # what Y's request read: resolved
    assert (await client.post(url, headers=h["alice"], json={"status": "closed"})).status == 200  # X
    real = svc._editable

    async def read_before_x(user, ticket_id):  # noqa: ANN001, ANN202
        await real(user, ticket_id)
        return stale

    monkeypatch.setattr(svc, "_editable", read_before_x)
    r = await client.post(url, headers=h["alice"], json={"status": "in_progress"})  # Y, on its stale read
    assert r.status == 409 and (await r.json())["error"] == "ticket_changed"
    monkeypatch.setattr(svc, "_editable", real)
    full = await (await client.get(f"/api/tickets/{t['id']}", headers=h["alice"])).json()
    assert full["status"] == "closed"
