"""Callbacks end to end over real HTTP: both platforms, both modes, dedup, recall, bad input."""
from __future__ import annotations

import json

import pytest

from hub.app import create_app
from hub.clock import FakeClock
from hub.callbacks.crypto import sign
from tests.conftest import OA, WECOM, auth
from tests.helpers import count_messages, messages, pending_jobs, post, wait_for
from tests.wechat_client import event_xml, text_xml


async def test_healthz(client, hub, monkeypatch):
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert (await resp.json())["status"] == "ok"

    def down(*_a, **_k):  # noqa: ANN002, ANN003, ANN202
        raise OSError("connection refused")

    monkeypatch.setattr(hub.db, "read", down)  # the database stops answering: a 503 saying so (a 500 before)
    resp = await client.get("/healthz")
    assert resp.status == 503 and (await resp.json())["status"] == "database_unavailable"


async def test_wecom_url_verification_vector(aiohttp_client, hub_config, vectors):
    v = vectors["wecom_url_verify"]
    client = await aiohttp_client(create_app(hub_config, FakeClock(int(v["query"]["timestamp"]))))
    resp = await client.get(f"/callbacks/wecom/{WECOM['id']}", params=v["query"])
    assert resp.status == 200
    assert await resp.text() == v["answer"]
    bad = dict(v["query"], msg_signature="0" * 40)
    assert (await client.get(f"/callbacks/wecom/{WECOM['id']}", params=bad)).status == 401


async def test_vector_callbacks_are_archived(aiohttp_client, hub_config, vectors):
    client = await aiohttp_client(create_app(hub_config, FakeClock(1732261000)))
    hub = client.server.app["hub"] if "hub" in client.server.app else None  # noqa: F841
    for v in vectors["callbacks"]:
        account = WECOM["id"] if v["platform"] == "wecom" else OA["id"]
        resp = await client.post(f"/callbacks/{v['platform']}/{account}", params=v["query"], data=v["body"])
        assert resp.status == 200, await resp.text()
        assert await resp.text() == "success"
    from hub.app import HUB
    hub = client.server.app[HUB]
    rows = await messages(hub, direction="in")
    kinds = [r.kind for r in rows]
    assert kinds == ["text", "event.external_contact", "event.subscribe", "text"]
    assert rows[0].text == "你好,敏感肌能用吗?" and rows[0].peer_id == "wmCustomer001"
    assert json.loads(rows[1].data)["state"] == "store-sh-001"
    assert json.loads(rows[1].data)["welcome_code"] == "WELCOMECODE-abc123"
    assert rows[1].peer_id == "wmCustomer002"
    assert json.loads(rows[2].data)["scene"] == "livestream-1111"
    assert rows[3].channel == "oa" and rows[3].account_id == OA["id"]


async def test_vector_bad_ciphertexts_get_4xx(aiohttp_client, hub_config, vectors):
    client = await aiohttp_client(create_app(hub_config, FakeClock(1732261000)))
    for i, v in enumerate(vectors["bad"]):
        ts, nonce = "1732261000", f"n{i}"
        body = f"<xml><ToUserName><![CDATA[x]]></ToUserName><Encrypt><![CDATA[{v['encrypt']}]]></Encrypt></xml>"
        q = {"msg_signature": sign(WECOM["token"], ts, nonce, v["encrypt"]), "timestamp": ts, "nonce": nonce}
        resp = await client.post(f"/callbacks/wecom/{WECOM['id']}", params=q, data=body)
        if v["must_reject"]:
            assert 400 <= resp.status < 500, (v["why"], resp.status)
        else:
            assert resp.status in (200, 400), v["why"]


async def test_vector_bad_xml_gets_400(client, wecom, oa, vectors):
    for v in vectors["bad_xml"]:
        q, _ = wecom.encrypted("<xml/>")
        resp = await client.post(wecom.path, params=q, data=v["body"])
        assert resp.status == 400, v["why"]
        # the same hostile XML inside a valid encryption, and in OA plaintext mode
        resp = await post(client, wecom, v["body"])
        assert resp.status in (200, 400) and (resp.status == 400 or "no Encrypt" in v["why"]), v["why"]
        resp = await post(client, oa, v["body"], encrypted=False)
        assert resp.status in (200, 400) and (resp.status == 400 or "no Encrypt" in v["why"]), v["why"]


