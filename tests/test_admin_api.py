"""Admin console APIs: settings with per-key validation, skill groups with their agents, the audit
rows every admin change leaves, and the role walk (agents and supervisors get 403 on admin writes)."""
from __future__ import annotations

from tests.conftest import WECOM, auth
from tests.helpers import make_groups
from tests.rt_helpers import login, make_user


async def _audit(client, **params) -> list[dict]:  # noqa: ANN001
    return (await (await client.get("/api/audit", params=params, headers=auth())).json())["entries"]


async def test_settings_get_put_validation_and_audit(client, hub):
    got = await (await client.get("/api/settings", headers=auth())).json()
    assert "handover_words" in got["settings"] and "business_hours" in got["keys"]
    hours = {"timezone": "Asia/Shanghai", "weekly": {"0": [["09:00", "18:00"]]}, "holidays": ["2025-10-01"]}
    ok = await client.put("/api/settings", json={"handover_words": ["转人工", " 人工 ", "转人工"], "business_hours": hours,
                                                 "welcome_text": "您好，欢迎！"}, headers=auth())
    body = await ok.json()
    assert ok.status == 200, body
    assert body["settings"]["handover_words"] == ["转人工", "人工"]
    assert body["settings"]["business_hours"]["holidays"] == ["2025-10-01"]
    assert hub.settings.cached("welcome_text") == "您好，欢迎！"  # no restart, no TTL wait
    cases = [({"queue_text": "请稍候"}, "queue_text"), ({"handover_words": ["", "x"]}, "handover_words[0]"),
             ({"business_hours": {"timezone": "Mars/Base", "weekly": {}}}, "business_hours"),
             ({"business_hours": {"timezone": "UTC", "holidays": ["10/01"]}}, "business_hours.holidays[0]"),
             ({"accept_timeout": "60"}, "accept_timeout"), ({"unanswered_action": "ignore"}, "unanswered_action"),
             ({"no_such_key": 1}, "no_such_key"), ({"queue_notify": "yes"}, "queue_notify")]
    for change, field in cases:
        resp = await client.put("/api/settings", json=change, headers=auth())
        assert resp.status == 400, change
        assert (await resp.json())["field"].startswith(field), (change, await resp.json())
    entries = await _audit(client, action="settings.update")
    assert len(entries) == 1 and entries[0]["after"]["welcome_text"] == "您好，欢迎！"
    assert entries[0]["before"]["welcome_text"] == ""


async def test_a_queue_text_with_other_braces_is_refused(client, hub, wecom, standin):
    """queue_text is checked by formatting it as the announcer does: "{请稍候}" was stored (it has
    {n}) and then every handover's job failed on a KeyError. One stored before is replaced by the
    default when announced."""
    from tests.helpers import make_groups, post
    from tests.wechat_client import text_xml

    for bad in ["前面还有 {n} 位 {请稍候}", "前面还有 {n} 位 {", "前面还有 {n.x} 位", "前面还有 {0} {n} 位", "{n:zz}", "{{n}}"]:
        resp = await client.put("/api/settings", json={"queue_text": bad}, headers=auth())
        assert resp.status == 400, bad
        assert (await resp.json())["field"] == "queue_text"
    assert hub.settings.cached("queue_text") == "您前面还有 {n} 位，请稍候，客服马上为您服务。"
    good = "您是第 {position} 位，前面还有 {n} 位 {{请稍候}}"
    assert (await client.put("/api/settings", json={"queue_text": good}, headers=auth())).status == 200
    await hub.settings.set("queue_text", "前面还有 {n} 位 {请稍候}")  # as stored before the check
    await hub.settings.set("queue_notify", True)
    await hub.settings.set("default_group", "presales")
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmBraces", "转人工", 26001))
    await hub.pipeline.drain()
    await hub.outbound.drain()
    assert "您是下一位，请稍候，客服马上为您服务。" in [s["body"]["text"]["content"] for s in standin.sent]  # the default's


