"""微信客服: the kf_msg_or_event signal -> sync_msg pull (paged) -> archive exactly once."""
from __future__ import annotations

import asyncio
import json

from sqlalchemy import select as sql_select

from hub.app import HUB, create_app
from hub.clock import FakeClock
from hub.callbacks.kf import KfPuller
from hub.models import Conversation
from tests.conftest import WECOM
from tests.helpers import messages, pending_jobs, post
from tests.wechat_client import PlatformSim, event_xml

conversations = Conversation.__table__

KFID = "wkAAAA111"


async def count_pulled(hub) -> int:  # noqa: ANN001
    """Messages archived from kf/sync_msg (not the hub's own replies such as queue notices)."""
    return sum(1 for r in await messages(hub, channel="kf") if (r.dedup_key or "").startswith("m:"))


def kf_items(n: int, start: int = 0) -> list[dict]:
    items = []
    for i in range(start, start + n):
        items.append({"msgid": f"kfmsg-{i}", "open_kfid": KFID, "external_userid": f"wmKf{i % 3}",
                      "send_time": 1732261000 + i, "origin": 3, "msgtype": "text", "text": {"content": f"客服消息{i}"}})
    return items


def signal(token: str, t: int = 1732261000) -> str:
    return event_xml(WECOM["receive_id"], "sys", "kf_msg_or_event", t, Token=token, OpenKfId=KFID)


async def start(aiohttp_client, hub_config, clock):  # noqa: ANN001, ANN201
    client = await aiohttp_client(create_app(hub_config, clock))
    sim = PlatformSim("wecom", WECOM["id"], WECOM["token"], WECOM["encoding_aes_key"], WECOM["receive_id"], clock)
    return client, client.server.app[HUB], sim


async def test_signal_pull_paged_archive(aiohttp_client, hub_config, standin):
    clock = FakeClock()
    client, hub, sim = await start(aiohttp_client, hub_config, clock)
    for item in kf_items(5):
        standin.add_kf_message(KFID, item)
    standin.add_kf_message(KFID, {"msgid": "kfev-1", "open_kfid": KFID, "external_userid": "wmKf0", "send_time": 1732261010,
                                  "origin": 4, "msgtype": "event",
                                  "event": {"event_type": "enter_session", "open_kfid": KFID, "external_userid": "wmKf0",
                                            "scene": "live", "scene_param": "room-11", "welcome_code": "WCODE"}})
    standin.add_kf_message(KFID, {"msgid": "kfstaff-1", "open_kfid": KFID, "external_userid": "wmKf0",
                                  "send_time": 1732261011, "origin": 5, "servicer_userid": "lisi",
                                  "msgtype": "text", "text": {"content": "来自手机端的回复"}})
    resp = await post(client, sim, signal("TOKEN-1"))
    assert resp.status == 200 and await resp.text() == "success"
    await hub.pipeline.drain()
    assert [p.get("token") for p in standin.kf_pulls] == ["TOKEN-1"] * 4  # 7 items, 2 per page
    assert [p.get("cursor", "") for p in standin.kf_pulls] == ["", "2", "4", "6"]
    rows = [r for r in await messages(hub, channel="kf") if (r.dedup_key or "").startswith("m:")]
    assert len(rows) == 7
    enter = [r for r in rows if r.kind == "event.kf.enter_session"][0]
    assert json.loads(enter.data)["welcome_code"] == "WCODE" and json.loads(enter.data)["scene_param"] == "room-11"
    staff = [r for r in rows if r.sender == "staff:lisi"][0]
    assert staff.direction == "out" and staff.text == "来自手机端的回复"
    # the same signal again (a platform retry) and a new signal: nothing doubles, the cursor moves on
    await post(client, sim, signal("TOKEN-1"))
    standin.add_kf_message(KFID, kf_items(1, start=100)[0])
    await post(client, sim, signal("TOKEN-2", 1732261020))
    await hub.pipeline.drain()
    assert await count_pulled(hub) == 8
    assert standin.kf_pulls[-1]["cursor"] == "7"
    assert await pending_jobs(hub) == []


