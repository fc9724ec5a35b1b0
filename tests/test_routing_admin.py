"""Routing rules and users as data over the JSON API (validated when saved), the routing tester,
role checks, and the 微信客服 service state following the hub's sessions."""
from __future__ import annotations

from tests.conftest import WECOM, auth
from tests.helpers import make_groups, post
from tests.rt_helpers import Agent, login, make_user, server_url
from tests.wechat_client import event_xml


async def test_routing_rules_crud_order_and_tester(client, hub):
    await make_groups(hub, "vip", "aftersales")
    bad = await client.post("/api/routing/rules", json={"name": "坏规则", "conditions": [{"kind": "vip_min", "value": "high"}],
                                                        "actions": {"group": "vip"}}, headers=auth())
    assert bad.status == 400 and (await bad.json())["field"].startswith("conditions[0]")
    vip = await client.post("/api/routing/rules", json={"name": "VIP", "conditions": [{"kind": "vip_min", "value": 2}],
                                                        "actions": {"group": "vip", "priority": 100}}, headers=auth())
    refund = await client.post("/api/routing/rules", json={
        "name": "退款", "conditions": [{"kind": "keywords_any", "value": ["退款", "退货"]}],
        "actions": {"group": "aftersales"}}, headers=auth())
    assert vip.status == 201 and refund.status == 201
    vip_id, refund_id = (await vip.json())["id"], (await refund.json())["id"]
    probe = {"account_id": WECOM["id"], "platform": "wecom", "vip_level": 3, "first_message": "我要退款"}
    first = await (await client.post("/api/routing/test", json=probe, headers=auth())).json()
    assert first["group"] == "vip" and first["matched_rule_id"] == vip_id and first["trace"]
    moved = await client.post("/api/routing/rules/order", json={"order": [refund_id, vip_id]}, headers=auth())
    assert [r["id"] for r in (await moved.json())["rules"]] == [refund_id, vip_id]
    second = await (await client.post("/api/routing/test", json=probe, headers=auth())).json()
    assert second["group"] == "aftersales"  # takes effect at once, no restart
    upd = await client.put(f"/api/routing/rules/{refund_id}", json={"enabled": False}, headers=auth())
    assert upd.status == 200 and (await upd.json())["enabled"] is False
    assert (await client.delete(f"/api/routing/rules/{vip_id}", headers=auth())).status == 200
    await make_user(hub, "agentx")
    token = await login(client, "agentx")
    h = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/routing/rules", headers=h)).status == 403
    assert (await client.post("/api/users", json={}, headers=h)).status == 403


async def test_users_admin_api(client, hub):
    made = await client.post("/api/users", json={"username": "dora", "password": "dora-password", "role": "agent",
                                                 "groups": ["presales"], "cap": 3}, headers=auth())
    assert made.status == 201
    uid = (await made.json())["id"]
    dup = await client.post("/api/users", json={"username": "dora", "password": "dora-password"}, headers=auth())
    assert dup.status == 409 and (await dup.json())["field"] == "username"
    bad = await client.put(f"/api/users/{uid}", json={"role": "boss"}, headers=auth())
    assert bad.status == 400 and (await bad.json())["field"] == "role"
    ok = await client.put(f"/api/users/{uid}", json={"cap": 8, "groups": ["presales", "vip"], "password": "new-password-1"},
                          headers=auth())
    assert ok.status == 200 and (await ok.json())["cap"] == 8
    assert (await client.post("/api/login", json={"username": "dora", "password": "new-password-1"})).status == 200
    await client.put(f"/api/users/{uid}", json={"disabled": True}, headers=auth())
    assert (await client.post("/api/login", json={"username": "dora", "password": "new-password-1"})).status == 401
    users = (await (await client.get("/api/users", headers=auth())).json())["users"]
    assert any(u["username"] == "dora" and u["disabled"] for u in users)