async def test_wecom_round_trip_and_retry_dedup(client, hub, wecom):
    xml = text_xml(WECOM["receive_id"], "wmAlice", "你好", 1001)
    for _ in range(3):  # the platform retries the same message
        resp = await post(client, wecom, xml)
        assert resp.status == 200 and await resp.text() == "success"
    assert await count_messages(hub, dedup_key="m:1001") == 1
    await hub.pipeline.drain()
    assert await pending_jobs(hub) == []


async def test_event_retry_dedup(client, hub, wecom):
    xml = event_xml(WECOM["receive_id"], "sys", "change_external_contact", 1732261005, ChangeType="add_external_contact",
                    UserID="zhangsan", ExternalUserID="wmBob", State="counter-1", WelcomeCode="WC1")
    for _ in range(2):
        assert (await post(client, wecom, xml)).status == 200
    rows = await messages(hub, kind="event.external_contact")
    assert len(rows) == 1 and rows[0].peer_id == "wmBob"


async def test_oa_plain_and_aes_modes(client, hub, oa):
    assert (await post(client, oa, text_xml("gh_1", "oAlice", "明文消息", 2001), encrypted=False)).status == 200
    assert (await post(client, oa, text_xml("gh_1", "oAlice", "加密消息", 2002))).status == 200
    rows = await messages(hub, account_id=OA["id"], direction="in")
    assert [r.text for r in rows] == ["明文消息", "加密消息"]
    assert rows[0].conversation_id == rows[1].conversation_id


async def test_oa_url_verification_both_modes(client, oa):
    resp = await client.get(oa.path, params=oa.verify_query("echo-123", encrypted=False))
    assert resp.status == 200 and await resp.text() == "echo-123"
    resp = await client.get(oa.path, params=oa.verify_query("echo-456", encrypted=True))
    assert resp.status == 200 and await resp.text() == "echo-456"
    bad = oa.verify_query("x", encrypted=False)
    bad["signature"] = "f" * 40
    assert (await client.get(oa.path, params=bad)).status == 401


async def test_all_message_types_and_unknown(client, hub, oa):
    to, frm = "gh_1", "oTypes"
    bodies = [
        {"MsgType": "image", "PicUrl": "http://img/1.jpg", "MediaId": "m1", "MsgId": "3001"},
        {"MsgType": "voice", "MediaId": "m2", "Format": "amr", "MsgId": "3002"},
        {"MsgType": "video", "MediaId": "m3", "ThumbMediaId": "t3", "MsgId": "3003"},
        {"MsgType": "location", "Location_X": "31.2", "Location_Y": "121.4", "Scale": "15", "Label": "上海市",
         "MsgId": "3004"},
        {"MsgType": "link", "Title": "订单截图", "Description": "d", "Url": "http://x", "MsgId": "3005"},
        {"MsgType": "hologram", "Whatever": "x", "MsgId": "3006"},
        {"MsgType": "event", "Event": "unsubscribe"},
        {"MsgType": "event", "Event": "SCAN", "EventKey": "store-7", "Ticket": "t"},
        {"MsgType": "event", "Event": "CLICK", "EventKey": "MENU_HELP"},
        {"MsgType": "event", "Event": "TEMPLATESENDJOBFINISH", "Status": "success"},
    ]
    from hub.callbacks import xmlcodec
    for i, extra in enumerate(bodies):
        xml = xmlcodec.render({"ToUserName": to, "FromUserName": frm, "CreateTime": 1732261100 + i, **extra})
        resp = await post(client, oa, xml)
        assert resp.status == 200, (extra, await resp.text())
    kinds = [r.kind for r in await messages(hub, peer_id=frm, direction="in")]
    assert kinds == ["image", "voice", "video", "location", "link", "unknown", "event.unsubscribe", "event.scan",
                     "event.click", "event.other"]
    unknown = (await messages(hub, kind="unknown"))[0]
    assert "hologram" in unknown.raw


