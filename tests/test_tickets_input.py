"""Ticket fields the database cannot hold, a disabled assignee, and flags given as text: a 400 naming
the field, not a 500 (a group or keyword with half an emoji), a ticket for nobody, or "false" taken as true.
The search's filters likewise (a NUL was a 500 on PostgreSQL; nan and inf found nothing)."""
from __future__ import annotations

from tests.conftest import auth
from tests.test_tickets import conversation_with_session, people  # noqa: F401 - people is a fixture


async def test_ticket_text_flags_and_assignees_are_checked(client, hub, people):  # noqa: F811
    h = people["h"]
    cid, _ = await conversation_with_session(hub, people["alice"].id)
    for path, body, field in [
            ("/api/tickets", {"conversation_id": cid, "type": "return", "title": "x", "group": "g\ud83d"}, "group"),
            ("/api/ticket-rules", {"group": "g\x00"}, "group"),
            ("/api/ticket-rules", {"keywords": ["破\ud83d"], "group": "presales"}, "keywords"),
            ("/api/ticket-types", {"name": "inv", "label": "x", "group": "g\ud83d"}, "group"),
            ("/api/ticket-types", {"name": "inv", "label": "x", "enabled": "false"}, "enabled")]:
        resp = await client.post(path, json=body, headers=auth())
        assert resp.status == 400 and (await resp.json())["field"] == field, (path, body, resp.status)
    bob = people["bob"]
    assert (await client.put(f"/api/users/{bob.id}", json={"disabled": True}, headers=auth())).status == 200
    resp = await client.post("/api/tickets", headers=h["alice"], json={
        "conversation_id": cid, "type": "return", "title": "退货", "assignee_id": bob.id})
    assert resp.status == 400 and (await resp.json())["field"] == "assignee_id"


async def test_search_filters_the_databases_cannot_hold_or_times_that_are_not_finite(client, hub):
    for query, field in [("account=a%00b", "account"), ("tag=%00", "tag"), ("channel_code=%00", "channel_code"),
                         ("since=nan", "since"), ("since=inf", "since"), ("until=-inf", "until")]:
        resp = await client.get(f"/api/search?q=x&{query}", headers=auth())
        assert resp.status == 400 and (await resp.json())["field"] == field, (query, resp.status)
