"""Quality checks (智能质检): each rule kind on its own (pure), then in real time over a live session
(hits stored with the triggering messages; anxiety words raise a supervisor alert), in batch over the
archive (idempotent), results per conversation and per agent, and role checks."""
from __future__ import annotations

import pytest

from hub.supervisor.quality_rules import QMessage, check_session, parse_rule
from hub.supervisor.sla_rules import RuleError
from tests.conftest import auth
from tests.helpers import wait_for
from tests.rt_helpers import login, make_user
from tests.test_sla import T0, Desk, desk, start_session  # noqa: F401 - the fixture

M = QMessage
CHAT = [M(1, 0, "customer", "在吗"), M(2, 1, "bot", "您好，我是小助手"), M(3, 5, "customer", "我要投诉！转人工"),
        M(4, 30, "agent", "您好，很高兴为您服务", 7), M(5, 40, "customer", "快点，很急"),
        M(6, 100, "agent", "亲，这个不归我们管，你自己去问快递", 7), M(7, 110, "agent", "还有其他问题吗", 7)]


async def _eq(value, want) -> bool:  # noqa: ANN001
    return await value == want


def rule(kind: str, **params) -> object:  # noqa: ANN003
    return parse_rule({"kind": kind, "params": params}, 1)


def test_forbidden_words_in_agent_replies_only():
    hits = check_session(rule("forbidden_words", words=["不归我们管", "自己去问", "在吗"]), CHAT, 5, ended=False)
    assert [(h.key, h.message_ids, h.agent_id) for h in hits] == [("m6", (6,), 7)]  # the customer's 在吗 is not theirs
    assert hits[0].detail["words"] == ["不归我们管", "自己去问"]


def test_anxiety_words_in_customer_messages():
    hits = check_session(rule("anxiety_words", words=["投诉", "差评", "退款", "急"]), CHAT, 5, ended=False)
    assert [(h.key, h.detail["words"]) for h in hits] == [("m3", ["投诉"]), ("m5", ["急"])]
    assert parse_rule({"kind": "anxiety_words", "params": {"words": ["投诉"]}}).alerts


def test_required_phrase_within_the_first_replies():
    greet = rule("required_phrase", phrases=["您好", "你好"], within_first=1)
    assert check_session(greet, CHAT, 5, ended=False) == []
    promo = rule("required_phrase", phrases=["双十一"], within_first=2)
    assert check_session(promo, CHAT[:4], 5, ended=False) == []  # one reply so far: not decided yet
    [hit] = check_session(promo, CHAT, 5, ended=False)
    assert hit.key == "session" and hit.message_ids == (4, 6)
    # one reply then the session ended: judged on what there is
    [hit] = check_session(promo, CHAT[:4], 5, ended=True)
    assert hit.message_ids == (4,)
    anywhere = rule("required_phrase", phrases=["还有其他问题"], within_first=0)
    assert check_session(anywhere, CHAT[:6], 5, ended=False) == []  # judged when the session ends
    assert len(check_session(anywhere, CHAT[:6], 5, ended=True)) == 1
    assert check_session(anywhere, CHAT, 5, ended=True) == []
    # full-width / case differences do not hide a phrase
    assert check_session(rule("required_phrase", phrases=["HELLO"], within_first=1),
                         [M(1, 0, "agent", "ｈｅｌｌｏ！", 7)], 0, ended=True) == []


def test_slow_reply_counts_from_the_handover_and_the_oldest_unanswered_message():
    hits = check_session(rule("slow_reply", seconds=20), CHAT, 5, ended=False)
    assert [(h.key, h.message_ids, h.detail["waited"]) for h in hits] == [("m4", (4,), 25), ("m6", (5, 6), 60)]


def test_rule_validation_names_the_field():
    for body, field in (({"kind": "x", "params": {}}, "kind"), ({"kind": "forbidden_words", "params": {}}, "params.words"),
                        ({"kind": "forbidden_words", "params": {"words": ["ok", ""]}}, "params.words[1]"),
                        ({"kind": "slow_reply", "params": {"seconds": 0}}, "params.seconds"),
                        ({"kind": "required_phrase", "params": {"phrases": ["a"], "within_first": -1}},
                         "params.within_first"),
                        ({"kind": "slow_reply", "params": {"seconds": 5}, "enabled": "no"}, "enabled"),
                        ({"kind": "slow_reply"}, "params")):
        with pytest.raises(RuleError) as err:
            parse_rule(body)
        assert err.value.field == field


async def add_rule(desk: Desk, **body) -> dict:  # noqa: ANN003
    resp = await desk.client.post("/api/quality/rules", json=body, headers=auth())
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def results(desk: Desk, query: str = "") -> list[dict]:
    resp = await desk.client.get(f"/api/quality/results?{query}", headers=auth())
    assert resp.status == 200, await resp.text()
    return (await resp.json())["results"]