async def test_crash_between_archive_and_cursor_update(aiohttp_client, hub_config, standin, monkeypatch):
    clock = FakeClock()
    client, hub, sim = await start(aiohttp_client, hub_config, clock)
    for item in kf_items(4):
        standin.add_kf_message(KFID, item)
    real_store = KfPuller.store_cursor
    crashes = {"n": 0}

    async def crashing_store(self, account_id, open_kfid, cursor):  # noqa: ANN001
        if crashes["n"] == 0:
            crashes["n"] += 1
            raise RuntimeError("simulated crash after the archive commit, before the cursor update")
        return await real_store(self, account_id, open_kfid, cursor)

    monkeypatch.setattr(KfPuller, "store_cursor", crashing_store)
    await post(client, sim, signal("TOKEN-C"))
    await hub.pipeline.drain()
    assert await count_pulled(hub) == 2  # first page archived, cursor not stored
    jobs = await pending_jobs(hub)
    assert len(jobs) == 1 and jobs[0].attempts == 1 and "simulated crash" in jobs[0].last_error
    clock.advance(60)  # the retry is due
    await hub.pipeline.drain()
    assert await count_pulled(hub) == 4  # re-pulled page deduplicated, nothing skipped
    assert await pending_jobs(hub) == []
    assert await hub.kf.load_cursor(WECOM["id"], KFID) == "4"


async def test_pulls_of_one_kf_account_never_overlap(aiohttp_client, hub_config, standin):
    clock = FakeClock()
    client, hub, sim = await start(aiohttp_client, hub_config, clock)
    standin.pull_delay = 0.05
    for item in kf_items(6):
        standin.add_kf_message(KFID, item)
    await asyncio.gather(*(post(client, sim, signal(f"T{i}", 1732261000 + i)) for i in range(4)))
    await hub.pipeline.drain()
    await asyncio.gather(*(hub.kf.pull(WECOM["id"], KFID, "T9") for _ in range(3)))
    assert standin.max_pulls_in_flight == 1
    assert await count_pulled(hub) == 6


async def test_odd_values_in_a_pulled_item_do_not_jam_the_pull(aiohttp_client, hub_config, standin):
    """A NUL in a pulled text and a staff id longer than its column are stored (cleaned, cut with a
    digest): PostgreSQL refused the batch, the cursor never moved, and every later pull of that kf
    account failed on the same page."""
    client, hub, sim = await start(aiohttp_client, hub_config, FakeClock())
    long_id = "s" * 90
    standin.add_kf_message(KFID, {"msgid": "kfodd-1", "open_kfid": KFID, "external_userid": "wmKfOdd",
                                  "send_time": 1732261010, "origin": 3, "msgtype": "text",
                                  "text": {"content": "前\x00后"}})
    standin.add_kf_message(KFID, {"msgid": "kfodd-2", "open_kfid": KFID, "external_userid": "wmKfOdd",
                                  "send_time": 1732261011, "origin": 5, "servicer_userid": long_id,
                                  "msgtype": "text", "text": {"content": "员工"}})
    # a text cut inside an emoji: a lone surrogate escape (neither database stores one), and a whole one
    standin.add_kf_message(KFID, {"msgid": "kfodd-3", "open_kfid": KFID, "external_userid": "wmKfOdd",
                                  "send_time": 1732261012, "origin": 3, "msgtype": "text",
                                  "text": {"content": "半个\ud83d 和一个\U0001f600"}})
    assert (await post(client, sim, signal("TOKEN-ODD"))).status == 200
    await hub.pipeline.drain()
    rows = {r.dedup_key: r for r in await messages(hub, channel="kf")}
    assert rows["m:kfodd-1"].text == "前\ufffd后"
    sender = rows["m:kfodd-2"].sender
    assert len(sender) <= 64 and sender.startswith("staff:sss") and sender != f"staff:{long_id}"[:64]
    assert rows["m:kfodd-3"].text == "半个\ufffd 和一个\U0001f600"
    assert json.loads(rows["m:kfodd-3"].raw)["text"]["content"] == "半个\ufffd 和一个\U0001f600"


async def test_a_stale_event_token_is_dropped_not_retried(aiohttp_client, hub_config, standin):
    """The event's token lives 10 minutes. Refused (95007), the pull goes on without it at once; a
    signal older than that (a hub that was down, a retried job) pulls without it from the start.
    Sent stale, it failed on every retry for 13 minutes, and the signals queued behind it went
    stale in turn. Each kf account's signals are a conversation of their own."""
    clock = FakeClock()
    client, hub, sim = await start(aiohttp_client, hub_config, clock)
    for item in kf_items(3):
        standin.add_kf_message(KFID, item)
    standin.expired_kf_tokens.add("TOKEN-OLD")
    assert (await post(client, sim, signal("TOKEN-OLD", int(clock.now())))).status == 200
    await hub.pipeline.drain()
    assert [p.get("token") for p in standin.kf_pulls] == ["TOKEN-OLD", None, None]  # refused, then 2 pages
    assert len([r for r in await messages(hub, channel="kf") if r.dedup_key.startswith("m:")]) == 3

    standin.add_kf_message(KFID, kf_items(1, start=50)[0])
    sent = int(clock.now())
    clock.advance(15 * 60)  # the hub was down: the signal's job runs 15 minutes after it came
    assert (await post(client, sim, signal("TOKEN-LATE", sent), timestamp=str(int(clock.now())))).status == 200
    await hub.pipeline.drain()
    assert standin.kf_pulls[3:] == [{"limit": 1000, "open_kfid": KFID, "cursor": "3"}]
    assert len([r for r in await messages(hub, channel="kf") if r.dedup_key.startswith("m:")]) == 4
    signals = [r for r in await messages(hub, direction="in") if r.kind == "event.kf_msg_or_event"]
    async with hub.db.read() as conn:
        threads = {t for (t,) in (await conn.execute(sql_select(conversations.c.thread).where(
            conversations.c.id.in_([r.conversation_id for r in signals])))).all()}
    assert threads == {KFID}


