"""Channel QR codes (渠道活码): created on the platform stand-in, QR downloads that decode, scans/adds
through OA, WeCom and 微信客服 applying tags, the channel's welcome and its routing, and statistics."""
from __future__ import annotations

import asyncio
import re
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from urllib.parse import quote

import pytest
from sqlalchemy import select, text

from hub.app import HUB, create_app
from hub.channels.api import CHANNELS
from hub.channels.rules import day_of, users_at
from hub.channels.service import ChannelService
from hub.channels.stats import conversions
from hub.channels.step import ChannelStep
from hub.clock import FakeClock
from hub.db import Database
from hub.models import Conversation, Message
from hub.models.channels import ChannelAttribution, ChannelHit, ChannelStat
from hub.pipeline import JobContext
from tests.conftest import OA, WECOM, auth
from tests.helpers import post
from tests.rt_helpers import Agent, login, make_user, server_url
from tests.wechat_client import event_xml, text_xml

KFID = "wkChannel01"
WECOM_CODE = {"name": "门店柜台 Store A", "platform": "wecom", "account_id": WECOM["id"], "state": "store-a",
              "staff": ["zhangsan", "lisi"], "tags": ["门店", "到店客"], "welcome_text": "欢迎来到A店！到店出示可领小样。"}
OA_CODE = {"name": "直播间", "platform": "oa", "account_id": OA["id"], "tags": ["直播间"],
           "welcome_text": "感谢关注！直播专属券已放入您的账户。"}
KF_CODE = {"name": "包裹卡", "platform": "kf", "account_id": WECOM["id"], "open_kfid": KFID,
           "scene_param": "parcel card/11", "tags": ["包裹卡"], "welcome_text": "扫包裹卡的朋友您好，售后问题请直接留言。"}


async def create(client, body: dict, status: int = 201) -> dict:  # noqa: ANN001
    resp = await client.post("/api/channels", json=body, headers=auth())
    data = await resp.json()
    assert resp.status == status, data
    return data


async def settle(hub) -> None:  # noqa: ANN001
    await hub.pipeline.drain()
    await hub.outbound.drain()


async def customer_of(hub, peer_id: str) -> tuple[int, str | None]:  # noqa: ANN001
    t = Conversation.__table__
    async with hub.db.read() as conn:
        row = (await conn.execute(select(t.c.customer_id, t.c.channel_code).where(t.c.peer_id == peer_id))).one()
    return row.customer_id, row.channel_code


async def tags_of(client, customer_id: int) -> dict[str, str]:  # noqa: ANN001
    data = await (await client.get(f"/api/customers/{customer_id}", headers=auth())).json()
    return {t["name"]: t["source"] for t in data["tags"]}


async def today(client, code_id: int) -> dict:  # noqa: ANN001
    resp = await client.get(f"/api/channels/{code_id}/stats?days=7", headers=auth())
    assert resp.status == 200
    days = await resp.json()
    assert len(days) == 7 and days[-1]["day"] == day_of(client.server.app[HUB].clock.now())
    return days[-1]


