"""Outbound sender against the stand-in platform: token cache, refresh on 42001, retries, status."""
from __future__ import annotations

import asyncio
import re

import pytest

from hub.app import HUB, create_app
from hub.clock import FakeClock
from hub.errors import HubError
from hub.models import PlatformToken
from hub.outbound.queue import WAKE_UNDER_BURST, OutboundRequest
from tests.conftest import OA, WECOM, auth, start_burst
from tests.helpers import messages, post, wait_for
from tests.wechat_client import PlatformSim, text_xml


async def setup(aiohttp_client, hub_config):  # noqa: ANN001, ANN201
    clock = FakeClock()
    client = await aiohttp_client(create_app(hub_config, clock))
    hub = client.server.app[HUB]
    oa = PlatformSim("oa", OA["id"], OA["token"], OA["encoding_aes_key"], OA["receive_id"], clock)
    await post(client, oa, text_xml("gh_1", "oBuyer", "在吗", 8001))
    await hub.pipeline.drain()  # first contact looks the customer up on the platform: let that finish
    conv = (await messages(hub, peer_id="oBuyer"))[0].conversation_id
    return client, hub, clock, conv


async def send(client, conv: int, text: str):  # noqa: ANN001, ANN201
    resp = await client.post(f"/api/conversations/{conv}/messages", json={"text": text}, headers=auth())
    assert resp.status == 202, await resp.text()
    return (await resp.json())["message_id"]


async def status_of(hub, message_id: int) -> str:  # noqa: ANN001
    return (await messages(hub, id=message_id))[0].status


async def test_send_through_oa_custom_api_with_cached_token(aiohttp_client, hub_config, standin):
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    ids = await asyncio.gather(*(send(client, conv, f"您好 {i}") for i in range(5)))
    await hub.outbound.drain()
    assert standin.token_requests == 1  # single flight, then cached
    assert sorted(s["body"]["text"]["content"] for s in standin.sent) == [f"您好 {i}" for i in range(5)]
    assert all(s["path"] == "/cgi-bin/message/custom/send" and s["body"]["touser"] == "oBuyer" for s in standin.sent)
    assert [await status_of(hub, i) for i in ids] == ["sent"] * 5
    out = await messages(hub, direction="out")
    assert len(out) == 5 and all(m.sender == "system" and m.conversation_id == conv for m in out)


async def test_expired_token_refreshed_and_retried_once(aiohttp_client, hub_config, standin):
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    await send(client, conv, "first")
    await hub.outbound.drain()
    standin.expire_all_tokens()
    mid = await send(client, conv, "second")
    await hub.outbound.drain()
    assert await status_of(hub, mid) == "sent"
    assert standin.token_requests == 2
    assert [s["body"]["text"]["content"] for s in standin.sent] == ["first", "second"]


async def test_token_refreshed_early_before_expiry(aiohttp_client, hub_config, standin):
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    await send(client, conv, "a")
    await hub.outbound.drain()
    clock.advance(7200 - 200)  # inside the refresh margin
    await send(client, conv, "b")
    await hub.outbound.drain()
    assert standin.token_requests == 2


async def test_a_failed_early_refresh_keeps_the_valid_token(aiohttp_client, hub_config, standin):
    """The token endpoint failing in the refresh margin: sends go on with the token still valid,
    and the refresh is tried again later, not by every send in turn (each failed before)."""
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    await send(client, conv, "a")
    await hub.outbound.drain()
    fetched = standin.token_requests
    clock.advance(7200 - 200)  # inside the refresh margin
    standin.fail_next = ["http500"]  # the refresh's fetch
    ids = await asyncio.gather(*(send(client, conv, f"b{i}") for i in range(3)))
    await hub.outbound.drain()
    assert [await status_of(hub, i) for i in ids] == ["sent"] * 3
    assert standin.token_requests == fetched + 1  # one failed try, not one per send
    clock.advance(31)
    await send(client, conv, "c")
    await hub.outbound.drain()
    assert standin.token_requests == fetched + 2  # tried again, and taken


