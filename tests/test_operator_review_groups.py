"""Skill-group membership under concurrent operator edits: each change to a group's members (or to a user)
rewrites the users' ``groups`` lists, so two edits at once must not drop each other's membership."""
from __future__ import annotations

import asyncio

import pytest

from hub.service import admin_api
from tests.conftest import auth
from tests.helpers import make_groups
from tests.rt_helpers import make_user


DELAY = 0.2


@pytest.fixture(autouse=True)
def slow_user_reads(monkeypatch):  # noqa: ANN001
    """Each request's read of the users takes a moment (as on a loaded PostgreSQL), so the edits overlap on
    SQLite too, where a short read otherwise never lets another request in between."""
    original = admin_api.list_users

    async def slow(db):  # noqa: ANN001, ANN202
        users = await original(db)
        await asyncio.sleep(DELAY)
        return users
    monkeypatch.setattr(admin_api, "list_users", slow)


async def _groups_of(client, username: str) -> list[str]:  # noqa: ANN001
    users = (await (await client.get("/api/users", headers=auth())).json())["users"]
    return sorted(next(u for u in users if u["username"] == username)["groups"])


async def test_concurrent_group_member_edits_keep_both_memberships(client, hub):
    alice = await make_user(hub, "m_alice", groups=("presales",))
    for name in ("g1", "g2", "g3"):
        assert (await client.post("/api/groups", json={"name": name}, headers=auth())).status == 201
    answers = await asyncio.gather(
        client.put("/api/groups/g1", json={"members": [alice.id]}, headers=auth()),
        client.put("/api/groups/g2", json={"members": [alice.id]}, headers=auth()),
        client.put(f"/api/users/{alice.id}", json={"cap": 7}, headers=auth()),
        client.put("/api/groups/g3", json={"members": [alice.id]}, headers=auth()))
    assert [a.status for a in answers] == [200, 200, 200, 200]
    assert await _groups_of(client, "m_alice") == ["g1", "g2", "g3", "presales"]
    users = (await (await client.get("/api/users", headers=auth())).json())["users"]
    assert next(u for u in users if u["username"] == "m_alice")["cap"] == 7


async def test_a_user_update_without_groups_leaves_the_groups_alone(client, hub):
    """A PUT that does not name ``groups`` (a cap) writes no groups list at all: here it reads the user before
    the group edit commits and writes after it, and the membership the group edit added stays."""
    bob = await make_user(hub, "m_bob", groups=("presales",))
    assert (await client.post("/api/groups", json={"name": "vip"}, headers=auth())).status == 201

    async def later_cap():  # noqa: ANN202
        await asyncio.sleep(DELAY * 1.25)  # the group edit reads twice (DELAY each) before it writes
        return await client.put(f"/api/users/{bob.id}", json={"cap": 3}, headers=auth())
    answers = await asyncio.gather(client.put("/api/groups/vip", json={"members": [bob.id]}, headers=auth()),
                                   later_cap())
    assert [a.status for a in answers] == [200, 200]
    assert await _groups_of(client, "m_bob") == ["presales", "vip"]


async def test_a_group_still_in_use_is_not_deleted(client, hub, standin):
    """Deleting a skill group that a channel code, a ticket type or rule, or the default_group setting still
    sends to stranded those customers and tickets in a group no agent is in: refused, naming each use."""
    from tests.channel_helpers import OA_CODE, create

    for name in ("vip", "livestream", "finance", "claims"):
        assert (await client.post("/api/groups", json={"name": name}, headers=auth())).status == 201
    await create(client, {**OA_CODE, "route_group": "livestream"})
    assert (await client.post("/api/ticket-types", headers=auth(), json={
        "name": "invoice", "label": "发票", "due_hours": 48, "priority": "low", "group": "finance"})).status == 201
    assert (await client.post("/api/ticket-rules", headers=auth(), json={
        "name": "理赔", "keywords": ["理赔"], "group": "claims"})).status == 201
    assert (await client.put("/api/settings", json={"default_group": "vip"}, headers=auth())).status == 200
    for name, words in (("vip", "setting: default_group"), ("livestream", "channel codes: 直播间"),
                        ("finance", "ticket types: 发票"), ("claims", "ticket rules: 理赔")):
        resp = await client.delete(f"/api/groups/{name}", headers=auth())
        err = await resp.json()
        assert resp.status == 409 and err["error"] == "group_in_use" and words in err["message"], (name, err)
    names = [g["name"] for g in (await (await client.get("/api/groups", headers=auth())).json())["groups"]]
    assert {"vip", "livestream", "finance", "claims"} <= set(names)
    assert (await client.post("/api/groups", json={"name": "general"}, headers=auth())).status == 201
    assert (await client.put("/api/settings", json={"default_group": "general"}, headers=auth())).status == 200
    assert (await client.delete("/api/groups/vip", headers=auth())).status == 200


async def test_the_default_group_must_be_a_skill_group(client, hub):
    """Customers no routing rule matches go to ``default_group``: a name no group has would leave them
    in a queue no agent is in. Refused, naming the field; an existing group is taken."""
    resp = await client.put("/api/settings", json={"default_group": "nobody-here"}, headers=auth())
    err = await resp.json()
    assert resp.status == 400 and err["error"] == "invalid_setting" and err["field"] == "default_group", err
    assert await hub.settings.get("default_group") != "nobody-here"
    assert (await client.post("/api/groups", json={"name": "vip"}, headers=auth())).status == 201
    assert (await client.put("/api/settings", json={"default_group": "vip"}, headers=auth())).status == 200
    assert await hub.settings.get("default_group") == "vip"


