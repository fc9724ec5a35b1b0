"""Channel QR codes (渠道活码), the operator's side: created on the platform stand-in, field-level
validation, QR downloads that decode, updates, roles and staff schedules. Scans and adds:
test_channel_scans.py; conversions: test_channel_conversions.py."""
from __future__ import annotations

from urllib.parse import quote

import pytest

from hub.app import create_app
from hub.channels.api import CHANNELS
from hub.channels.rules import day_of, users_at
from hub.clock import FakeClock
from tests.conftest import WECOM, auth
from tests.helpers import post
from tests.rt_helpers import login, make_user
from tests.channel_helpers import (KFID, WECOM_CODE, OA_CODE, KF_CODE, create, settle, customer_of, tags_of,
                                   zbar, svg_to_png, subscribe)


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


async def test_a_code_routing_to_a_group_nobody_made_is_refused(client, hub):
    """A typo (售前 for presales) saved, and every customer of the code waited in a group nobody serves."""
    from tests.channel_helpers import OA_CODE, create
    from tests.conftest import auth
    resp = await client.post("/api/channels", json={**OA_CODE, "route_group": "售前"}, headers=auth())
    assert resp.status == 400 and (await resp.json())["field"] == "route_group"
    code = await create(client, OA_CODE)
    resp = await client.put(f"/api/channels/{code['id']}", json={"route_group": "售前"}, headers=auth())
    assert resp.status == 400 and (await resp.json())["field"] == "route_group"