async def test_a_permanent_http_error_fails_at_once(aiohttp_client, hub_config, standin):
    """An HTTP 4xx other than 429 (a wrong API base, an endpoint gone) is not retried for minutes:
    the message is marked failed with the reason at the first answer."""
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    await send(client, conv, "warm")
    await hub.outbound.drain()
    standin.fail_next = ["http404"]
    mid = await send(client, conv, "送不到")
    await hub.outbound.drain()
    clock.advance(600)  # any retry would be due by now
    await hub.outbound.drain()
    assert await status_of(hub, mid) == "failed"
    assert standin.requests.count("/cgi-bin/message/custom/send") == 2  # the warm-up and the one refused


async def test_transient_failures_retry_with_backoff_without_duplicates(aiohttp_client, hub_config, standin):
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    await send(client, conv, "warm")
    await hub.outbound.drain()
    standin.fail_next = ["http500", -1, 45009]
    mid = await send(client, conv, "重试后送达")
    await hub.outbound.drain()
    assert await status_of(hub, mid) == "queued"
    for _ in range(3):
        clock.advance(30)
        await hub.outbound.drain()
    assert await status_of(hub, mid) == "sent"
    delivered = [s for s in standin.sent if s["body"]["text"]["content"] == "重试后送达"]
    assert len(delivered) == 1


async def test_a_conversations_messages_reach_the_customer_in_order_across_retries(aiohttp_client, hub_config,
                                                                                   standin):
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    await send(client, conv, "warm")
    await hub.outbound.drain()
    standin.fail_next = [-1]  # system busy: the first reply waits for its retry
    first = await send(client, conv, "1 您好")
    second = await send(client, conv, "2 您的订单已发货")
    await hub.outbound.drain()
    assert [await status_of(hub, m) for m in (first, second)] == ["queued", "queued"]  # the second waits its turn
    clock.advance(10)
    await hub.outbound.drain()
    assert [s["body"]["text"]["content"] for s in standin.sent] == ["warm", "1 您好", "2 您的订单已发货"]
    # a message that fails for good does not hold the next one back
    standin.fail_next = [45015]
    third, fourth = await send(client, conv, "3"), await send(client, conv, "4")
    await hub.outbound.drain()
    assert [await status_of(hub, m) for m in (third, fourth)] == ["failed", "sent"]
    # an agent's replies too
    standin.fail_next = [-1]
    fifth = await hub.outbound.enqueue(OutboundRequest(OA["id"], conv, "5 稍等我查一下", "agent:1"))
    sixth = await hub.outbound.enqueue(OutboundRequest(OA["id"], conv, "6 查到了", "agent:1"))
    await hub.outbound.drain()
    assert [await status_of(hub, m) for m in (fifth, sixth)] == ["queued", "queued"]
    clock.advance(10)
    await hub.outbound.drain()
    assert [s["body"]["text"]["content"] for s in standin.sent][-2:] == ["5 稍等我查一下", "6 查到了"]


async def test_the_next_message_of_a_conversation_goes_as_soon_as_the_one_before_it_is_sent(aiohttp_client,
                                                                                             hub_config, standin):
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    ids = [await send(client, conv, f"第{i}条") for i in range(3)]
    # the sender's own loop (no drain): each send wakes it for the next, not its 5-second poll
    await wait_for(lambda: len(standin.sent) == 3, timeout=3.0)
    assert [s["body"]["text"]["content"] for s in standin.sent] == ["第0条", "第1条", "第2条"]
    # the stand-in has the third request before the hub has its answer and stores "sent"

    async def all_sent() -> bool:
        return [await status_of(hub, m) for m in ids] == ["sent"] * 3

    await wait_for(all_sent, timeout=3.0)


async def test_permanent_error_marks_failed_with_errmsg(aiohttp_client, hub_config, standin):
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    standin.fail_next = [45015]  # out of the 48-hour window: retrying cannot help
    mid = await send(client, conv, "too late")
    await hub.outbound.drain()
    assert await status_of(hub, mid) == "failed"
    from sqlalchemy import select
    from hub.models import Outbox
    async with hub.db.read() as conn:
        row = (await conn.execute(select(Outbox.__table__).where(Outbox.__table__.c.message_id == mid))).first()
    assert row.last_errcode == 45015 and "45015" in row.last_error
    page = await (await client.get(f"/api/conversations/{conv}/messages", headers=auth())).json()
    assert page["messages"][0]["status"] == "failed"