async def test_user_fields_are_checked_against_their_columns(client, hub):
    """A display name or a group name over 64 characters is a 400 naming the field (a 500 on
    PostgreSQL), cap: true is not a cap, and " presales " is the presales group (it was stored as a
    group of its own, which no presales session reached)."""
    base = {"password": "password123"}
    cases = [({"username": "longname", "display_name": "张" * 65}, "display_name"),
             ({"username": "longgroup", "groups": ["g" * 65]}, "groups"),
             ({"username": "capbool", "cap": True}, "cap"),
             ({"username": "nametype", "display_name": ["x"]}, "display_name")]
    for body, field in cases:
        resp = await client.post("/api/users", json={**base, **body}, headers=auth())
        assert resp.status == 400, body
        assert (await resp.json())["field"] == field, body
    made = await client.post("/api/users", json={**base, "username": "spaced", "display_name": " 小王 ",
                                                 "groups": [" presales ", "presales"]}, headers=auth())
    assert made.status == 201, await made.text()
    user = await made.json()
    assert user["groups"] == ["presales"] and user["display_name"] == "小王"
    uid = user["id"]
    for body, field in [({"display_name": "张" * 65}, "display_name"), ({"groups": ["g" * 65]}, "groups"),
                        ({"cap": False}, "cap")]:
        resp = await client.put(f"/api/users/{uid}", json=body, headers=auth())
        assert resp.status == 400, body
        assert (await resp.json())["field"] == field, body
    ok = await client.put(f"/api/users/{uid}", json={"groups": [" aftersales "], "display_name": "张" * 64},
                          headers=auth())
    assert ok.status == 200 and (await ok.json())["groups"] == ["aftersales"]
    groups = (await (await client.get("/api/groups", headers=auth())).json())["groups"]
    assert not [g["name"] for g in groups if g["name"] != g["name"].strip()]


async def test_kf_service_state_follows_the_session(client, hub, wecom, standin):
    await hub.settings.set("default_group", "presales")
    standin.add_kf_message("wkS", {"msgid": "s1", "open_kfid": "wkS", "external_userid": "wmKfState",
                                   "send_time": int(hub.clock.now()), "origin": 3, "msgtype": "text", "text": {"content": "转人工"}})
    await make_user(hub, "alice")
    alice = await Agent(server_url(client), await login(client, "alice")).connect()
    try:
        assert (await alice.call("status", {"status": "online"}))["ok"]
        await post(client, wecom, event_xml(WECOM["receive_id"], "sys", "kf_msg_or_event", Token="T", OpenKfId="wkS"))
        [bundle] = await alice.wait("session.new")
        sid = bundle["session"]["id"]
        assert (await alice.call("accept", {"session_id": sid}))["ok"]
        assert (await alice.call("close", {"session_id": sid}))["ok"]
        states = [(c["external_userid"], c["service_state"], c.get("servicer_userid", "")) for c in standin.state_changes]
        assert states == [("wmKfState", 2, ""), ("wmKfState", 3, "alice"), ("wmKfState", 4, "")]
    finally:
        await alice.close()


async def test_rule_add_tags_applied_to_the_customer(client, hub, oa):
    await make_groups(hub, "aftersales")
    await client.post("/api/routing/rules", json={"name": "投诉", "conditions": [{"kind": "keywords_any", "value": ["投诉"]}],
                                                  "actions": {"group": "aftersales", "add_tags": ["投诉风险"]}}, headers=auth())
    from tests.wechat_client import text_xml
    await post(client, oa, text_xml("gh", "oAngry", "我要投诉你们", 77))
    await hub.pipeline.drain()
    from sqlalchemy import select
    from hub.models import Conversation, ServiceSession
    async with hub.db.read() as conn:
        conv = (await conn.execute(select(Conversation.__table__).where(Conversation.__table__.c.peer_id == "oAngry"))).first()
        session = (await conn.execute(select(ServiceSession.__table__))).first()
    assert session.group == "aftersales"
    profile = await (await client.get(f"/api/customers/{conv.customer_id}", headers=auth())).json()
    assert "投诉风险" in {t["name"] for t in profile["tags"]}