async def test_bad_signature_wrong_key_stale_and_oversize(client, hub, wecom, oa, clock):
    xml = text_xml(WECOM["receive_id"], "wmEve", "x", 4001)
    assert (await post(client, wecom, xml, tamper_signature=True)).status == 401
    # wrong key: a corp encrypting with another EncodingAESKey but signing correctly
    from tests.wechat_client import PlatformSim
    other = PlatformSim("wecom", WECOM["id"], WECOM["token"], "A" * 43, WECOM["receive_id"], clock)
    assert (await post(client, other, xml)).status == 400
    # wrong receive id (another corp's)
    other = PlatformSim("wecom", WECOM["id"], WECOM["token"], WECOM["encoding_aes_key"], "ww-other", clock)
    assert (await post(client, other, xml)).status == 400
    # stale timestamp (replay)
    assert (await post(client, wecom, xml, timestamp=str(int(clock.now()) - 3600))).status == 401
    # oversize body
    q, _ = wecom.encrypted(xml)
    assert (await client.post(wecom.path, params=q, data=b"x" * 70_000)).status == 413
    assert (await post(client, oa, "<xml>" + "a" * 70_000 + "</xml>", encrypted=False)).status == 413
    # unknown account
    assert (await client.post("/callbacks/wecom/nobody", params=q, data=b"<xml/>")).status == 404
    assert (await client.post(f"/callbacks/oa/{WECOM['id']}", params=q, data=b"<xml/>")).status == 404
    assert await count_messages(hub) == 0


async def test_recall_marks_original(client, hub, wecom):
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmRecall", "发错了", 5001))
    from hub.callbacks import xmlcodec
    recall = xmlcodec.render({"ToUserName": WECOM["receive_id"], "FromUserName": "wmRecall",
                              "CreateTime": 1732261200, "MsgType": "revoke", "PreMsgId": "5001", "MsgId": "5002"})
    assert (await post(client, wecom, recall)).status == 200
    await hub.pipeline.drain()
    rows = await messages(hub, peer_id="wmRecall", direction="in")
    assert rows[0].recalled_at is not None and rows[0].text == "发错了"  # kept, marked
    assert rows[1].kind == "event.recall"


async def test_a_recall_before_its_original_marks_it_as_it_comes(client, hub, wecom):
    """The platform delivers the original again after the customer recalled it (the hub had not
    answered the first delivery): the original goes in recalled, once, whatever the retries."""
    from hub.callbacks import xmlcodec
    from hub.models import EarlyRecall
    recall = xmlcodec.render({"ToUserName": WECOM["receive_id"], "FromUserName": "wmEarly",
                              "CreateTime": 1732261200, "MsgType": "revoke", "PreMsgId": "5101", "MsgId": "5102"})
    assert (await post(client, wecom, recall)).status == 200
    await hub.pipeline.drain()
    assert await count_messages(hub, dedup_key="m:5101") == 0
    for _ in range(2):  # the retried original, and a retry of that
        assert (await post(client, wecom, text_xml(WECOM["receive_id"], "wmEarly", "发错了", 5101))).status == 200
    await hub.pipeline.drain()
    [original] = await messages(hub, dedup_key="m:5101")
    assert original.recalled_at is not None and original.text == "发错了"  # kept, marked
    # a message of this customer that was not recalled stays unmarked
    assert (await post(client, wecom, text_xml(WECOM["receive_id"], "wmEarly", "在吗", 5103))).status == 200
    await hub.pipeline.drain()
    assert (await messages(hub, dedup_key="m:5103"))[0].recalled_at is None
    # the same recall again (a platform retry) leaves nothing waiting for an original
    assert (await post(client, wecom, recall)).status == 200
    await hub.pipeline.drain()
    async with hub.db.read() as conn:
        waiting = (await conn.execute(EarlyRecall.__table__.select())).all()
    assert [(w.account_id, w.msg_key) for w in waiting] == [(WECOM["id"], "m:5101")]