async def test_queue_survives_restart(aiohttp_client, hub_config, standin):
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    standin.fail_next = ["http500"]
    mid = await send(client, conv, "after restart")
    await hub.outbound.drain()
    await client.close()
    client2 = await aiohttp_client(create_app(hub_config, clock))
    hub2 = client2.server.app[HUB]
    clock.advance(60)
    await hub2.outbound.drain()
    assert await status_of(hub2, mid) == "sent"


async def test_kf_and_welcome_apis(aiohttp_client, hub_config, standin):
    clock = FakeClock()
    client = await aiohttp_client(create_app(hub_config, clock))
    hub = client.server.app[HUB]
    wecom = PlatformSim("wecom", WECOM["id"], WECOM["token"], WECOM["encoding_aes_key"], WECOM["receive_id"], clock)
    standin.add_kf_message("wkK", {"msgid": "k1", "open_kfid": "wkK", "external_userid": "wmK", "send_time": 1,
                                   "origin": 3, "msgtype": "text", "text": {"content": "hi"}})
    from tests.wechat_client import event_xml
    await post(client, wecom, event_xml(WECOM["receive_id"], "sys", "kf_msg_or_event", Token="t", OpenKfId="wkK"))
    await hub.pipeline.drain()
    kf_conv = (await messages(hub, peer_id="wmK"))[0].conversation_id
    await hub.outbound.enqueue(OutboundRequest(WECOM["id"], kf_conv, "客服回复", "agent:1"))
    await hub.outbound.enqueue(OutboundRequest(WECOM["id"], kf_conv, "欢迎光临", "bot", welcome_code="WC"))
    await post(client, wecom, event_xml(WECOM["receive_id"], "sys", "change_external_contact",
                                        ChangeType="add_external_contact", UserID="zs", ExternalUserID="wmNew",
                                        WelcomeCode="WC2"))
    ext_conv = (await messages(hub, peer_id="wmNew"))[0].conversation_id
    await hub.outbound.enqueue(OutboundRequest(WECOM["id"], ext_conv, "你好，我是导购", "bot", welcome_code="WC2"))
    await hub.outbound.drain()
    by_path = {s["path"]: s["body"] for s in standin.sent}
    kf_id = by_path["/cgi-bin/kf/send_msg"].pop("msgid")  # ours, up to 32 of [0-9a-zA-Z_-]
    assert by_path["/cgi-bin/kf/send_msg"] == {"touser": "wmK", "open_kfid": "wkK", "msgtype": "text",
                                               "text": {"content": "客服回复"}}
    assert re.fullmatch(r"[0-9a-zA-Z_-]{1,32}", kf_id)
    assert by_path["/cgi-bin/kf/send_msg_on_event"]["code"] == "WC"
    assert by_path["/cgi-bin/kf/send_msg_on_event"]["msgid"] not in ("", kf_id)
    assert by_path["/cgi-bin/externalcontact/send_welcome_msg"]["welcome_code"] == "WC2"


async def test_enqueue_is_idempotent_by_dedup_key(aiohttp_client, hub_config, standin):
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    a = await hub.outbound.enqueue(OutboundRequest(OA["id"], conv, "once", "bot", dedup_key="bot:1"))
    b = await hub.outbound.enqueue(OutboundRequest(OA["id"], conv, "once", "bot", dedup_key="bot:1"))
    await hub.outbound.drain()
    assert a is not None and b is None
    assert len(standin.sent) == 1


async def test_bad_api_input(client, hub):
    assert (await client.post("/api/conversations/1/messages", json={"text": "x"})).status == 401
    resp = await client.post("/api/conversations/424242/messages", json={"text": "x"}, headers=auth())
    assert resp.status == 404
    resp = await client.post("/api/conversations/1/messages", data=b"not json", headers=auth())
    assert resp.status in (400, 404)


async def under_a_burst(hub, drain: bool = True):  # noqa: ANN001, ANN201
    """The pipeline yielding to callbacks (a burst), with a job holding the trickle until ``release``;
    ``drain``: every send queued before goes out first."""
    if drain:
        await hub.outbound.drain()
    pipe = await start_burst(hub)
    release = asyncio.Event()
    busy_job = asyncio.create_task(pipe.trickle.run(release.wait))  # a job holds the trickle
    await asyncio.sleep(0)
    return pipe, release, busy_job


