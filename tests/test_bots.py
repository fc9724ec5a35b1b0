"""The bot pipeline end to end over HTTP callbacks: handover words, keyword rule priority, FAQ
answers and suggestions, business hours, welcomes once, imports with bad rows, analytics."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hub.app import HUB, create_app
from hub.clock import FakeClock
from tests.conftest import OA, ROOT, WECOM, auth
from tests.helpers import messages, pending_jobs, post
from tests.wechat_client import PlatformSim, event_xml, text_xml

FAQ_FILE = ROOT / "tests" / "fixtures" / "faq_zh.json"


@pytest.fixture
async def bot(aiohttp_client, hub_config, standin):
    """A hub on a fake clock with the test FAQ set loaded; returns (client, hub, clock, oa, wecom)."""
    clock = FakeClock(1_732_500_000.0)  # Mon 2024-11-25 02:00 UTC = 10:00 Asia/Shanghai
    client = await aiohttp_client(create_app(hub_config, clock))
    hub = client.server.app[HUB]
    resp = await client.post("/api/faq/import?format=json", data=FAQ_FILE.read_text(), headers=auth())
    assert (await resp.json())["imported"] >= 60
    oa = PlatformSim("oa", OA["id"], OA["token"], OA["encoding_aes_key"], OA["receive_id"], clock)
    wecom = PlatformSim("wecom", WECOM["id"], WECOM["token"], WECOM["encoding_aes_key"], WECOM["receive_id"], clock)
    return client, hub, clock, oa, wecom


async def say(client, hub, sim, who: str, text: str, msg_id: int) -> None:  # noqa: ANN001
    assert (await post(client, sim, text_xml("gh", who, text, msg_id))).status == 200
    await hub.pipeline.drain()
    await hub.outbound.drain()


async def bot_replies(hub, who: str) -> list[str]:  # noqa: ANN001
    return [m.text for m in await messages(hub, peer_id=who, direction="out", sender="bot")]


async def open_sessions(hub) -> list:  # noqa: ANN001
    from sqlalchemy import select
    from hub.models import ServiceSession
    t = ServiceSession.__table__
    async with hub.db.read() as conn:
        return (await conn.execute(select(t).where(t.c.state != "closed"))).all()


async def test_confident_faq_answered_by_bot_not_routed(bot, standin):
    client, hub, clock, oa, _ = bot
    await say(client, hub, oa, "oFaq", "我皮肤比较敏感，能用你们的产品吗", 1)
    replies = await bot_replies(hub, "oFaq")
    assert len(replies) == 1 and "敏感肌" in replies[0]
    assert standin.sent[-1]["body"]["text"]["content"] == replies[0]  # went out through the platform API
    assert await open_sessions(hub) == []


async def test_a_question_recalled_before_it_came_gets_no_answer_and_no_session(bot, standin):
    """Its recall came first (the platform retried the question later): the FAQ would answer it,
    but the customer took it back: no bot reply, no session for an agent."""
    from hub.callbacks import xmlcodec
    client, hub, clock, oa, _ = bot
    recall = xmlcodec.render({"ToUserName": "gh", "FromUserName": "oTookBack", "CreateTime": int(clock.now()),
                              "MsgType": "revoke", "PreMsgId": "7001", "MsgId": "7002"})
    assert (await post(client, oa, recall)).status == 200
    await hub.pipeline.drain()
    await say(client, hub, oa, "oTookBack", "我皮肤比较敏感，能用你们的产品吗", 7001)
    [question] = await messages(hub, peer_id="oTookBack", kind="text")
    assert question.recalled_at is not None
    assert await bot_replies(hub, "oTookBack") == [] and await open_sessions(hub) == []
    await say(client, hub, oa, "oTookBack", "我皮肤比较敏感，能用你们的产品吗", 7003)  # asked again: answered
    assert len(await bot_replies(hub, "oTookBack")) == 1


async def test_handover_words_route_to_human(bot):
    client, hub, clock, oa, _ = bot
    await say(client, hub, oa, "oHuman", "别跟我说机器人，转人工", 2)
    assert await bot_replies(hub, "oHuman") == []
    [session] = await open_sessions(hub)
    assert session.state == "queued"


async def test_bare_rengong_hands_over_instead_of_faq_loop(bot):
    """"人工" (and 我要人工) is a handover word, and the FAQ telling how to reach an agent names a phrase
    that does reach one: the bot answered "reply 人工" to "人工" for ever and no session opened."""
    client, hub, clock, oa, _ = bot
    await say(client, hub, oa, "oRg", "人工", 30)
    assert await bot_replies(hub, "oRg") == []
    [session] = await open_sessions(hub)
    assert session.state == "queued"
    await say(client, hub, oa, "oRg2", "我要人工", 31)
    assert await bot_replies(hub, "oRg2") == [] and len(await open_sessions(hub)) == 2
    await say(client, hub, oa, "oHow", "客服在吗", 32)
    [how] = await bot_replies(hub, "oHow")
    phrase = how.split("「")[1].split("」")[0]
    await say(client, hub, oa, "oHow", phrase, 33)
    assert await bot_replies(hub, "oHow") == [how] and len(await open_sessions(hub)) == 3


async def test_unsure_faq_passes_suggestions_to_agent(bot):
    client, hub, clock, oa, _ = bot
    await say(client, hub, oa, "oMaybe", "我的快递好像丢了怎么办", 3)
    assert await bot_replies(hub, "oMaybe") == []  # not sure enough to answer alone
    [session] = await open_sessions(hub)
    suggestions = json.loads(session.suggestions)
    assert suggestions and all({"id", "question", "answer", "score"} <= set(s) for s in suggestions)


async def test_off_topic_goes_to_routing_and_is_listed_unanswered(bot):
    client, hub, clock, oa, _ = bot
    await say(client, hub, oa, "oOff", "你们老板是谁啊", 4)
    await say(client, hub, oa, "oOff2", "你们老板是谁啊？", 5)
    assert await bot_replies(hub, "oOff") == []
    resp = await client.get("/api/bots/unanswered", headers=auth())
    top = (await resp.json())["questions"][0]
    assert top["count"] == 2 and "老板" in top["question"]


async def test_keyword_rule_priority_and_invalid_regex(bot):
    client, hub, clock, oa, _ = bot
    bad = await client.post("/api/keyword-rules", json={"match_type": "regex", "pattern": "([a-z",
                                                        "reply": {"type": "text", "text": "x"}}, headers=auth())
    assert bad.status == 400 and (await bad.json())["field"] == "pattern"
    low = {"match_type": "contains", "pattern": "发票", "priority": 1, "reply": {"type": "text", "text": "低优先级"}}
    high = {"match_type": "regex", "pattern": r"(开|要).{0,3}发票", "priority": 10,
            "reply": {"type": "text", "text": "电子发票将在确认收货后24小时内发送到您的邮箱。"}}
    for rule in (low, high):
        assert (await client.post("/api/keyword-rules", json=rule, headers=auth())).status == 201
    await say(client, hub, oa, "oInv", "我想开个发票", 6)
    assert await bot_replies(hub, "oInv") == ["电子发票将在确认收货后24小时内发送到您的邮箱。"]
    await say(client, hub, oa, "oInv2", "发票在哪看", 7)
    assert await bot_replies(hub, "oInv2") == ["低优先级"]
    rules = (await (await client.get("/api/keyword-rules", headers=auth())).json())["rules"]
    assert [r["hits"] for r in rules] == [1, 1]
    tester = await client.post("/api/keyword-rules/test", json={"text": "要发票"}, headers=auth())
    assert (await tester.json())["rule"]["priority"] == 10
    # exact rules match the whole (normalised) message only
    await client.post("/api/keyword-rules", json={"match_type": "exact", "pattern": "Ｈｉ", "priority": 50,
                                                  "reply": {"type": "link", "title": "新品", "url": "https://example.com/new"}},
                      headers=auth())
    await say(client, hub, oa, "oHi", "hi", 8)
    [link] = await messages(hub, peer_id="oHi", direction="out", sender="bot")
    assert link.kind == "link" and json.loads(link.raw)["msgtype"] == "news"


async def test_business_hours_offhours_reply_once_and_queue_for_morning(bot):
    client, hub, clock, oa, _ = bot
    await hub.settings.set("business_hours", {
        "timezone": "Asia/Shanghai", "weekly": {str(d): [["09:00", "12:00"], ["13:30", "22:00"]] for d in range(7)}})
    clock.t = 1_732_500_000.0 + 13 * 3600  # 23:00 Shanghai
    await say(client, hub, oa, "oNight", "转人工", 9)
    await say(client, hub, oa, "oNight", "有人吗", 10)
    replies = await bot_replies(hub, "oNight")
    assert replies == [await hub.settings.get("offhours_text")]  # once per closed period
    [session] = await open_sessions(hub)
    assert session.state == "queued"
    clock.t = 1_732_500_000.0 + 2.5 * 3600  # the lunch break, 12:30 Shanghai
    await say(client, hub, oa, "oLunch", "在吗在吗", 11)
    assert await bot_replies(hub, "oLunch") == [await hub.settings.get("offhours_text")]


async def test_welcome_once_per_event(bot, standin):
    client, hub, clock, oa, wecom = bot
    await hub.settings.set("welcome_text", "欢迎关注！回复「新品」看本周上新。")
    sub = event_xml("gh", "oNewFan", "subscribe", int(clock.now()), EventKey="qrscene_store-1")
    for _ in range(3):  # platform retries
        assert (await post(client, oa, sub)).status == 200
    add = event_xml(WECOM["receive_id"], "sys", "change_external_contact", int(clock.now()),
                    ChangeType="add_external_contact", UserID="zhangsan", ExternalUserID="wmNewFriend",
                    WelcomeCode="WC-123", State="store-1")
    await post(client, wecom, add)
    await post(client, wecom, add)
    await hub.pipeline.drain()
    await hub.outbound.drain()
    paths = [s["path"] for s in standin.sent]
    assert paths.count("/cgi-bin/message/custom/send") == 1
    assert paths.count("/cgi-bin/externalcontact/send_welcome_msg") == 1
    welcome = [s["body"] for s in standin.sent if s["path"].endswith("send_welcome_msg")][0]
    assert welcome["welcome_code"] == "WC-123" and welcome["text"]["content"].startswith("欢迎关注")


async def test_analytics_rates(bot):
    client, hub, clock, oa, _ = bot
    await say(client, hub, oa, "oA1", "敏感肌能用吗", 20)
    await say(client, hub, oa, "oA2", "转人工", 21)
    data = await (await client.get("/api/bots/analytics", headers=auth())).json()
    assert data["conversations"] == 2 and data["resolved_by_bot"] == 1 and data["handed_over"] == 1
    assert data["bot_resolution_rate"] == 0.5 and data["handover_rate"] == 0.5
    assert data["faqs"][0]["hits"] == 1


async def test_a_job_run_again_counts_a_rule_or_faq_hit_once(bot):
    """A job whose later step failed runs again, bot step included: its reply is not sent twice
    (deduplicated), and now its hit is not counted twice either."""
    client, hub, clock, oa, _ = bot
    rule = {"match_type": "contains", "pattern": "发票", "reply": {"type": "text", "text": "电子发票随包裹寄出。"}}
    assert (await client.post("/api/keyword-rules", json=rule, headers=auth())).status == 201
    failed: list[int] = []

    async def fails_once_per_message(ctx) -> None:  # noqa: ANN001 - a step after the bots', failing once
        if ctx.message.id not in failed:
            failed.append(ctx.message.id)
            raise ConnectionError("database failing over")

    hub.pipeline.add_inbound_step(fails_once_per_message)
    await say(client, hub, oa, "oHitK", "我要开发票", 31)
    await say(client, hub, oa, "oHitF", "我皮肤比较敏感，能用你们的产品吗", 32)
    for _ in range(3):  # the retries come due
        clock.advance(120)
        await hub.pipeline.drain()
    assert len(failed) == 2 and not await pending_jobs(hub)
    assert await bot_replies(hub, "oHitK") == ["电子发票随包裹寄出。"]
    rules = (await (await client.get("/api/keyword-rules", headers=auth())).json())["rules"]
    assert [r["hits"] for r in rules] == [1]
    faq = [f for f in await hub.kb.list() if f["hits"]]
    assert len(faq) == 1 and faq[0]["hits"] == 1


async def test_faq_api_crud_import_and_roles(bot):
    client, hub, clock, oa, _ = bot
    created = await client.post("/api/faq", json={"question": "你们有线下快闪店吗", "similar": ["快闪活动在哪里办"],
                                                  "answer": "本月快闪店在上海静安嘉里中心。", "category": "活动"}, headers=auth())
    assert created.status == 201
    fid = (await created.json())["id"]
    match = await client.post("/api/faq/match", json={"text": "快闪店在什么地方"}, headers=auth())
    assert (await match.json())["matches"][0]["id"] == fid
    bad = await client.post("/api/faq", json={"question": "", "answer": "x"}, headers=auth())
    assert bad.status == 400 and (await bad.json())["field"] == "question"
    csv_text = "question,similar,answer,category\n能开专票吗,专票|增值税发票,可以开具,发票\n,缺问题,答案,x\n缺答案,,,x\n"
    imp = await (await client.post("/api/faq/import?format=csv", data=csv_text, headers=auth())).json()
    assert imp["imported"] == 1 and [e["line"] for e in imp["rejected"]] == [3, 4]
    exported = await (await client.get("/api/faq/export", headers=auth())).text()
    assert "能开专票吗,专票|增值税发票,可以开具,发票" in exported
    assert (await client.delete(f"/api/faq/{fid}", headers=auth())).status == 200
    # an agent may match but not edit
    from tests.rt_helpers import login, make_user
    await make_user(hub, "agent7")
    token = await login(client, "agent7")
    assert (await client.post("/api/faq", json={"question": "q", "answer": "a"},
                              headers={"Authorization": f"Bearer {token}"})).status == 403
    client.session.cookie_jar.clear()
    assert (await client.get("/api/faq")).status == 401


async def test_brand_word_removed_leaves_an_ordinary_word_as_it_was(bot):
    """Taking a word out of the brand dictionary gives jieba back its own frequency: 顺丰 (a word jieba
    knows) was deleted from jieba, so 顺丰几天到 fell from a confident answer to a weak suggestion."""
    client, hub, clock, oa, _ = bot

    async def match() -> dict:
        return await (await client.post("/api/faq/match", json={"text": "顺丰几天到"}, headers=auth())).json()

    before = await match()
    assert before["confident"]
    assert (await client.post("/api/brand-words", json={"words": ["顺丰"]}, headers=auth())).status == 200
    removed = await client.post("/api/brand-words/remove", json={"words": ["顺丰"]}, headers=auth())
    assert (await removed.json())["removed"] == ["顺丰"]
    assert await match() == before
    assert hub.kb.tokenizer.tokens("顺丰几天到") == hub.kb.tokenizer.tokens("快递几天到")


async def test_faq_match_top_is_validated(bot):
    """``top`` is an integer 1..50: "abc" was a 500 (int() raised), true counted as 1."""
    client, hub, clock, oa, _ = bot
    for top in ("abc", "3", 0, 51, -1, 2.5, True, [3]):
        resp = await client.post("/api/faq/match", json={"text": "多久发货", "top": top}, headers=auth())
        assert resp.status == 400, top
        assert await resp.json() == {"error": "invalid_top", "message": "top must be an integer 1..50",
                                     "field": "top"}
    for body, count in (({"top": 1}, 1), ({"top": 50}, None), ({}, None), ({"top": None}, None)):
        resp = await client.post("/api/faq/match", json={"text": "多久发货", **body}, headers=auth())
        assert resp.status == 200, body
        matches = (await resp.json())["matches"]
        assert len(matches) == count if count else 1 <= len(matches) <= 50


async def test_faq_change_of_another_process_kept_after_own_write(bot):
    """A process whose own FAQ write follows another worker's still loads that worker's change: it
    stored the database's version after its write, which counted the other change too, so it never
    reloaded (not even on the config bus's refresh)."""
    from hub.knowledge.store import KnowledgeBase

    client, hub, clock, oa, _ = bot
    other = KnowledgeBase(hub.db, clock)
    await other.load()
    kb = hub.kb
    ours = [await kb.create({"question": "可以用支付宝付款吗", "answer": "暂不支持支付宝。"})]
    theirs = [("你们有线下快闪店吗", "快闪店开在哪里"), ("店铺会员日是哪天", "会员日是几号"),
              ("可以定制刻字吗", "能不能刻字")]
    own_writes = [lambda: kb.create({"question": "能用花呗分期吗", "answer": "支持花呗。"}),
                  lambda: kb.update(ours[0]["id"], {"answer": "仅支持微信支付。"}),
                  lambda: kb.delete(ours[0]["id"])]
    for (question, asked), own_write in zip(theirs, own_writes):
        await other.refresh_if_changed(every=0.0)
        await other.create({"question": question, "answer": "以店铺公告为准。"})
        await own_write()
        await kb.refresh_if_changed(every=0.0)
        assert kb.match(asked)[0].question == question, question


async def test_faq_change_committed_during_own_write_is_loaded_later(bot, monkeypatch):
    """Another worker's FAQ write committed while this process's write runs (PostgreSQL: each of its
    statements sees the latest commits) was counted in the version stored at the end, unloaded."""
    import asyncio

    from hub.knowledge.store import KnowledgeBase

    client, hub, clock, oa, _ = bot
    other = KnowledgeBase(hub.db, clock)
    await other.load()
    kb = hub.kb
    theirs: list[asyncio.Task] = []
    reads: list[int] = []
    real_version = KnowledgeBase._current_version

    async def version_with_a_write_meanwhile(self, conn):  # noqa: ANN001, ANN202
        if self is kb:
            reads.append(1)
        if self is kb and len(reads) == 2:  # the version read at the end of our write (the 1st: its start)
            theirs.append(asyncio.create_task(
                other.create({"question": "你们有线下快闪店吗", "answer": "以店铺公告为准。"})))
            await asyncio.sleep(0.3)  # their commit lands now, unless FAQ writes take turns
        return await real_version(self, conn)

    monkeypatch.setattr(KnowledgeBase, "_current_version", version_with_a_write_meanwhile)
    await kb.create({"question": "能用花呗分期吗", "answer": "支持花呗。"})
    monkeypatch.setattr(KnowledgeBase, "_current_version", real_version)
    await theirs[0]
    await kb.refresh_if_changed(every=0.0)
    assert kb.match("快闪店开在哪里")[0].question == "你们有线下快闪店吗"


def test_cli_faq_import_export_match(tmp_path):
    db = f"sqlite+aiosqlite:///{tmp_path}/faq.db"
    csv_path = tmp_path / "faq.csv"
    csv_path.write_text("question,similar,answer,category\n多久发货,什么时候发货|几天发货,48小时内发货,物流\n"
                        ",,,\n退货地址,寄回地址,上海市,售后\n", encoding="utf-8")
    run = lambda *a, **kw: subprocess.run([sys.executable, "-m", "hub", *a], cwd=ROOT, capture_output=True,  # noqa: E731
                                          text=True, timeout=60, **kw)
    r = run("faq", "import", str(csv_path), "--db", db)
    assert "imported 2 FAQ entries" in r.stdout and "rejected line 3" in r.stdout
    r = run("faq", "match", "-", "--json", "--db", db, input="什么时候能发货\n今天天气如何\n")
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert lines[0]["confident"] and lines[0]["matches"][0]["answer"] == "48小时内发货"
    assert not lines[1]["confident"]
    out = tmp_path / "out.json"
    assert run("faq", "export", str(out), "--db", db).returncode == 0
    assert [e["question"] for e in json.loads(out.read_text())] == ["多久发货", "退货地址"]
    gbk = tmp_path / "faq-gbk.csv"  # as Excel/WPS save a CSV on a Chinese Windows
    gbk.write_bytes("question,similar,answer,category\n发票怎么开,开发票,下单时备注抬头即可,售后\n".encode("gbk"))
    r = run("faq", "import", str(gbk), "--db", db)
    assert r.returncode == 0 and "imported 1 FAQ entries" in r.stdout, r.stderr


async def test_offhours_reply_only_to_a_customer_waiting(bot):
    """Closed: an unfollow, a menu click or a template's receipt is no customer waiting (no closed-
    hours text); a photo sent while a session is open (an agent working late) gets none either; a
    schedule that never opens still answers once, and routing goes on."""
    from hub.callbacks import xmlcodec

    client, hub, clock, oa, _ = bot
    await hub.settings.set("business_hours", {
        "timezone": "Asia/Shanghai", "weekly": {str(d): [["09:00", "22:00"]] for d in range(7)}})
    clock.t = 1_732_500_000.0 + 12 * 3600  # 22:00 Shanghai, closing time: open until now
    clock.t -= 600
    await say(client, hub, oa, "oLate", "转人工", 20)  # 21:50: to a human, no closed-hours text
    assert await bot_replies(hub, "oLate") == [] and len(await open_sessions(hub)) == 1
    clock.t += 3600  # 22:50
    at = int(clock.now())
    photo = xmlcodec.render({"ToUserName": "gh", "FromUserName": "oLate", "CreateTime": at, "MsgType": "image",
                             "PicUrl": "http://img.example/p.jpg", "MediaId": "M1", "MsgId": "21"})
    for xml in (photo, event_xml("gh", "oQuiet", "unsubscribe", at),
                event_xml("gh", "oQuiet", "CLICK", at + 1, EventKey="MENU_NEW"),
                event_xml("gh", "oQuiet", "TEMPLATESENDJOBFINISH", at + 2, MsgID="77", Status="success")):
        assert (await post(client, oa, xml)).status == 200
    await hub.pipeline.drain()
    await hub.outbound.drain()
    assert await bot_replies(hub, "oLate") == [] and await bot_replies(hub, "oQuiet") == []
    await hub.settings.set("business_hours", {"timezone": "Asia/Shanghai", "weekly": {}})  # never open
    await say(client, hub, oa, "oNever", "有人吗", 22)
    await say(client, hub, oa, "oNever", "在吗", 23)
    assert await bot_replies(hub, "oNever") == [await hub.settings.get("offhours_text")]
    assert len(await open_sessions(hub)) == 2  # routed: the job did not fail on "never"


def test_exact_and_contains_rules_see_past_punctuation_spaces_and_emoji():
    """Customers nearly always add "？", "！" or an emoji: an exact rule for 在吗 never fired on 在吗？."""
    from bots.keywords import Rule
    exact = Rule(1, "在吗", "exact", "在吗", {"type": "text", "text": "在的"})
    for said in ("在吗", " 在吗 ", "在吗？", "在吗?", "在吗~", "在 吗", "在吗😊", "在吗❤️", "在吗！！"):
        assert exact.matches(said), said
    for said in ("在吗在吗？", "现在吗", "在"):
        assert not exact.matches(said), said
    contains = Rule(2, "发票", "contains", "开 发票！", {"type": "text", "text": "x"})
    assert contains.matches("我想开发票") and not contains.matches("发票在哪")
    only_mark = Rule(3, "?", "exact", "？", {"type": "text", "text": "请问有什么可以帮您"})
    assert only_mark.matches("?") and not only_mark.matches("在吗?")  # a pattern of no words: as written


def test_a_short_handover_word_counts_only_as_the_whole_message():
    from bots.pipeline import contains_handover
    from hub.settings import DEFAULTS
    words = DEFAULTS["handover_words"]
    for said in ("人工", "人工！", "转 人 工", "能帮我转人工吗", "我要人工", "找真人客服", "真人?"):
        assert contains_handover(said, words), said
    for said in ("产品有人工香精吗", "真人秀直播间什么时候开播", "人工费多少", ""):
        assert not contains_handover(said, words), said


async def test_a_product_question_naming_a_short_handover_word_is_answered(bot):
    client, hub, clock, oa, _ = bot
    await say(client, hub, oa, "oScent", "产品有人工香精吗", 40)
    assert len(await bot_replies(hub, "oScent")) == 1 and await open_sessions(hub) == []


async def test_a_tie_between_two_faqs_goes_to_an_agent_with_both(bot):
    """"退货" scores 支持七天无理由退货吗 and 怎么申请退货 the same: the lower id answered, at random to
    the customer; now an agent answers, with both as suggestions."""
    client, hub, clock, oa, _ = bot
    matches = hub.kb.match("退货")
    assert len(matches) >= 2 and matches[0].score == matches[1].score
    assert not hub.kb.is_confident(matches)
    await say(client, hub, oa, "oTie", "退货", 50)
    assert await bot_replies(hub, "oTie") == [] and len(await open_sessions(hub)) == 1
