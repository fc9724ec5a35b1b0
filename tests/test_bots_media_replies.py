"""Keyword rules answering with an image or a link: each platform takes them in its own shape. An
Official Account or 微信客服 image goes by media_id only, so a rule with a pic_url alone would be queued
and refused for good (the customer left with nothing): there it counts as not matched; WeCom's
message task takes the pic_url. WeCom's link attachment has a picurl, not 微信客服's thumb_media_id."""
from __future__ import annotations

from hub.outbound.queue import OutboundRequest, compose
from tests import test_bots
from tests.conftest import auth
from tests.test_bots import open_sessions, say

bot = test_bots.bot  # the fixture: a hub on a fake clock with the test FAQ set

PIC = "https://wework.qpic.cn/wwpic/standin/gift.png"


async def test_an_image_rule_with_only_a_pic_url_answers_where_the_platform_takes_it(bot, standin):
    client, hub, clock, oa, wecom = bot
    rule = {"name": "礼盒图", "match_type": "contains", "pattern": "礼盒长什么样", "priority": 10,
            "reply": {"type": "image", "pic_url": PIC}}
    assert (await client.post("/api/keyword-rules", json=rule, headers=auth())).status == 201
    await say(client, hub, oa, "oPic", "礼盒长什么样", 931)
    assert not [s for s in standin.sent if s["body"].get("touser") == "oPic"]  # nothing the platform refuses
    assert len(await open_sessions(hub)) == 1  # an agent answers
    await say(client, hub, wecom, "wmPic", "礼盒长什么样", 932)
    [sent] = [s for s in standin.sent if s["body"].get("external_userid") == ["wmPic"]]
    assert sent["body"]["attachments"] == [{"msgtype": "image", "image": {"pic_url": PIC}}]


def test_each_platform_gets_a_link_in_its_own_shape():
    link = {"title": "双11攻略", "url": "https://shop.example.com/d11", "description": "领券入口", "pic_url": PIC,
            "media_id": "THUMB1"}
    req = OutboundRequest("acme-wecom", 1, "", "bot", kind="link", content=link)
    _, wecom = compose("wecom", "", "wm1", req)
    assert wecom["attachments"] == [{"msgtype": "link", "link": {"title": "双11攻略", "picurl": PIC,
                                                                 "desc": "领券入口", "url": link["url"]}}]
    _, kf = compose("kf", "wkKF", "wm1", req)
    assert kf["link"] == {"title": "双11攻略", "desc": "领券入口", "url": link["url"], "thumb_media_id": "THUMB1"}
    _, oa = compose("oa", "", "o1", req)
    assert oa["news"]["articles"] == [{"title": "双11攻略", "description": "领券入口", "url": link["url"], "picurl": PIC}]