async def test_under_a_burst_automatic_sends_trickle_but_an_agents_reply_goes_at_once(aiohttp_client, hub_config,
                                                                                        standin):
    """Acknowledging callbacks comes first: under a burst the sends jobs cause (bot answers, queue
    notices) take their turn in the pipeline's trickle like the jobs; an agent's reply never waits."""
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    pipe, release, busy_job = await under_a_burst(hub)
    bot = await hub.outbound.enqueue(OutboundRequest(OA["id"], conv, "自动回复", sender="bot"))
    agent = await hub.outbound.enqueue(OutboundRequest(OA["id"], conv, "人工回复", sender="agent:1"))
    await hub.outbound.run_once()
    await wait_for(lambda: _is_sent(hub, agent))
    await asyncio.sleep(0.2)
    assert await status_of(hub, bot) == "queued"  # behind the job in the trickle
    assert "自动回复" not in [s["body"]["text"]["content"] for s in standin.sent]
    pipe.pressure = lambda: False  # the burst is over
    release.set()
    await busy_job
    await wait_for(lambda: _is_sent(hub, bot))
    contents = [s["body"]["text"]["content"] for s in standin.sent]
    assert contents.count("人工回复") == 1 and contents.count("自动回复") == 1


async def test_an_agents_reply_is_not_stuck_behind_many_waiting_automatic_sends(aiohttp_client, hub_config, standin):
    """A sender pass takes a limited number of due rows: the automatic sends waiting in the trickle
    (more than a pass takes) must not hide an agent's later reply from every pass."""
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    pipe, release, busy_job = await under_a_burst(hub)
    bots = [await hub.outbound.enqueue(OutboundRequest(OA["id"], conv, f"自动{i}", sender="bot")) for i in range(120)]
    await hub.outbound.run_once()
    agent = await hub.outbound.enqueue(OutboundRequest(OA["id"], conv, "人工回复", sender="agent:1"))
    await hub.outbound.run_once()
    await wait_for(lambda: _is_sent(hub, agent))
    pipe.pressure = lambda: False
    release.set()
    await busy_job
    await hub.outbound.drain(timeout=60)  # one conversation's messages go one at a time, in order
    assert [await status_of(hub, i) for i in bots] == ["sent"] * 120
    assert [s["body"]["text"]["content"] for s in standin.sent].count("人工回复") == 1


async def _is_sent(hub, message_id: int) -> bool:  # noqa: ANN001
    return await status_of(hub, message_id) == "sent"


async def test_stopping_under_a_burst_leaves_waiting_automatic_sends_queued(aiohttp_client, hub_config, standin):
    """Stopping does not wait out the trickle: sends still waiting their turn stay queued (and go
    once the sender runs again); none is lost or sent twice."""
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    pipe, release, busy_job = await under_a_burst(hub)
    ids = [await hub.outbound.enqueue(OutboundRequest(OA["id"], conv, f"通知{i}", sender="system")) for i in range(3)]
    await hub.outbound.run_once()
    hub.outbound.stop_timeout = 0.2
    started = asyncio.get_running_loop().time()
    await hub.outbound.stop()
    assert asyncio.get_running_loop().time() - started < 2
    assert [await status_of(hub, i) for i in ids] == ["queued"] * 3
    pipe.pressure = lambda: False
    release.set()
    await busy_job
    await hub.outbound.drain()
    assert [await status_of(hub, i) for i in ids] == ["sent"] * 3
    contents = [s["body"]["text"]["content"] for s in standin.sent]
    assert sorted(c for c in contents if c.startswith("通知")) == ["通知0", "通知1", "通知2"]