async def test_real_time_checks_and_the_anxiety_alert(desk):  # noqa: F811
    forbidden = await add_rule(desk, kind="forbidden_words", params={"words": ["不归我们管"]})
    greeting = await add_rule(desk, kind="required_phrase", name="问候语", params={"phrases": ["您好"], "within_first": 1})
    anxiety = await add_rule(desk, kind="anxiety_words", params={"words": ["投诉", "差评", "退款", "急"]})
    alice, sam = await desk.connect("alice"), await desk.connect("sam")
    await alice.call("status", {"status": "online"})
    session = await start_session(desk, alice)
    await desk.customer_says("wmSla1", "再不回我就投诉了")
    [alert] = await sam.wait("alert.raised")
    assert alert["kind"] == "quality" and alert["rule_id"] == anxiety["id"] and alert["session_id"] == session["id"]
    assert alert["detail"]["words"] == ["投诉"] and len(alert["detail"]["message_ids"]) == 1
    await alice.wait("alert.raised")  # the agent sees it on her session too
    ack = await alice.call("reply", {"session_id": session["id"], "text": "这个不归我们管哦"})
    hits = await results(desk, f"session={session['id']}")
    by_rule = {h["rule_id"]: h for h in hits}
    assert by_rule[forbidden["id"]]["message_ids"] == [ack["message_id"]]
    assert by_rule[forbidden["id"]]["agent_id"] == session["agent_id"]
    assert by_rule[greeting["id"]]["message_ids"] == [ack["message_id"]]  # no greeting in the first reply
    assert by_rule[anxiety["id"]]["conversation_id"] == session["conversation_id"]
    # a second anxious message joins the open alert's timeline instead of a second alert
    await desk.customer_says("wmSla1", "我要差评")
    await alice.wait("message.new", where=lambda d: d["message"]["text"] == "我要差评")

    async def timeline() -> list[str]:  # the observers run just after message.new was pushed
        resp = await desk.client.get(f"/api/alerts?session={session['id']}", headers=auth())
        [open_alert] = (await resp.json())["alerts"]
        return [e["kind"] for e in open_alert["timeline"]]

    await wait_for(lambda: _eq(timeline(), ["raised", "matched"]))
    # closing the session clears it
    await alice.call("close", {"session_id": session["id"]})
    [cleared] = await sam.wait("alert.cleared")
    assert cleared["clear_reason"] == "closed"
    # per agent
    resp = await desk.client.get("/api/quality/summary", headers=auth())
    [agent] = (await resp.json())["agents"]
    assert agent["agent_id"] == session["agent_id"] and agent["total"] == len(await results(desk)) == 4
    # per conversation
    assert len(await results(desk, f"conversation={session['conversation_id']}")) == 4
    assert await results(desk, "conversation=999") == []


async def test_batch_run_over_the_archive_is_idempotent(desk):  # noqa: F811
    alice = await desk.connect("alice")
    await alice.call("status", {"status": "online"})
    session = await start_session(desk, alice)
    await alice.call("reply", {"session_id": session["id"], "text": "在的，说吧"})
    await alice.call("close", {"session_id": session["id"]})
    # the rule is added afterwards: only a batch run finds the old conversation's miss
    greeting = await add_rule(desk, kind="required_phrase", params={"phrases": ["您好"], "within_first": 1})
    assert await results(desk) == []
    resp = await desk.client.post("/api/quality/run", json={"since": T0 - 10, "until": T0 + 10}, headers=auth())
    assert (await resp.json()) == {"sessions": 1, "new_hits": 1, "truncated": False}
    resp = await desk.client.post("/api/quality/run", json={"conversation_id": session["conversation_id"]},
                                  headers=auth())
    assert (await resp.json())["new_hits"] == 0
    [hit] = await results(desk, f"agent={session['agent_id']}&since={T0 - 10}")
    assert hit["rule_id"] == greeting["id"] and hit["session_id"] == session["id"]
    assert await results(desk, f"since={T0 + 1000}") == []


async def test_quality_api_roles_and_validation(desk):  # noqa: F811
    r = await add_rule(desk, kind="slow_reply", params={"seconds": 60})
    resp = await desk.client.put(f"/api/quality/rules/{r['id']}", json={"params": {"seconds": 90}}, headers=auth())
    assert resp.status == 200 and (await resp.json())["params"] == {"seconds": 90}
    resp = await desk.client.put(f"/api/quality/rules/{r['id']}", json={"params": {"seconds": "x"}}, headers=auth())
    assert resp.status == 400 and (await resp.json())["field"] == "params.seconds"
    await make_user(desk.hub, "bob")
    agent = {"Authorization": f"Bearer {await login(desk.client, 'bob')}"}
    for method, path in (("GET", "/api/quality/rules"), ("POST", "/api/quality/rules"),
                         ("PUT", f"/api/quality/rules/{r['id']}"), ("DELETE", f"/api/quality/rules/{r['id']}"),
                         ("GET", "/api/quality/results"), ("GET", "/api/quality/summary"),
                         ("POST", "/api/quality/run")):
        assert (await desk.client.request(method, path, json={}, headers=agent)).status == 403, (method, path)
    for body in ({}, {"since": "yesterday"}, {"since": 10, "until": 5}, {"conversation_id": "1"}):
        assert (await desk.client.post("/api/quality/run", json=body, headers=auth())).status == 400
    assert (await desk.client.get("/api/quality/results?agent=abc", headers=auth())).status == 400
    assert (await desk.client.delete(f"/api/quality/rules/{r['id']}", headers=auth())).status == 200
    assert (await desk.client.delete(f"/api/quality/rules/{r['id']}", headers=auth())).status == 404


async def test_anxiety_in_the_message_that_asked_for_a_human(desk):  # noqa: F811
    """The customer complained to the bot and asked for a human: the supervisor hears of it at the handover."""
    await add_rule(desk, kind="anxiety_words", params={"words": ["投诉", "退款"]})
    alice, sam = await desk.connect("alice"), await desk.connect("sam")
    await alice.call("status", {"status": "online"})
    session = await start_session_with(desk, alice, "我要退款，转人工")
    [alert] = await sam.wait("alert.raised")
    assert alert["session_id"] == session["id"] and alert["detail"]["words"] == ["退款"]
    [hit] = await results(desk, f"session={session['id']}")
    assert hit["agent_id"] is None or hit["agent_id"] == session["agent_id"]


async def start_session_with(desk: Desk, alice, text: str) -> dict:  # noqa: ANN001
    await desk.customer_says("wmAnx", text)
    [bundle] = await alice.wait("session.new")
    return bundle["session"]
