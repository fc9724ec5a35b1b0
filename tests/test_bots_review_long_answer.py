"""A confident FAQ answer longer than the channel takes in one message (Official Account and 微信客服
2,048 UTF-8 bytes, WeCom 4,000) was queued as the bot's reply: the platform refuses it for good (45002),
so the customer got nothing and no agent was involved. The agent now gets it as a suggestion."""
from __future__ import annotations

import json

from tests.conftest import auth
from tests import test_bots
from tests.test_bots import bot_replies, open_sessions, say

bot = test_bots.bot  # the fixture: a hub on a fake clock with the test FAQ set

LONG = "本品为限定礼盒，内含面霜、精华、眼霜各一支，赠品随机。" * 30  # 27 characters x 30 = 2,430 bytes x 3


async def test_answer_too_long_for_the_channel_goes_to_an_agent(bot):
    client, hub, clock, oa, wecom = bot
    created = await client.post("/api/faq", json={"question": "圣诞限定礼盒里有什么", "answer": LONG[:1000]},
                                headers=auth())
    assert created.status == 201
    assert len(LONG[:1000].encode()) > 2048  # over the Official Account's limit, within WeCom's 4,000 bytes
    match = await (await client.post("/api/faq/match", json={"text": "圣诞限定礼盒里有什么"}, headers=auth())).json()
    assert match["confident"]

    await say(client, hub, oa, "oLong", "圣诞限定礼盒里有什么", 901)
    assert await bot_replies(hub, "oLong") == []
    [session] = await open_sessions(hub)
    assert json.loads(session.suggestions)[0]["answer"] == LONG[:1000]

    await say(client, hub, wecom, "wmLong", "圣诞限定礼盒里有什么", 902)  # WeCom takes it
    assert await bot_replies(hub, "wmLong") == [LONG[:1000]]

    short = await client.post("/api/faq", json={"question": "礼盒可以开发票吗", "answer": "可以开具电子发票。"},
                              headers=auth())
    assert short.status == 201
    await say(client, hub, oa, "oShort", "礼盒可以开发票吗", 903)
    assert await bot_replies(hub, "oShort") == ["可以开具电子发票。"]


async def test_keyword_reply_too_long_for_the_channel_is_not_sent(bot):
    """The same for a keyword rule's text reply: on the Official Account it was queued and refused for
    good; now the message goes on as if the rule had not matched (FAQ, else an agent)."""
    client, hub, clock, oa, wecom = bot
    rule = {"name": "礼盒", "match_type": "contains", "pattern": "圣诞礼盒清单", "priority": 10,
            "reply": {"type": "text", "text": LONG[:1000]}}
    assert (await client.post("/api/keyword-rules", json=rule, headers=auth())).status == 201
    await say(client, hub, oa, "oRule", "圣诞礼盒清单", 911)
    assert await bot_replies(hub, "oRule") == []
    assert len(await open_sessions(hub)) == 1  # an agent answers
    await say(client, hub, wecom, "wmRule", "圣诞礼盒清单", 912)
    assert await bot_replies(hub, "wmRule") == [LONG[:1000]]