async def test_a_wecom_template_send_listed_as_failed_is_failed(aiohttp_client, hub_config, standin):
    """WeCom's add_msg_template answers errcode 0 with a fail_list of the customers it cannot reach
    (not a contact of the sender, over their daily limit): such a message is failed, not sent."""
    clock = FakeClock()
    client = await aiohttp_client(create_app(hub_config, clock))
    hub = client.server.app[HUB]
    wecom = PlatformSim("wecom", WECOM["id"], WECOM["token"], WECOM["encoding_aes_key"], WECOM["receive_id"], clock)
    for peer, msg_id in (("wmReach", 8101), ("wmUnreach", 8102)):
        await post(client, wecom, text_xml(WECOM["receive_id"], peer, "在吗", msg_id))
    await hub.pipeline.drain()
    standin.unreachable.add("wmUnreach")
    convs = {m.peer_id: m.conversation_id for m in await messages(hub, direction="in")}
    ok, refused = await send(client, convs["wmReach"], "到了"), await send(client, convs["wmUnreach"], "到不了")
    await hub.outbound.drain()
    assert await status_of(hub, ok) == "sent"
    assert await status_of(hub, refused) == "failed"


def test_a_wecom_template_send_carries_its_image_or_link():
    from hub.outbound.queue import compose

    api, payload = compose("wecom", "", "wmPic", OutboundRequest("acme-wecom", 1, "看图", "agent:1", kind="image",
                                                                 content={"media_id": "MEDIA1"}))
    assert api == "wecom_msg_template"
    assert payload["attachments"] == [{"msgtype": "image", "image": {"media_id": "MEDIA1"}}]
    assert payload["text"] == {"content": "看图"}


async def test_a_refused_token_fetch_is_not_repeated_by_every_send(aiohttp_client, hub_config, standin):
    """The token endpoint refusing (a wrong secret answers 40001): one fetch per 30 s, not one per
    send attempt of every queued message (the Official Account may fetch 2,000 a day)."""
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    await send(client, conv, "warm")
    await hub.outbound.drain()
    standin.expire_all_tokens()
    hub.outbound.api._tokens.clear()  # noqa: SLF001 - as after a restart: no token held
    if hub.outbound.api.shared is not None:  # nor in the store the processes share (PostgreSQL)
        async with hub.db.write() as conn:
            await conn.execute(PlatformToken.__table__.delete())
    fetched = standin.token_requests
    standin.fail_next = [40001]  # the token fetch
    ids = await asyncio.gather(*(send(client, conv, f"q{i}") for i in range(5)))
    await hub.outbound.drain()
    assert standin.token_requests == fetched + 1
    clock.advance(400)  # the retries are due, and the refusal is old
    await hub.outbound.drain()
    assert [await status_of(hub, i) for i in ids] == ["sent"] * 5
    assert standin.token_requests == fetched + 2


async def test_a_send_slower_than_its_lease_is_not_claimed_by_another_process(aiohttp_client, hub_config, standin,
                                                                           monkeypatch):
    """A send can outlast its 60 s lease (a token endpoint timing out for several queued sends in
    turn): while it is in flight its lease is renewed, so another process does not take the row as
    abandoned and send it a second time."""
    from hub.outbound import queue

    monkeypatch.setattr(queue, "RENEW_EVERY", 0.05, raising=False)
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    await send(client, conv, "warm")
    await hub.outbound.drain()
    standin.delay = 1.0
    mid = await send(client, conv, "slow")
    first = asyncio.create_task(hub.outbound.drain())
    await wait_for(lambda: standin.requests.count("/cgi-bin/message/custom/send") == 2)
    clock.advance(queue.LEASE + 1)  # the send has taken longer than its lease
    await asyncio.sleep(0.3)
    other = queue.Outbound(hub.db, clock, hub.outbound.api, hub.outbound.accounts)  # a second process
    await other.drain()
    await first
    assert [s["body"]["text"]["content"] for s in standin.sent] == ["warm", "slow"]
    assert await status_of(hub, mid) == "sent"


async def test_a_text_longer_than_the_channel_takes_is_refused_when_written_not_failed_later(aiohttp_client,
                                                                                             hub_config, standin):
    """The platforms count bytes (a Chinese character is 3): the Official Account and 微信客服 take
    2,048, WeCom's message task 4,000. A longer text was queued, then failed for good (45002)."""
    from hub.outbound.queue import check_text
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)  # an Official Account conversation
    resp = await client.post(f"/api/conversations/{conv}/messages", json={"text": "好" * 700}, headers=auth())
    body = await resp.json()
    assert resp.status == 400 and body["error"] == "invalid_text" and "2048 bytes" in body["message"]
    assert await send(client, conv, "好" * 682)  # 2,046 bytes
    assert check_text("wecom", "好" * 1333) and check_text("kf", "a" * 2000)
    for channel, text in (("wecom", "好" * 1334), ("kf", "好" * 683), ("oa", " ")):
        with pytest.raises(HubError) as refused:
            check_text(channel, text)
        assert refused.value.code == "invalid_text"


