"""Channel QR codes (渠道活码), the customer's side: scans and adds through OA, WeCom and 微信客服
applying tags, the channel's welcome and its routing, and the day's statistics."""
from __future__ import annotations

import asyncio

from sqlalchemy import select

from hub.channels.service import ChannelService
from hub.channels.step import ChannelStep
from hub.db import Database
from hub.models import Message
from hub.models.channels import ChannelAttribution, ChannelHit, ChannelStat
from hub.pipeline import JobContext
from tests.helpers import post
from tests.rt_helpers import Agent, login, make_user, server_url
from tests.wechat_client import event_xml, text_xml
from tests.channel_helpers import (KFID, WECOM_CODE, OA_CODE, KF_CODE, create, settle, customer_of, tags_of,
                                   today, subscribe, add_contact, kf_signal, enter_session)


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
    on_event = [{k: v for k, v in s["body"].items() if k != "msgid"}  # (ours: tests/test_outbound.py)
                for s in standin.sent if s["path"] == "/cgi-bin/kf/send_msg_on_event"]
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