async def test_groups_crud_members_and_audit(client, hub):
    a = await make_user(hub, "g_ann", groups=())
    b = await make_user(hub, "g_bob", groups=("presales",))
    made = await client.post("/api/groups", json={"name": "vip", "display_name": "VIP 专席", "members": [a.id, b.id]},
                             headers=auth())
    assert made.status == 201 and sorted((await made.json())["members"]) == sorted([a.id, b.id])
    dup = await client.post("/api/groups", json={"name": "vip"}, headers=auth())
    assert dup.status == 409 and (await dup.json())["field"] == "name"
    bad = await client.post("/api/groups", json={"name": "x", "members": [999999]}, headers=auth())
    assert bad.status == 400 and (await bad.json())["field"] == "members"
    upd = await client.put("/api/groups/vip", json={"members": [b.id]}, headers=auth())
    assert (await upd.json())["members"] == [b.id]
    users = {u["username"]: u for u in (await (await client.get("/api/users", headers=auth())).json())["users"]}
    assert users["g_ann"]["groups"] == [] and sorted(users["g_bob"]["groups"]) == ["presales", "vip"]
    rule = await client.post("/api/routing/rules", json={"name": "VIP", "conditions": [{"kind": "vip_min", "value": 1}],
                                                         "actions": {"group": "vip"}}, headers=auth())
    in_use = await client.delete("/api/groups/vip", headers=auth())
    assert in_use.status == 409 and "VIP" in (await in_use.json())["message"]
    await client.delete(f"/api/routing/rules/{(await rule.json())['id']}", headers=auth())
    assert (await client.delete("/api/groups/vip", headers=auth())).status == 200
    assert (await client.put("/api/groups/vip", json={}, headers=auth())).status == 404
    actions = [e["action"] for e in await _audit(client, target="group")]
    assert actions == ["group.delete", "group.update", "group.create"]


async def test_every_admin_change_is_audited_with_before_and_after(client, hub):
    faq = await (await client.post("/api/faq", json={"question": "运费怎么算", "answer": "满 99 包邮"}, headers=auth())).json()
    await client.put(f"/api/faq/{faq['id']}", json={"answer": "满 59 包邮"}, headers=auth())
    await client.post("/api/brand-words", json={"words": ["小棕瓶"]}, headers=auth())
    rule = await (await client.post("/api/keyword-rules", json={"name": "发票", "match_type": "contains", "pattern": "发票",
                                                                 "reply": {"type": "text", "text": "请留下抬头"}},
                                    headers=auth())).json()
    assert "id" in rule, rule
    await client.delete(f"/api/keyword-rules/{rule['id']}", headers=auth())
    user = await (await client.post("/api/users", json={"username": "audited", "password": "audited-pass"},
                                    headers=auth())).json()
    await client.put(f"/api/users/{user['id']}", json={"password": "another-pass", "cap": 7}, headers=auth())
    await make_groups(hub, "a", "b")
    r1 = await (await client.post("/api/routing/rules", json={"name": "A", "conditions": [{"kind": "vip_min", "value": 1}],
                                                              "actions": {"group": "a"}}, headers=auth())).json()
    r2 = await (await client.post("/api/routing/rules", json={"name": "B", "conditions": [{"kind": "vip_min", "value": 2}],
                                                              "actions": {"group": "b"}}, headers=auth())).json()
    await client.post("/api/routing/rules/order", json={"order": [r2["id"], r1["id"]]}, headers=auth())
    entries = await _audit(client)
    by_action = {e["action"]: e for e in entries}
    assert {"faq.create", "faq.update", "brand_words.add", "keyword_rule.create", "keyword_rule.delete", "user.create",
            "user.update", "routing_rule.create", "routing_rule.order"} <= set(by_action)
    assert by_action["faq.update"]["before"]["answer"] == "满 99 包邮" and by_action["faq.update"]["after"]["answer"] == "满 59 包邮"
    assert by_action["keyword_rule.delete"]["before"]["pattern"] == "发票" and by_action["keyword_rule.delete"]["after"] is None
    assert by_action["routing_rule.order"]["after"] == {"order": [r2["id"], r1["id"]]}
    user_update = by_action["user.update"]
    assert user_update["after"]["cap"] == 7 and user_update["after"]["password"] == "***"
    text = str(entries)
    assert "another-pass" not in text and "audited-pass" not in text
    assert all(e["actor_name"] == "service" and e["actor_role"] == "admin" for e in entries)


ADMIN_WRITES = [("POST", "/api/faq"), ("PUT", "/api/faq/1"), ("DELETE", "/api/faq/1"), ("POST", "/api/faq/import"),
                ("POST", "/api/brand-words"), ("POST", "/api/brand-words/remove"), ("POST", "/api/keyword-rules"), ("PUT", "/api/keyword-rules/1"),
                ("DELETE", "/api/keyword-rules/1"), ("POST", "/api/routing/rules"), ("PUT", "/api/routing/rules/1"),
                ("DELETE", "/api/routing/rules/1"), ("POST", "/api/routing/rules/order"), ("POST", "/api/users"),
                ("PUT", "/api/users/1"), ("POST", "/api/groups"), ("PUT", "/api/groups/x"), ("DELETE", "/api/groups/x"),
                ("POST", "/api/channels"), ("PUT", "/api/channels/1"), ("DELETE", "/api/channels/1"),
                ("GET", "/api/settings"), ("PUT", "/api/settings"), ("GET", "/api/accounts"), ("POST", "/api/accounts"),
                ("PUT", f"/api/accounts/{WECOM['id']}"), ("POST", "/api/accounts/generate"), ("GET", "/api/audit"),
                ("POST", "/api/sla/rules"), ("PUT", "/api/sla/rules/1"), ("DELETE", "/api/sla/rules/1"),
                ("POST", "/api/quality/rules"), ("PUT", "/api/quality/rules/1"), ("DELETE", "/api/quality/rules/1"),
                ("POST", "/api/ticket-types"), ("PUT", "/api/ticket-types/other"), ("POST", "/api/ticket-rules"),
                ("PUT", "/api/ticket-rules/1"), ("DELETE", "/api/ticket-rules/1")]