async def test_a_token_fetched_with_old_credentials_is_not_used_after_they_change(aiohttp_client, hub_config,
                                                                                  standin):
    """The token cache is keyed by the account and what its token was fetched with: after the AppID or
    secret changed, sends went out with the old app's token until it expired (2 hours)."""
    from dataclasses import replace
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    account = await hub.accounts.get(OA["id"])
    old = await hub.outbound.api.access_token(account)
    assert standin.tokens[old] == account.receive_id
    moved = replace(account, receive_id="wxNEWAPPID000001", secret="a-new-secret")
    new = await hub.outbound.api.access_token(moved)
    assert new != old and standin.tokens[new] == "wxNEWAPPID000001"
    assert await hub.outbound.api.access_token(moved) == new  # cached under its own key


async def test_under_a_burst_new_automatic_sends_do_not_each_wake_a_sender_pass(aiohttp_client, hub_config, standin):
    """A pass reads every waiting row: under a burst the sends that wait in the trickle anyway share a
    pass every WAKE_UNDER_BURST seconds, while an agent's reply still wakes one at once."""
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    pipe, release, busy_job = await under_a_burst(hub)
    loop, passes = asyncio.get_running_loop(), []
    run_once = hub.outbound.run_once

    async def counted(limit: int = 100) -> float:
        passes.append(loop.time())
        return await run_once(limit)

    hub.outbound.run_once = counted
    await asyncio.sleep(0.3)
    passes.clear()
    for i in range(20):  # one new bot answer every 10 ms for 0.2 s
        await hub.outbound.enqueue(OutboundRequest(OA["id"], conv, f"自动{i}", sender="bot"))
        await asyncio.sleep(0.01)
    assert len(passes) <= 2, passes  # without the burst: a pass for each
    asked = loop.time()
    agent = await hub.outbound.enqueue(OutboundRequest(OA["id"], conv, "人工回复", sender="agent:1"))
    await wait_for(lambda: _is_sent(hub, agent))
    assert loop.time() - asked < WAKE_UNDER_BURST
    pipe.pressure = lambda: False
    release.set()
    await busy_job
    await hub.outbound.drain(timeout=30)
    assert sorted(s["body"]["text"]["content"] for s in standin.sent) == sorted([f"自动{i}" for i in range(20)]
                                                                                 + ["人工回复"])


async def test_an_automatic_send_waiting_for_a_slot_when_a_burst_begins_waits_its_turn(aiohttp_client, hub_config,
                                                                                      standin):
    """A bot answer started before the burst but still waiting for a sending slot: once it gets one
    it hands the slot back and takes its turn in the trickle; an agent's reply meanwhile goes at once."""
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    await hub.outbound.drain()
    slots = hub.outbound._slots
    held = 0
    while not slots.locked():  # every sending slot taken, as by sends under way
        await slots.acquire()
        held += 1
    bot = await hub.outbound.enqueue(OutboundRequest(OA["id"], conv, "自动回复", sender="bot"))
    await hub.outbound.run_once()  # started at full speed: no burst yet; waits for a slot
    await asyncio.sleep(0.05)
    pipe, release, busy_job = await under_a_burst(hub, drain=False)
    for _ in range(held):
        slots.release()
    await asyncio.sleep(0.2)
    assert await status_of(hub, bot) == "queued"  # waiting its turn, not sent at full speed
    agent = await hub.outbound.enqueue(OutboundRequest(OA["id"], conv, "人工回复", sender="agent:1"))
    await hub.outbound.run_once()
    await wait_for(lambda: _is_sent(hub, agent))  # the waiting bot answer holds no slot
    pipe.pressure = lambda: False
    release.set()
    await busy_job
    await wait_for(lambda: _is_sent(hub, bot))
    assert [s["body"]["text"]["content"] for s in standin.sent].count("自动回复") == 1