async def test_a_customers_or_staffs_recall_marks_the_original(aiohttp_client, hub_config, standin):
    """kf/sync_msg reports recalls as the events user_recall_msg (the customer's) and
    servicer_recall_msg (a staff member's, from another client), naming the message in recall_msgid:
    the original is kept and marked recalled, the recall is archived as a recall."""
    clock = FakeClock()
    client, hub, sim = await start(aiohttp_client, hub_config, clock)
    customer, staff = kf_items(2)
    staff.update(origin=5, servicer_userid="lisi", external_userid=customer["external_userid"])
    for item in (customer, staff):
        standin.add_kf_message(KFID, item)
    for n, (event_type, recalled) in enumerate((("user_recall_msg", customer), ("servicer_recall_msg", staff))):
        event = {"event_type": event_type, "open_kfid": KFID, "external_userid": customer["external_userid"],
                 "recall_msgid": recalled["msgid"]}
        if event_type == "servicer_recall_msg":
            event["servicer_userid"] = "lisi"
        standin.add_kf_message(KFID, {"msgid": f"kfrecall-{n}", "open_kfid": KFID, "send_time": 1732261100 + n,
                                      "origin": 4, "msgtype": "event", "event": event})
    assert (await post(client, sim, signal("TOKEN-R"))).status == 200
    await hub.pipeline.drain()
    rows = {r.dedup_key: r for r in await messages(hub, channel="kf")}
    assert rows["m:kfmsg-0"].recalled_at is not None and rows["m:kfmsg-0"].text == "客服消息0"
    assert rows["m:kfmsg-1"].recalled_at is not None
    assert [rows[f"m:kfrecall-{n}"].kind for n in (0, 1)] == ["event.recall", "event.recall"]
    assert rows["m:kfrecall-0"].peer_id == customer["external_userid"]
    assert [json.loads(rows[f"m:kfrecall-{n}"].data).get("servicer_userid") for n in (0, 1)] == [None, "lisi"]


async def test_msg_send_fail_marks_the_reply_failed_and_says_why(aiohttp_client, hub_config, standin):
    """The platform accepted a send, then reported (an event in the next pull) that it did not reach
    the customer: the reply shows failed, with the reason, instead of "sent"."""
    from hub.outbound.queue import OutboundRequest
    client, hub, sim = await start(aiohttp_client, hub_config, FakeClock())
    standin.add_kf_message(KFID, {"msgid": "kfin-1", "open_kfid": KFID, "external_userid": "wmKfFail",
                                  "send_time": 1732261000, "origin": 3, "msgtype": "text", "text": {"content": "在吗"}})
    assert (await post(client, sim, signal("TOKEN-F1"))).status == 200
    await hub.pipeline.drain()
    conv = (await messages(hub, peer_id="wmKfFail"))[0].conversation_id
    reply = await hub.outbound.enqueue(OutboundRequest(WECOM["id"], conv, "您好，在的", "agent:1"))
    other = await hub.outbound.enqueue(OutboundRequest(WECOM["id"], conv, "还有什么可以帮您", "agent:1"))
    await hub.outbound.drain()
    [row] = await messages(hub, id=reply)
    platform_msgid = json.loads(row.data)["platform_msgid"]
    assert row.status == "sent" and platform_msgid
    standin.add_kf_message(KFID, {"msgid": "kfev-fail", "open_kfid": KFID, "external_userid": "wmKfFail",
                                  "send_time": 1732261005, "origin": 4, "msgtype": "event",
                                  "event": {"event_type": "msg_send_fail", "open_kfid": KFID,
                                            "external_userid": "wmKfFail", "fail_msgid": platform_msgid,
                                            "fail_type": 10}})
    assert (await post(client, sim, signal("TOKEN-F2"))).status == 200
    await hub.pipeline.drain()
    [row] = await messages(hub, id=reply)
    assert row.status == "failed"
    assert json.loads(row.data)["error"] == {"errcode": 3_000_010, "errmsg": "客户拒收"}
    assert (await messages(hub, id=other))[0].status == "sent"  # only the one it names