async def test_history_api_paged_newest_first(client, hub, wecom):
    await hub.settings.set("queue_notify", False)  # only the customer's messages in this conversation
    for i in range(7):
        await post(client, wecom, text_xml(WECOM["receive_id"], "wmPager", f"m{i}", 6000 + i))
    conv = (await messages(hub, peer_id="wmPager"))[0].conversation_id
    assert (await client.get(f"/api/conversations/{conv}/messages")).status == 401
    resp = await client.get(f"/api/conversations/{conv}/messages", params={"limit": 3}, headers=auth())
    page = await resp.json()
    assert [m["text"] for m in page["messages"]] == ["m6", "m5", "m4"]
    # a message arriving between pages does not shift the next page
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmPager", "late", 6100))
    resp = await client.get(f"/api/conversations/{conv}/messages", params={"limit": 3, "before": page["next_before"]},
                            headers=auth())
    page2 = await resp.json()
    assert [m["text"] for m in page2["messages"]] == ["m3", "m2", "m1"]
    assert (await client.get("/api/conversations/999999/messages", headers=auth())).status == 404
    assert (await client.get("/api/conversations/abc/messages", headers=auth())).status == 400


async def test_pending_jobs_run_after_restart(aiohttp_client, hub_config, wecom):
    """Jobs written with messages survive a stop and run on the next start."""
    app = create_app(hub_config)
    client = await aiohttp_client(app)
    from hub.app import HUB
    hub = app[HUB]
    await hub.pipeline.stop()  # nothing runs the jobs in this process
    for i in range(3):
        assert (await post(client, wecom, text_xml(WECOM["receive_id"], "wmLater", f"x{i}", 7000 + i))).status == 200
    assert len(await pending_jobs(hub)) == 3
    await client.close()
    client2 = await aiohttp_client(create_app(hub_config))
    hub2 = client2.server.app[HUB]
    await wait_for(lambda: _no_jobs(hub2))


async def _no_jobs(hub) -> bool:  # noqa: ANN001
    return not await pending_jobs(hub)


async def test_a_body_arriving_in_pieces_is_read_whole(client, hub, wecom, oa):
    """A body split across TCP segments (a slow link, a large body) is read to its end, with a
    Content-Length or chunked, and the size cap still holds for a chunked one."""
    import asyncio
    from urllib.parse import urlencode

    q, body = wecom.encrypted(text_xml(WECOM["receive_id"], "wmSlow", "分两段到达", 7001))
    half = len(body) // 2
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(f"POST {wecom.path}?{urlencode(q)} HTTP/1.1\r\nHost: hub\r\nContent-Type: text/xml\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body[:half])
    await writer.drain()
    await asyncio.sleep(0.05)  # the handler has started on the first half by now
    writer.write(body[half:])
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"success"), answer

    async def pieces(data: bytes, size: int):  # noqa: ANN202 - sent chunked, a pause between chunks
        for i in range(0, len(data), size):
            yield data[i:i + size]
            await asyncio.sleep(0.01)

    q, body = oa.plain(text_xml(OA["receive_id"], "oSlow", "chunked 也行", 7002))
    resp = await client.post(oa.path, params=q, data=pieces(body, 40))
    assert resp.status == 200 and await resp.text() == "success"
    q, _ = wecom.encrypted("<xml/>")
    resp = await client.post(wecom.path, params=q, data=pieces(b"<xml>" + b"a" * 70_000 + b"</xml>", 8192))
    assert resp.status == 413
    assert [r.text for r in await messages(hub, direction="in")] == ["分两段到达", "chunked 也行"]


async def test_a_menu_view_event_with_a_long_url_is_archived_once(client, hub, oa):
    """An Official Account menu VIEW event's key is the menu's URL, often past the 160 characters of
    the dedup key's column: PostgreSQL refused it, on every retry. Its key is cut with a digest of the
    whole (a retry finds the same one); two URLs that differ only at their end stay two events."""
    url = "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx123&redirect_uri=" + "x" * 200
    view = event_xml(OA["receive_id"], "oViewer", "VIEW", 1732261300, EventKey=url + "#a")
    other = event_xml(OA["receive_id"], "oViewer", "VIEW", 1732261300, EventKey=url + "#b")
    for xml in (view, view, other):
        assert (await post(client, oa, xml, encrypted=False)).status == 200
    rows = await messages(hub, peer_id="oViewer")
    assert len(rows) == 2 and rows[0].dedup_key != rows[1].dedup_key
    assert all(len(r.dedup_key) <= 160 for r in rows)