def zbar(path) -> str:  # noqa: ANN001
    out = subprocess.run(["/usr/bin/zbarimg", "--raw", "-q", str(path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def svg_to_png(svg: bytes, path) -> None:  # noqa: ANN001
    """Rasterise segno's SVG (one path of h-runs per module row) into a PNG zbarimg can read."""
    root = ET.fromstring(svg)
    p = root.find("{http://www.w3.org/2000/svg}path")
    scale = float(re.search(r"scale\(([\d.]+)\)", p.get("transform")).group(1))
    size = int(float(root.get("width")) / scale)
    grid = [[255] * size for _ in range(size)]
    x = y = 0.0
    for op, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", p.get("d")):
        if op == "M":
            x, y = float(a), float(b)
        elif op == "m":
            x, y = x + float(a), y + float(b)
        else:
            for col in range(int(x), int(x + float(a))):
                grid[int(y)][col] = 0
            x += float(a)
    k = 6
    raw = b"".join(b"\x00" + bytes(v for v in row for _ in range(k)) for row in grid for _ in range(k))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", size * k, size * k, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def subscribe(scene: str, who: str, t: int) -> str:
    return event_xml("gh_acme", who, "subscribe", t, EventKey=f"qrscene_{scene}", Ticket="tk")


def add_contact(state: str, who: str, t: int, code: str = "WC-1") -> str:
    return event_xml(WECOM["receive_id"], "sys", "change_external_contact", t, ChangeType="add_external_contact",
                     UserID="zhangsan", ExternalUserID=who, State=state, WelcomeCode=code)


def kf_signal(token: str, t: int) -> str:
    return event_xml(WECOM["receive_id"], "sys", "kf_msg_or_event", t, Token=token, OpenKfId=KFID)


def enter_session(msgid: str, who: str, t: int, scene_param: str) -> dict:
    return {"msgid": msgid, "open_kfid": KFID, "external_userid": who, "send_time": t, "origin": 4,
            "msgtype": "event", "event": {"event_type": "enter_session", "open_kfid": KFID, "external_userid": who,
                                          "scene": "standin", "scene_param": scene_param, "welcome_code": f"KW-{msgid}"}}


async def test_create_each_kind_registers_on_the_platform(client, hub, standin):
    wc = await create(client, WECOM_CODE)
    assert standin.contact_ways[-1] == {"path": "/cgi-bin/externalcontact/add_contact_way", "body": {
        "type": 2, "scene": 2, "state": "store-a", "user": ["zhangsan", "lisi"], "skip_verify": True}}
    assert wc["config_id"].startswith("standin-cfg-") and wc["qr_url"].startswith(standin.base_url + "/wwpic/")
    assert wc["state"] == "store-a" and wc["tags"] == ["门店", "到店客"] and wc["enabled"] is True
    oa = await create(client, OA_CODE)
    scene = oa["scene"]
    assert scene and len(scene) <= 64  # generated from the name
    assert standin.contact_ways[-1] == {"path": "/cgi-bin/qrcode/create", "body": {
        "action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": scene}}}}
    assert oa["ticket"].startswith("gQStandinTicket") and oa["qr_url"].startswith("http://weixin.qq.com/q/")
    kf = await create(client, KF_CODE)
    call = standin.contact_ways[-1]
    assert call["path"] == "/cgi-bin/kf/add_contact_way" and call["body"] == {"open_kfid": KFID, "scene": kf["scene"]}
    assert kf["link_url"] == kf["qr_url"] + "&scene_param=" + quote("parcel card/11", safe="")
    single = await create(client, {"name": "staff card", "platform": "wecom", "account_id": WECOM["id"],
                                   "staff": ["wangwu"]})
    assert standin.contact_ways[-1]["body"]["type"] == 1 and len(single["state"]) <= 30
    listed = (await (await client.get("/api/channels", headers=auth())).json())["channels"]
    assert [c["id"] for c in listed] == [wc["id"], oa["id"], kf["id"], single["id"]]
    only_oa = await (await client.get("/api/channels?platform=oa", headers=auth())).json()
    assert [c["name"] for c in only_oa["channels"]] == ["直播间"]
    assert (await (await client.get(f"/api/channels/{kf['id']}", headers=auth())).json()) == kf
    assert (await client.get("/api/channels/999", headers=auth())).status == 404


@pytest.mark.parametrize("body, field", [
    ({**OA_CODE, "name": ""}, "name"),
    ({**OA_CODE, "platform": "weibo"}, "platform"),
    ({**WECOM_CODE, "state": "s" * 31}, "state"),
    ({**WECOM_CODE, "staff": []}, "staff"),
    ({**WECOM_CODE, "schedule": [{"weekdays": [0], "start": "09:00", "end": "18:00", "users": ["nobody"]}]},
     "schedule[0].users[0]"),
    ({**WECOM_CODE, "schedule": [{"weekdays": [7], "start": "09:00", "end": "18:00", "users": ["lisi"]}]},
     "schedule[0].weekdays"),
    ({**KF_CODE, "open_kfid": None}, "open_kfid"),
    ({**OA_CODE, "state": "x"}, "state"),
    ({**OA_CODE, "scene": "s" * 65}, "scene"),
    ({**OA_CODE, "staff": ["zhangsan"]}, "staff"),
    ({**OA_CODE, "account_id": WECOM["id"]}, "account_id"),
    ({**OA_CODE, "account_id": "nope"}, "account_id"),
    ({**OA_CODE, "tags": ["ok", ""]}, "tags[1]"),
    ({**OA_CODE, "route_agent_id": 4242}, "route_agent_id"),
    ({**OA_CODE, "colour": "red"}, "colour"),
])
async def test_validation_errors_are_field_level(client, standin, body, field):
    data = await create(client, body, status=400)
    assert data["field"] == field, data
    assert standin.contact_ways == []
    assert (await (await client.get("/api/channels", headers=auth())).json())["channels"] == []


async def test_welcome_text_is_held_to_what_its_platform_sends(client, standin):
    """The welcome goes out by the platform's send, which refuses a text over its UTF-8 byte limit every
    time (45002): the Official Account and 微信客服 take 2,048 bytes, WeCom's welcome 4,000."""
    for body, limit in ((OA_CODE, 2048), (KF_CODE, 2048), (WECOM_CODE, 4000)):
        calls = len(standin.contact_ways)
        over = await create(client, {**body, "welcome_text": "欢" * (limit // 3) + "abc"}, status=400)
        assert over["error"] == "invalid_welcome_text" and over["field"] == "welcome_text", over
        assert str(limit) in over["message"] and len(standin.contact_ways) == calls  # nothing registered
        fits = "欢" * (limit // 3) + "a" * (limit % 3)  # exactly the limit, under 2,000 characters
        code = await create(client, {**body, "welcome_text": fits})
        assert code["welcome_text"] == fits
        url = f"/api/channels/{code['id']}"
        resp = await client.put(url, json={"welcome_text": fits + "a"}, headers=auth())
        assert resp.status == 400 and (await resp.json())["field"] == "welcome_text"
        assert (await (await client.get(url, headers=auth())).json())["welcome_text"] == fits
    oa = await create(client, {**OA_CODE, "name": "more", "welcome_text": "a" * 2000})  # 2,000 ASCII: fits
    assert len(oa["welcome_text"]) == 2000


async def test_taken_key_and_platform_errors_store_nothing(client, standin):
    await create(client, WECOM_CODE)
    taken = await create(client, {**WECOM_CODE, "name": "again"}, status=409)
    assert taken["field"] == "state" and len(standin.contact_ways) == 1
    standin.fail_next.append(40058)
    err = await create(client, {**WECOM_CODE, "state": "store-b"}, status=502)
    assert err["error"] == "platform_error" and err["errcode"] == 40058 and "40058" in err["message"]
    standin.fail_next.append("http500")
    err = await create(client, OA_CODE, status=502)
    assert err["errcode"] == 1_000_500
    listed = (await (await client.get("/api/channels", headers=auth())).json())["channels"]
    assert [c["state"] for c in listed] == ["store-a"]


async def test_qr_downloads_decode_to_the_platform_url(client, standin, tmp_path):
    for body in (OA_CODE, KF_CODE):
        code = await create(client, body)
        expected = code["link_url"] if body["platform"] == "kf" else code["qr_url"]
        png = await client.get(f"/api/channels/{code['id']}/qr.png", headers=auth())
        assert png.status == 200 and png.content_type == "image/png"
        disposition = png.headers["Content-Disposition"]
        assert disposition.startswith("attachment;") and quote(body["name"], safe="") in disposition
        (tmp_path / "code.png").write_bytes(await png.read())
        assert zbar(tmp_path / "code.png") == expected
        svg = await client.get(f"/api/channels/{code['id']}/qr.svg", headers=auth())
        assert svg.status == 200 and svg.content_type == "image/svg+xml"
        assert svg.headers["Content-Disposition"].endswith(quote(body["name"] + ".svg", safe=""))
        svg_to_png(await svg.read(), tmp_path / "svg.png")
        assert zbar(tmp_path / "svg.png") == expected


async def test_wecom_qr_png_is_the_platforms_image(client, standin, tmp_path):
    """WeCom's qr_code is the URL of an image of the code: the PNG is that image, not a QR code of its URL."""
    code = await create(client, WECOM_CODE)
    link = standin.qr_images[code["qr_url"].removeprefix(standin.base_url)]
    for _ in range(2):
        png = await client.get(f"/api/channels/{code['id']}/qr.png?scale=8", headers=auth())
        assert png.status == 200 and png.content_type == "image/png"
        assert png.headers["Content-Disposition"].endswith(quote(WECOM_CODE["name"] + ".png", safe=""))
        assert await png.read() == standin.qr_png(link)
    assert standin.qr_image_requests == 1  # kept in memory
    (tmp_path / "code.png").write_bytes(standin.qr_png(link))
    assert zbar(tmp_path / "code.png") == link  # scanning it adds the contact
    svg = await client.get(f"/api/channels/{code['id']}/qr.svg", headers=auth())
    assert svg.status == 409 and (await svg.json())["error"] == "no_svg"
    gone = await create(client, {**WECOM_CODE, "state": "store-b"})
    standin.qr_images.clear()  # the platform's image cannot be had: a clear 502, no made-up code
    err = await client.get(f"/api/channels/{gone['id']}/qr.png", headers=auth())
    assert err.status == 502 and (await err.json())["error"] == "qr_image_unavailable"


async def test_oa_subscribe_and_scan_tag_welcome_and_count(client, hub, oa, standin):
    await hub.settings.set("welcome_text", "默认欢迎语")
    code = await create(client, OA_CODE)
    t = int(hub.clock.now())
    for _ in range(2):  # a platform retry changes nothing
        assert (await post(client, oa, subscribe(code["scene"], "oFan1", t))).status == 200
    await post(client, oa, event_xml("gh_acme", "oFan1", "SCAN", t + 5, EventKey=code["scene"], Ticket="tk"))
    await post(client, oa, subscribe(code["scene"], "oFan2", t + 6))
    await post(client, oa, subscribe("", "oPlain", t + 7))  # followed without a channel code
    await settle(hub)
    customer_id, channel_code = await customer_of(hub, "oFan1")
    assert channel_code == str(code["id"])
    assert await tags_of(client, customer_id) == {"直播间": "channel"}
    welcomes = [s["body"] for s in standin.sent if s["path"] == "/cgi-bin/message/custom/send"]
    by_user = {w["touser"]: w["text"]["content"] for w in welcomes}
    assert len(welcomes) == 3 and by_user == {"oFan1": OA_CODE["welcome_text"], "oFan2": OA_CODE["welcome_text"],
                                              "oPlain": "默认欢迎语"}
    assert await tags_of(client, (await customer_of(hub, "oPlain"))[0]) == {}
    stats = await today(client, code["id"])
    # two subscribes (a scan and a new follower each) and a SCAN (an existing follower: a scan only)
    assert (stats["scans"], stats["adds"], stats["conversations"], stats["conversions"]) == (3, 2, 2, 0)
    await hub.pipeline.drain()  # nothing left to run twice
    assert ((await today(client, code["id"]))["scans"], (await today(client, code["id"]))["adds"]) == (3, 2)
    assert await hit_kinds(hub, code["id"]) == ["scan+add", "scan", "scan+add"]


async def test_oa_follower_scanning_a_code_gets_its_welcome_once_a_day(client, hub, oa, standin):
    """An existing follower who scans a channel code (SCAN) gets that code's welcome (the scan opens the
    customer-service window), once a day however often they scan; a scan of no code with a welcome gets
    nothing, not the account's default welcome."""
    await hub.settings.set("welcome_text", "默认欢迎语")
    code = await create(client, OA_CODE)
    silent = await create(client, {**OA_CODE, "name": "海报", "welcome_text": ""})
    t = int(hub.clock.now())
    for i, scene in enumerate((code["scene"], code["scene"], "some-other-scene", silent["scene"])):
        assert (await post(client, oa, event_xml("gh_acme", "oFollower", "SCAN", t + i, EventKey=scene,
                                                 Ticket="tk"))).status == 200
    await settle(hub)
    welcomes = [s["body"] for s in standin.sent if s["path"] == "/cgi-bin/message/custom/send"]
    assert welcomes == [{"touser": "oFollower", "msgtype": "text", "text": {"content": OA_CODE["welcome_text"]}}]
    customer_id, channel_code = await customer_of(hub, "oFollower")
    assert channel_code == str(silent["id"]) and set(await tags_of(client, customer_id)) == {"直播间"}
    stats = await today(client, code["id"])
    assert (stats["scans"], stats["adds"], stats["conversations"]) == (2, 0, 1)


async def test_wecom_add_external_contact_with_state(client, hub, wecom, standin):
    code = await create(client, WECOM_CODE)
    await post(client, wecom, add_contact("store-a", "wmStoreFriend", int(hub.clock.now()), "WC-STORE"))
    await settle(hub)
    customer_id, channel_code = await customer_of(hub, "wmStoreFriend")
    assert channel_code == str(code["id"])
    assert await tags_of(client, customer_id) == {"门店": "channel", "到店客": "channel"}
    [welcome] = [s["body"] for s in standin.sent if s["path"] == "/cgi-bin/externalcontact/send_welcome_msg"]
    assert welcome == {"welcome_code": "WC-STORE", "text": {"content": WECOM_CODE["welcome_text"]}}
    stats = await today(client, code["id"])
    assert (stats["scans"], stats["adds"], stats["conversations"]) == (0, 1, 1)


async def test_kf_enter_session_with_scene_param(client, hub, wecom, standin):
    code = await create(client, KF_CODE)
    t = int(hub.clock.now())
    standin.add_kf_message(KFID, enter_session("kfev-1", "wmKfBuyer", t, "parcel card/11"))
    standin.add_kf_message(KFID, enter_session("kfev-2", "wmKfOther", t + 1, "unknown-param"))
    await post(client, wecom, kf_signal("KF-TOKEN-1", t))
    await settle(hub)
    customer_id, channel_code = await customer_of(hub, "wmKfBuyer")
    assert channel_code == str(code["id"]) and await tags_of(client, customer_id) == {"包裹卡": "channel"}
    assert (await customer_of(hub, "wmKfOther"))[1] is None
    on_event = [s["body"] for s in standin.sent if s["path"] == "/cgi-bin/kf/send_msg_on_event"]
    assert on_event == [{"code": "KW-kfev-1", "msgtype": "text", "text": {"content": KF_CODE["welcome_text"]}}]
    assert (await today(client, code["id"]))["adds"] == 1


async def hit_kinds(hub, code_id: int) -> list[str]:  # noqa: ANN001
    t = ChannelHit.__table__
    async with hub.db.read() as conn:
        return list((await conn.execute(select(t.c.kind).where(t.c.code_id == code_id).order_by(t.c.message_id)))
                    .scalars())


async def test_kf_entries_are_scans_and_a_new_customer_once(client, hub, wecom, standin):
    """Each time a customer opens the 微信客服 link is a scan; only the first through the code is an add
    (it counted one new customer per entry). Run again, by two processes at once, nothing more counts."""
    code = await create(client, KF_CODE)
    t = int(hub.clock.now())
    for i, who in enumerate(("wmKfAgain", "wmKfAgain", "wmKfAgain", "wmKfNew")):
        standin.add_kf_message(KFID, enter_session(f"kfev-again-{i}", who, t + i, "parcel card/11"))
    await post(client, wecom, kf_signal("KF-TOKEN-2", t))
    await settle(hub)
    stats = await today(client, code["id"])
    assert (stats["scans"], stats["adds"], stats["conversations"]) == (4, 2, 2)
    assert await hit_kinds(hub, code["id"]) == ["scan+add", "scan", "scan", "scan+add"]

    # the same four jobs run again from scratch in two processes at once (each its own engine and cache)
    msgs_t = Message.__table__
    async with hub.db.read() as conn:
        rows = (await conn.execute(select(msgs_t).where(msgs_t.c.kind == "event.kf.enter_session")
                                   .order_by(msgs_t.c.id))).all()
    async with hub.db.write() as conn:
        for table in (ChannelHit, ChannelAttribution, ChannelStat):
            await conn.execute(table.__table__.delete())
    other_db = Database(hub.db.url)
    try:
        steps = [ChannelStep(db, ChannelService(db, hub.clock, hub.api, hub.accounts), hub.customers)
                 for db in (hub.db, other_db)]

        async def run(step: ChannelStep, order: list) -> None:
            for row in order:
                await step.step(JobContext(job_id=0, kind="inbound", attempts=2, message=row))

        await asyncio.gather(run(steps[0], rows), run(steps[1], rows[::-1]), run(steps[0], rows))
    finally:
        await other_db.dispose()
    stats = await today(client, code["id"])
    assert (stats["scans"], stats["adds"], stats["conversations"]) == (4, 2, 2)
    kinds = await hit_kinds(hub, code["id"])
    assert sorted(kinds) == ["scan", "scan", "scan+add", "scan+add"]  # which entry was first may differ


async def test_channel_routes_the_next_message_to_its_group(client, hub, oa, wecom):
    await hub.settings.set("default_group", "presales")
    await make_user(hub, "alice", groups=("presales",))
    await make_user(hub, "bob", groups=("livestream",))
    code = await create(client, {**OA_CODE, "route_group": "livestream"})
    agents = [await Agent(server_url(client), await login(client, name)).connect() for name in ("alice", "bob")]
    alice, bob = agents
    try:
        for a in agents:
            assert (await a.call("status", {"status": "online"}))["ok"]
        t = int(hub.clock.now())
        await post(client, oa, subscribe(code["scene"], "oLive", t))
        await settle(hub)
        await post(client, oa, text_xml("gh_acme", "oLive", "直播间那款精华还有货吗", 31001, t + 1))
        [bundle] = await bob.wait("session.new")
        assert bundle["session"]["group"] == "livestream"
        assert bundle["history"][-1]["text"] == "直播间那款精华还有货吗"
        await post(client, oa, text_xml("gh_acme", "oWalkIn", "有优惠券吗", 31002, t + 2))
        [other] = await alice.wait("session.new")
        assert other["session"]["group"] == "presales"
        assert len(bob.by_name["session.new"]) == 1 and len(alice.by_name["session.new"]) == 1
    finally:
        for a in agents:
            await a.close()


async def test_update_disable_and_roles(client, hub, oa):
    code = await create(client, OA_CODE)
    url = f"/api/channels/{code['id']}"
    resp = await client.put(url, json={**code, "tags": ["直播间", "双11"], "welcome_text": "新欢迎语"}, headers=auth())
    updated = await resp.json()
    assert resp.status == 200 and updated["tags"] == ["直播间", "双11"] and updated["welcome_text"] == "新欢迎语"
    bad = await client.put(url, json={"scene": "other"}, headers=auth())
    assert bad.status == 400 and (await bad.json())["field"] == "scene"
    assert (await (await client.delete(url, headers=auth())).json())["enabled"] is False
    await post(client, oa, subscribe(code["scene"], "oAfterOff", int(hub.clock.now())))
    await settle(hub)
    customer_id, channel_code = await customer_of(hub, "oAfterOff")
    assert channel_code is None and await tags_of(client, customer_id) == {}
    await make_user(hub, "agent9")
    await make_user(hub, "sup1", role="supervisor")
    agent = {"Authorization": f"Bearer {await login(client, 'agent9')}"}
    sup = {"Authorization": f"Bearer {await login(client, 'sup1')}"}
    client.session.cookie_jar.clear()
    assert (await client.get("/api/channels", headers=agent)).status == 403
    assert (await client.get(f"{url}/stats", headers=sup)).status == 200
    assert (await client.get(f"{url}/qr.png", headers=sup)).status == 200
    assert (await client.post("/api/channels", json=OA_CODE, headers=sup)).status == 403
    assert (await client.put(url, json={"enabled": True}, headers=sup)).status == 403
    assert (await client.get("/api/channels")).status == 401
    assert (await client.get(f"{url}/stats?days=0", headers=auth())).status == 400


async def add_order(hub, order_id: str, who: str, status: str, created_at: float) -> None:  # noqa: ANN001
    from hub.models.orders import OrderRow
    async with hub.db.write() as conn:
        await conn.execute(OrderRow.__table__.insert().values(
            platform="custom", order_id=order_id, customer_id=(await customer_of(hub, who))[0], status=status,
            created_at=created_at, modified_at=created_at, synced_at=created_at,
            paid_at=created_at + 5 if status not in ("pending_payment", "closed") else None))


async def set_order_status(hub, order_id: str, status: str) -> None:  # noqa: ANN001
    from hub.models.orders import OrderRow
    t = OrderRow.__table__
    async with hub.db.write() as conn:
        await conn.execute(t.update().where(t.c.order_id == order_id).values(status=status))


async def test_conversions_count_paid_orders_after_first_contact(client, hub, oa):
    """A conversion is a customer first attributed that day who paid for an order placed after it: an
    order never paid (pending_payment, closed) is none, and a full refund takes it back."""
    code = await create(client, OA_CODE)
    t = int(hub.clock.now())
    for who in ("oBuyer", "oEarlyBuyer", "oBrowser", "oUnpaid"):
        await post(client, oa, subscribe(code["scene"], who, t))
    await settle(hub)
    assert (await today(client, code["id"]))["conversions"] == 0
    now = hub.clock.now()
    await add_order(hub, "o-early", "oEarlyBuyer", "paid", now - 86400)  # before the first contact
    await add_order(hub, "o-pending", "oUnpaid", "pending_payment", now + 30)
    await add_order(hub, "o-closed", "oUnpaid", "closed", now + 40)  # cancelled, never paid
    stats = await today(client, code["id"])
    assert (stats["adds"], stats["conversations"], stats["conversions"]) == (4, 4, 0)
    await add_order(hub, "o-1", "oBuyer", "paid", now + 60)
    assert (await today(client, code["id"]))["conversions"] == 1
    await add_order(hub, "o-2", "oBuyer", "shipped", now + 90)  # a customer counts once
    assert (await today(client, code["id"]))["conversions"] == 1
    await set_order_status(hub, "o-1", "refunding")  # an after-sale in progress: still paid
    await set_order_status(hub, "o-2", "refunded")
    assert (await today(client, code["id"]))["conversions"] == 1
    await set_order_status(hub, "o-1", "refunded")  # both wholly refunded: the money went back
    assert (await today(client, code["id"]))["conversions"] == 0
    await set_order_status(hub, "o-pending", "completed")  # paid in the end, and received
    assert (await today(client, code["id"]))["conversions"] == 1


async def test_console_shows_conversions_and_the_conversion_rate(client, hub, oa, browser):
    """The code's detail in the operator console (headless Chromium): 30-day scans, adds, conversions
    (a paid order counts, a closed unpaid one does not) and the rate conversions / adds."""
    from playwright.async_api import expect

    from tests.test_operator_pages import base_url, log_in, new_page

    await make_user(hub, "olivia", role="admin", groups=())
    code = await create(client, OA_CODE)
    t = int(hub.clock.now())
    for i, who in enumerate(("oPaid", "oCancelled", "oLooker")):
        await post(client, oa, subscribe(code["scene"], who, t + i))
    await post(client, oa, event_xml("gh_acme", "oPaid", "SCAN", t + 5, EventKey=code["scene"], Ticket="tk"))
    await settle(hub)
    now = hub.clock.now()
    await add_order(hub, "o-paid", "oPaid", "paid", now + 60)
    await add_order(hub, "o-cancelled", "oCancelled", "closed", now + 60)
    errors: list[str] = []
    page = await new_page(browser, errors)
    await log_in(page, base_url(client), "olivia", "/admin/channels")
    await page.click("#ch-rows .ch-show")
    card = page.locator("#ch-summary .stat-card")
    await expect(card).to_have_count(4)
    for key, shown in (("scans", "4"), ("adds", "3"), ("conversions", "1"), ("rate", "33.3%")):
        await expect(page.locator(f'#ch-summary [data-k="{key}"] .stat-n')).to_have_text(shown)
    await expect(page.locator('#ch-summary [data-k="conversions"] .stat-l')).to_have_text("成交客户")
    assert not errors, errors


async def test_conversions_without_a_usable_orders_table_are_zero(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/bare.db")
    try:
        assert await conversions(db, 1, "2024-11-01") == {}  # no orders table at all
        async with db.write() as conn:
            await conn.execute(text("CREATE TABLE orders (customer_id INTEGER)"))  # a schema it cannot query
        assert await conversions(db, 1, "2024-11-01") == {}
    finally:
        await db.dispose()


async def test_staff_schedule_switches_contact_way_users(aiohttp_client, hub_config, standin):
    clock = FakeClock(1_732_500_000.0)  # Mon 2024-11-25 10:00 Asia/Shanghai
    client = await aiohttp_client(create_app(hub_config, clock))
    svc = client.server.app[CHANNELS]
    day_shift = [{"weekdays": [0, 1, 2, 3, 4], "start": "09:00", "end": "18:00", "users": ["zhangsan"]}]
    code = await create(client, {**WECOM_CODE, "schedule": day_shift})
    # several people over the week: a multi-person way (a single-person one takes no second user later)
    assert standin.contact_ways[-1]["body"]["user"] == ["zhangsan"] and standin.contact_ways[-1]["body"]["type"] == 2
    assert await svc.apply_schedules() == 0
    clock.advance(10 * 3600)  # 20:00: nobody scheduled, everyone in staff takes adds
    assert await svc.apply_schedules() == 1
    assert standin.contact_ways[-1] == {"path": "/cgi-bin/externalcontact/update_contact_way",
                                        "body": {"config_id": code["config_id"], "user": ["zhangsan", "lisi"]}}
    assert (await svc.get(code["id"]))["platform_users"] == ["zhangsan", "lisi"]
    assert await svc.apply_schedules() == 0


async def test_one_person_code_takes_a_colleague_on_a_new_multi_person_way(client, standin):
    """WeCom takes no second user on a one-person way (type 1): the code moves to a new multi-person way
    with the same state, and the old way is deleted."""
    code = await create(client, {"name": "王店长名片", "platform": "wecom", "account_id": WECOM["id"],
                                 "staff": ["wang"], "tags": ["名片"]})
    old = code["config_id"]
    assert standin.contact_way_types == {old: 1}
    resp = await client.put(f"/api/channels/{code['id']}", json={"staff": ["wang", "li"]}, headers=auth())
    moved = await resp.json()
    assert resp.status == 200, moved
    assert moved["staff"] == moved["platform_users"] == ["wang", "li"] and moved["tags"] == ["名片"]
    assert moved["state"] == code["state"] and moved["config_id"] != old and moved["qr_url"] != code["qr_url"]
    assert [(c["path"].rsplit("/", 1)[1], c["body"]) for c in standin.contact_ways[1:]] == [
        ("get_contact_way", {"config_id": old}),
        ("add_contact_way", {"type": 2, "scene": 2, "state": code["state"], "user": ["wang", "li"], "skip_verify": True}),
        ("del_contact_way", {"config_id": old})]
    assert standin.contact_way_types == {moved["config_id"]: 2}
    png = await client.get(f"/api/channels/{code['id']}/qr.png", headers=auth())  # the new way's code
    assert await png.read() == standin.qr_png(standin.qr_images[moved["qr_url"].removeprefix(standin.base_url)])
    more = await client.put(f"/api/channels/{code['id']}", json={"staff": ["wang", "li", "zhao"]}, headers=auth())
    assert more.status == 200 and (await more.json())["config_id"] == moved["config_id"]
    assert standin.contact_ways[-1]["path"].endswith("/update_contact_way")
    # a multi-person way down to one person takes others again in place: its printed code stays valid
    multi = await create(client, {**WECOM_CODE, "staff": ["zhangsan", "lisi"]})
    for staff in (["zhangsan"], ["zhangsan", "lisi"]):
        again = await client.put(f"/api/channels/{multi['id']}", json={"staff": staff}, headers=auth())
        assert again.status == 200 and (await again.json())["config_id"] == multi["config_id"]
    assert standin.contact_ways[-1] == {"path": "/cgi-bin/externalcontact/update_contact_way",
                                        "body": {"config_id": multi["config_id"], "user": ["zhangsan", "lisi"]}}


def test_day_and_schedule_rules():
    assert day_of(1_732_550_400.0) == "2024-11-26"  # 16:00 UTC is already the next day in Shanghai
    sched = [{"weekdays": [5, 6], "start": "10:00", "end": "22:00", "users": ["b"]}]
    saturday_noon = 1_732_939_200.0  # Sat 2024-11-30 12:00 Shanghai
    assert users_at(sched, ["a", "b"], saturday_noon) == ["b"]
    assert users_at(sched, ["a", "b"], saturday_noon - 86400) == ["a", "b"]  # Friday: no window open
    assert users_at(None, ["a"], saturday_noon) == ["a"]
