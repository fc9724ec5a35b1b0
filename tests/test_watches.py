"""Keyword watches: the pure matcher, the admin API (validation, duplicates, roles), and a customer
message with a watched word reaching a connected supervisor as ``watch.hit`` (once, even when the
job runs again), while bot/agent messages and other words do not."""
from __future__ import annotations

from hub.archive.search.watch_api import WATCHES
from hub.archive.search.watches import WatchMatcher, WatchWord
from hub.pipeline import JobContext
from tests.conftest import WECOM, auth
from tests.helpers import messages, post
from tests.rt_helpers import Agent, login, make_user, server_url
from tests.wechat_client import text_xml


def test_matcher_is_width_and_case_blind_and_reports_every_word():
    m = WatchMatcher([WatchWord(1, "过敏"), WatchWord(2, "急用"), WatchWord(3, "sku")])
    assert [w.word for w in m.hits("用了过敏，急用！ＳＫＵ 123")] == ["过敏", "急用", "sku"]
    assert m.hits("一切正常") == [] and m.hits(None) == [] and WatchMatcher([]).hits("过敏") == []
    assert [w.word for w in WatchMatcher([WatchWord(1, "敏感"), WatchWord(2, "过敏")]).hits("过敏感")] == ["敏感", "过敏"]


async def test_watch_api_validates_and_checks_roles(client, hub):
    await make_user(hub, "amy", "agent")
    await make_user(hub, "sue", "supervisor")
    agent = {"Authorization": "Bearer " + await login(client, "amy")}
    sup = {"Authorization": "Bearer " + await login(client, "sue")}
    client.session.cookie_jar.clear()
    assert (await client.post("/api/watches", json={"word": "过敏"}, headers=agent)).status == 403
    assert (await client.post("/api/watches", json={"word": "过敏"})).status == 401
    resp = await client.post("/api/watches", json={"word": " 过敏 "}, headers=sup)
    assert resp.status == 201
    watch = await resp.json()
    assert watch["word"] == "过敏" and watch["enabled"] is True and watch["created_by"] == "sue"
    resp = await client.post("/api/watches", json={"word": "过敏"}, headers=auth())
    assert resp.status == 409 and (await resp.json())["error"] == "duplicate_word"
    for bad in ({"word": ""}, {"word": "  "}, {"word": 5}, {}, {"word": "长" * 65}):
        resp = await client.post("/api/watches", json=bad, headers=auth())
        assert resp.status == 400 and (await resp.json())["error"] == "invalid_word", bad
    assert (await client.post("/api/watches", data="nope", headers=auth())).status == 400
    resp = await client.put(f"/api/watches/{watch['id']}", json={"enabled": "no"}, headers=auth())
    assert resp.status == 400 and (await resp.json())["field"] == "enabled"
    resp = await client.put(f"/api/watches/{watch['id']}", json={"enabled": False}, headers=auth())
    assert (await resp.json())["enabled"] is False
    assert (await client.put("/api/watches/999", json={"enabled": True}, headers=auth())).status == 404
    assert (await client.put(f"/api/watches/{watch['id']}", json={"enabled": True}, headers=agent)).status == 403
    listed = (await (await client.get("/api/watches", headers=sup)).json())["watches"]
    assert [(w["word"], w["enabled"]) for w in listed] == [("过敏", False)]
    assert (await client.delete(f"/api/watches/{watch['id']}", headers=agent)).status == 403
    assert (await client.delete(f"/api/watches/{watch['id']}", headers=auth())).status == 200
    assert (await client.delete(f"/api/watches/{watch['id']}", headers=auth())).status == 404
    assert (await client.get("/api/watch-hits?limit=0", headers=auth())).status == 400
    assert (await client.get("/api/watch-hits?before=x", headers=auth())).status == 400


async def test_customer_message_with_watched_word_notifies_supervisors_once(client, hub, wecom):
    for word in ("过敏", "急用", "投诉"):
        assert (await client.post("/api/watches", json={"word": word}, headers=auth())).status == 201
    await make_user(hub, "sue", "supervisor")
    await make_user(hub, "amy", "agent")
    sup = await Agent(server_url(client), await login(client, "sue")).connect()
    agent = await Agent(server_url(client), await login(client, "amy")).connect()
    try:
        assert (await post(client, wecom, text_xml("corp", "cust-1", "用了面霜过敏了，急用！", 501))).status == 200
        assert (await post(client, wecom, text_xml("corp", "cust-2", "什么时候发货", 502))).status == 200
        await hub.pipeline.drain()
        hits = await sup.wait("watch.hit", 2)
        assert sorted(h["word"] for h in hits) == ["急用", "过敏"]
        msg = (await messages(hub, peer_id="cust-1"))[0]
        assert {h["message_id"] for h in hits} == {msg.id}
        assert hits[0]["conversation_id"] == msg.conversation_id and hits[0]["account_id"] == WECOM["id"]
        assert hits[0]["text"] == "用了面霜过敏了，急用！"
        assert "watch.hit" not in agent.by_name  # supervisors only

        # the job runs again (as after a crash before its completion was recorded): nothing new
        await client.server.app[WATCHES].step(JobContext(0, "inbound", 1, msg))
        listed = await (await client.get("/api/watch-hits", headers=auth())).json()
        assert sorted(h["word"] for h in listed["hits"]) == ["急用", "过敏"] and listed["next_before"] is None
        page = await (await client.get("/api/watch-hits?limit=1", headers=auth())).json()
        assert len(page["hits"]) == 1 and page["next_before"] == page["hits"][0]["id"]

        # an agent's reply with the word is not a customer message
        resp = await client.post(f"/api/conversations/{msg.conversation_id}/messages",
                                 json={"text": "过敏的话可以退", "client_id": "r1"}, headers=auth())
        assert resp.status == 202, await resp.text()
        reply = [m for m in await messages(hub, conversation_id=msg.conversation_id) if m.direction == "out"][0]
        await client.server.app[WATCHES].step(JobContext(0, "inbound", 0, reply))
        await hub.pipeline.drain()
        assert len(sup.by_name["watch.hit"]) == 2
        listed = await (await client.get("/api/watch-hits", headers=auth())).json()
        assert len(listed["hits"]) == 2
    finally:
        await sup.close()
        await agent.close()