async def test_a_mini_program_card_from_a_customer_opens_a_session(aiohttp_client, hub_config, standin):
    """It was archived as an unknown type and reached nobody: no bot answer, no session for an agent."""
    from hub.models import ServiceSession
    clock = FakeClock()
    client, hub, sim = await start(aiohttp_client, hub_config, clock)
    standin.add_kf_message(KFID, {"msgid": "kfmp-1", "open_kfid": KFID, "external_userid": "wmCard",
                                  "send_time": 1732261000, "origin": 3, "msgtype": "miniprogram",
                                  "miniprogram": {"title": "这款面霜", "appid": "wx123", "pagepath": "pages/item?id=9",
                                                  "thumb_media_id": "MEDIA"}})
    assert (await post(client, sim, signal("TOKEN-MP"))).status == 200
    await hub.pipeline.drain()
    [card] = await messages(hub, peer_id="wmCard")
    assert card.kind == "unknown" and card.sender == "customer"
    t = ServiceSession.__table__
    async with hub.db.read() as conn:
        opened = (await conn.execute(sql_select(t.c.id).where(t.c.conversation_id == card.conversation_id))).all()
    assert len(opened) == 1


async def test_a_first_pull_archives_the_platforms_history_without_answering_it(aiohttp_client, hub_config, standin):
    """With no stored cursor (a new kf account, a lost cursor) kf/sync_msg answers the last 3 days: those
    went through the bots and welcomes as if just sent (a bot answered a two-day-old question staff had
    answered; a welcome went out on a two-day-old, 20-second code). They are archived as history; what
    was sent in the last minutes, and everything of later pulls, is handled as ever."""
    from tests.conftest import auth
    clock = FakeClock()
    client, hub, sim = await start(aiohttp_client, hub_config, clock)
    await hub.settings.set("welcome_text", "欢迎光临！")
    rule = {"match_type": "contains", "pattern": "发票", "reply": {"type": "text", "text": "电子发票随包裹寄出。"}}
    assert (await client.post("/api/keyword-rules", json=rule, headers=auth())).status == 201
    old, now = int(clock.now()) - 2 * 86400, int(clock.now())
    for item in (
        {"msgid": "h-e1", "send_time": old, "origin": 4, "msgtype": "event",
         "event": {"event_type": "enter_session", "open_kfid": KFID, "external_userid": "wmOld", "scene": "s",
                   "welcome_code": "WC-OLD"}},
        {"msgid": "h-m1", "open_kfid": KFID, "external_userid": "wmOld", "send_time": old + 5, "origin": 3,
         "msgtype": "text", "text": {"content": "发票怎么开"}},
        {"msgid": "h-m0", "open_kfid": KFID, "external_userid": "wmOld", "send_time": old + 6, "origin": 3,
         "msgtype": "text", "text": {"content": "发错了"}},
        {"msgid": "h-r0", "open_kfid": KFID, "external_userid": "wmOld", "send_time": old + 7, "origin": 4,
         "msgtype": "event", "event": {"event_type": "user_recall_msg", "open_kfid": KFID, "external_userid": "wmOld",
                                       "recall_msgid": "h-m0"}},
        {"msgid": "h-m2", "open_kfid": KFID, "external_userid": "wmNew", "send_time": now - 30, "origin": 3,
         "msgtype": "text", "text": {"content": "发票能开吗"}},
    ):
        standin.add_kf_message(KFID, item)
    assert (await post(client, sim, signal("TOKEN-H", now))).status == 200
    await hub.pipeline.drain()
    await hub.outbound.drain()
    assert {r.peer_id for r in await messages(hub, channel="kf") if r.direction == "in"} >= {"wmOld", "wmNew"}
    sent = [(s["path"], s["body"]) for s in standin.sent]
    assert not [b for p, b in sent if p.endswith("/kf/send_msg_on_event")]
    answered = [b["touser"] for p, b in sent if p.endswith("/kf/send_msg")]
    assert answered == ["wmNew"]
    [wrong] = [r for r in await messages(hub, channel="kf") if r.text == "发错了"]
    assert wrong.recalled_at is not None  # a recall in the history still marks its message
    # the cursor is stored now: a later pull handles even an item sent a while ago (a hub that was down)
    standin.add_kf_message(KFID, {"msgid": "h-m3", "open_kfid": KFID, "external_userid": "wmOld",
                                  "send_time": now - 3600, "origin": 3, "msgtype": "text", "text": {"content": "发票呢"}})
    assert (await post(client, sim, signal("TOKEN-H2", now))).status == 200
    await hub.pipeline.drain()
    await hub.outbound.drain()
    answered = [s["body"]["touser"] for s in standin.sent if s["path"].endswith("/kf/send_msg")]
    assert answered == ["wmNew", "wmOld"]