async def test_a_rule_order_with_other_than_ids_is_a_400(client, hub):
    """POST /api/routing/rules/order sorted what it was given: a string or null among the ids raised (500)."""
    ids = []
    await make_groups(hub, "a", "b")
    for name, vip in (("A", 1), ("B", 2)):
        rule = await client.post("/api/routing/rules", json={"name": name, "conditions": [{"kind": "vip_min", "value": vip}],
                                                             "actions": {"group": name.lower()}}, headers=auth())
        ids.append((await rule.json())["id"])
    for order in ([ids[0], "x"], [ids[0], None], [ids[0], [ids[1]]], [True, ids[1]] if ids[0] == 1 else [ids[0], True],
                  [ids[0], ids[1], ids[0]], [ids[0]], "1,2"):
        resp = await client.post("/api/routing/rules/order", json={"order": order}, headers=auth())
        err = await resp.json()
        assert resp.status == 400 and err["error"] == "invalid_order" and err["field"] == "order", (order, err)
    ok = await client.post("/api/routing/rules/order", json={"order": [ids[1], ids[0]]}, headers=auth())
    assert ok.status == 200 and [r["id"] for r in (await ok.json())["rules"]] == [ids[1], ids[0]]


async def test_the_last_enabled_admin_cannot_be_demoted_or_disabled(client, hub):
    """Demoting or disabling the only enabled admin left nobody who could open the operator console."""
    olivia = await make_user(hub, "olivia", role="admin", groups=())
    off = await make_user(hub, "old_admin", role="admin", groups=())
    assert (await client.put(f"/api/users/{off.id}", json={"disabled": True}, headers=auth())).status == 200
    for change, field in (({"role": "agent"}, "role"), ({"disabled": True}, "disabled"),
                          ({"role": "supervisor", "disabled": True}, "role")):
        resp = await client.put(f"/api/users/{olivia.id}", json=change, headers=auth())
        err = await resp.json()
        assert resp.status == 409 and err["error"] == "last_admin" and err["field"] == field, (change, err)
    users = {u["username"]: u for u in (await (await client.get("/api/users", headers=auth())).json())["users"]}
    assert users["olivia"]["role"] == "admin" and users["olivia"]["disabled"] is False
    assert (await client.put(f"/api/users/{olivia.id}", json={"cap": 0}, headers=auth())).status == 200
    # with another enabled admin the change is fine
    assert (await client.put(f"/api/users/{off.id}", json={"disabled": False}, headers=auth())).status == 200
    assert (await client.put(f"/api/users/{olivia.id}", json={"role": "supervisor"}, headers=auth())).status == 200
    resp = await client.put(f"/api/users/{off.id}", json={"disabled": True}, headers=auth())
    assert resp.status == 409 and (await resp.json())["error"] == "last_admin"


async def test_a_group_an_sla_rule_is_scoped_to_is_not_deleted(client, hub):
    """An SLA rule scoped to a deleted group watched no one any more, and the SLA page's editor, not finding
    the group, showed and saved it as "all groups"."""
    assert (await client.post("/api/groups", json={"name": "vip"}, headers=auth())).status == 201
    rule = await client.post("/api/sla/rules", json={"name": "VIP 首响", "kind": "first_reply", "seconds": 30,
                                                     "group": "vip"}, headers=auth())
    assert rule.status == 201, await rule.text()
    resp = await client.delete("/api/groups/vip", headers=auth())
    err = await resp.json()
    assert resp.status == 409 and "SLA rules: VIP 首响" in err["message"], err
    assert (await client.delete(f"/api/sla/rules/{(await rule.json())['id']}", headers=auth())).status == 200
    assert (await client.delete("/api/groups/vip", headers=auth())).status == 200


async def test_rules_and_ticket_settings_name_only_skill_groups_that_exist(client, hub):
    """A routing rule, a ticket type or a ticket rule sent to a typo (or to a group's display name) was
    saved: its customers, or its tickets, waited in a group no agent is in."""
    await make_groups(hub, "aftersales")
    rule = {"name": "退款", "conditions": [{"kind": "keywords_any", "value": ["退款"]}], "actions": {"group": "售后组"}}
    r = await client.post("/api/routing/rules", json=rule, headers=auth())
    assert r.status == 400 and (await r.json())["error"] == "unknown_group"
    assert (await r.json())["field"] == "actions.group"
    r = await client.post("/api/routing/rules", json={**rule, "actions": {"group": "aftersales"}}, headers=auth())
    assert r.status == 201
    rule_id = (await r.json())["id"]
    r = await client.put(f"/api/routing/rules/{rule_id}", json={"actions": {"group": "aftersale"}}, headers=auth())
    assert r.status == 400 and (await r.json())["error"] == "unknown_group"
    for path, body in (("/api/ticket-types", {"name": "invoice", "label": "发票", "group": "finance"}),
                       ("/api/ticket-rules", {"name": "急单", "keywords": ["急"], "group": "escalations"})):
        r = await client.post(path, json=body, headers=auth())
        assert r.status == 400 and (await r.json())["error"] == "unknown_group", (path, await r.text())


async def test_a_group_with_open_sessions_cannot_be_deleted(client, hub, oa):
    """Deleting a group while customers were queued in it stranded them in a group that no longer existed."""
    from tests.helpers import post
    from tests.wechat_client import text_xml
    await make_groups(hub, "invoice")
    await hub.settings.set("default_group", "invoice")
    await post(client, oa, text_xml("gh", "oInvoice", "转人工", 88))
    await hub.pipeline.drain()
    await hub.settings.set("default_group", "presales")
    r = await client.delete("/api/groups/invoice", headers=auth())
    assert r.status == 409 and "open sessions: 1" in (await r.json())["message"], await r.text()