ADMIN_PAGES = ["/admin/faq", "/admin/keywords", "/admin/routing", "/admin/users", "/admin/accounts",
               "/admin/channels", "/admin/bot-settings", "/admin/audit", "/admin/sla", "/admin/tickets",
               "/admin/privacy"]


async def test_brand_words_are_removed_from_the_dictionary_and_the_tokenizer(client, hub):
    kb = hub.kb
    assert "小棕瓶精华" not in kb.tokenizer.tokens("小棕瓶精华多少钱")
    added = await client.post("/api/brand-words", json={"words": ["小棕瓶精华"]}, headers=auth())
    assert added.status == 200
    assert "小棕瓶精华" in kb.tokenizer.tokens("小棕瓶精华多少钱")
    bad = await client.post("/api/brand-words/remove", json={"words": "小棕瓶精华"}, headers=auth())
    assert bad.status == 400 and (await bad.json())["field"] == "words"
    gone = await client.post("/api/brand-words/remove", json={"words": ["小棕瓶精华", "从未添加"]}, headers=auth())
    assert (await gone.json()) == {"removed": ["小棕瓶精华"]}
    assert "小棕瓶精华" not in kb.tokenizer.tokens("小棕瓶精华多少钱")
    assert "小棕瓶精华" not in (await (await client.get("/api/brand-words", headers=auth())).json())["words"]
    audit = await (await client.get("/api/audit?action=brand_words.remove", headers=auth())).json()
    entry = audit["entries"][0]
    assert "小棕瓶精华" in str(entry["before"]) and "小棕瓶精华" not in str(entry["after"])


def test_the_role_walk_covers_every_admin_page():
    from agent_ui.views import ADMIN_PAGES as PAGES
    assert sorted(path for _, path, _, _ in PAGES) == sorted(ADMIN_PAGES)


async def test_agents_and_supervisors_get_403_on_admin_apis_and_pages(client, hub):
    for role in ("agent", "supervisor"):
        await make_user(hub, f"walk_{role}", role=role)
        token = await login(client, f"walk_{role}")
        h = {"Authorization": f"Bearer {token}"}
        for method, path in ADMIN_WRITES:
            resp = await client.request(method, path, json={}, headers=h)
            assert resp.status == 403, (role, method, path, resp.status)
        client.session.cookie_jar.clear()
        await client.post("/api/login", json={"username": f"walk_{role}", "password": f"walk_{role}-password"})
        for page in ADMIN_PAGES:
            resp = await client.get(page, allow_redirects=False)
            assert resp.status == 403, (role, page, resp.status)
        client.session.cookie_jar.clear()


async def test_a_password_reset_ends_the_users_logins_but_the_admins_own(client, hub):
    """A reset is the remedy for a stolen account: the old session stayed valid for up to 12 h."""
    agent = await make_user(hub, "stolen")
    admin = await make_user(hub, "boss", role="admin")
    old, mine = await login(client, "stolen"), await login(client, "boss")
    bearer = lambda token: {"Authorization": f"Bearer {token}"}  # noqa: E731
    assert (await client.get("/api/me", headers=bearer(old))).status == 200
    resp = await client.put(f"/api/users/{agent.id}", json={"password": "brand-new-pass"}, headers=bearer(mine))
    assert resp.status == 200, await resp.text()
    assert (await client.get("/api/me", headers=bearer(old))).status == 401
    assert (await client.post("/api/login", json={"username": "stolen", "password": "brand-new-pass"})).status == 200
    other = await login(client, "boss")  # the admin's second login ends; the one resetting stays
    resp = await client.put(f"/api/users/{admin.id}", json={"password": "boss-new-pass"}, headers=bearer(mine))
    assert resp.status == 200, await resp.text()
    assert (await client.get("/api/me", headers=bearer(mine))).status == 200
    assert (await client.get("/api/me", headers=bearer(other))).status == 401
    # other changes leave logins alone
    fresh = await (await client.post("/api/login", json={"username": "stolen", "password": "brand-new-pass"})).json()
    assert (await client.put(f"/api/users/{agent.id}", json={"cap": 3}, headers=bearer(mine))).status == 200
    assert (await client.get("/api/me", headers=bearer(fresh["token"]))).status == 200