async def test_events_that_differ_only_in_their_other_fields_are_two(client, hub, wecom, oa):
    """WeCom's customer-group and tag events come from "sys" with no EventKey; two in one second
    (two groups changed) differ only in ChatId. Two template results for one user in one second
    differ only in MsgID. Each is its own event, and a retry of either is still a duplicate."""
    from hub.callbacks import xmlcodec

    def chat(chat_id: str) -> str:
        return xmlcodec.render({"ToUserName": WECOM["receive_id"], "FromUserName": "sys", "CreateTime": 1732261400,
                                "MsgType": "event", "Event": "change_external_chat", "ChatId": chat_id,
                                "ChangeType": "update", "UpdateDetail": "add_member"})

    def template(msg_id: str) -> str:
        return xmlcodec.render({"ToUserName": OA["receive_id"], "FromUserName": "oTemplated", "CreateTime": 1732261400,
                                "MsgType": "event", "Event": "TEMPLATESENDJOBFINISH", "MsgID": msg_id,
                                "Status": "success"})

    for xml, sim in ((chat("wrGroupA"), wecom), (chat("wrGroupB"), wecom), (chat("wrGroupA"), wecom),
                     (template("301"), oa), (template("302"), oa), (template("302"), oa)):
        assert (await post(client, sim, xml)).status == 200
    await hub.pipeline.drain()
    groups = [json.loads(r.data) for r in await messages(hub, account_id=WECOM["id"], kind="event.other")]
    assert sorted(json.loads(g["fields_json"])["ChatId"] for g in groups) == ["wrGroupA", "wrGroupB"]
    assert len(await messages(hub, peer_id="oTemplated", kind="event.other")) == 2


async def test_events_from_sys_are_the_platforms_not_a_customers(client, hub, wecom):
    """WeCom sends its group and tag events "from" sys: they are archived as the system's, with no
    customer, so no customer called "sys" is created (nor its profile fetched) for them."""
    from sqlalchemy import func, select

    from hub.callbacks import xmlcodec
    from hub.models import Identity

    xml = xmlcodec.render({"ToUserName": WECOM["receive_id"], "FromUserName": "sys", "CreateTime": 1732261500,
                           "MsgType": "event", "Event": "change_external_tag", "Id": "etTag1",
                           "TagType": "tag", "ChangeType": "create"})
    assert (await post(client, wecom, xml)).status == 200
    assert (await post(client, wecom, text_xml(WECOM["receive_id"], "wmRealCustomer", "hi", 99001, 1732261501))).status == 200
    await hub.pipeline.drain()
    [event] = await messages(hub, kind="event.other")
    assert (event.peer_id, event.sender) == ("", "system")
    async with hub.db.read() as conn:
        peers = (await conn.execute(select(Identity.__table__.c.value))).scalars().all()
        assert "sys" not in peers and "wmRealCustomer" in peers
        assert (await conn.execute(select(func.count()).select_from(Identity.__table__))).scalar() == 1


async def test_deep_or_foreign_xml_is_a_400_never_a_500(client, hub, wecom, oa):
    """An unknown type with 1,000 nested levels (7 KB) was a 500 when its fields were archived as JSON
    (Python's recursion limit); nor is a root other than <xml> WeChat's."""
    deep = "<Deep>" + "<a>" * 1000 + "x" + "</a>" * 1000 + "</Deep>"
    unknown = f"<xml><ToUserName>gh</ToUserName><FromUserName>oDeep</FromUserName><CreateTime>1732261100</CreateTime>" \
              f"<MsgType>hologram</MsgType><MsgId>77990</MsgId>{deep}</xml>"
    event = f"<xml><ToUserName>{WECOM['receive_id']}</ToUserName><FromUserName>sys</FromUserName>" \
            f"<CreateTime>1732261100</CreateTime><MsgType>event</MsgType><Event>whatever</Event>{deep}</xml>"
    assert (await post(client, oa, unknown, encrypted=False)).status == 400
    assert (await post(client, oa, unknown)).status == 400
    assert (await post(client, wecom, event)).status == 400
    ok = text_xml("gh", "oDeep", "三层以内", 77991).replace("</xml>", "<A><B><C>x</C></B></A></xml>")
    assert (await post(client, oa, ok, encrypted=False)).status == 200
    body = text_xml("gh", "oDeep", "root", 77993).replace("xml>", "notxml>")
    assert (await post(client, oa, body, encrypted=False)).status == 400
    assert (await post(client, oa, body)).status == 400
    assert [m.text for m in await messages(hub, peer_id="oDeep")] == ["三层以内"]
