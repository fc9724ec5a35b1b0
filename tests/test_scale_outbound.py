"""The outbound queue with two hub processes on one database: the platform API failing, then slow;
every message is sent once it recovers, none twice (rows are claimed with a lease)."""
from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import select

from hub.app import HUB
from hub.models import Conversation, Outbox
from hub.outbound.queue import OutboundRequest
from tests.conftest import WECOM
from tests.helpers import wait_for
from tests.scale_helpers import private_redis, two_hubs  # noqa: F401 - fixtures


async def conversation(hub, peer: str = "wmOutbound") -> int:  # noqa: ANN001
    t = Conversation.__table__
    async with hub.db.write() as conn:
        res = await conn.execute(t.insert().values(account_id=WECOM["id"], channel="wecom", thread="",
                                                   peer_id=peer, created_at=hub.clock.now()))
        return res.inserted_primary_key[0]


async def statuses(hub) -> Counter:  # noqa: ANN001
    t = Outbox.__table__
    async with hub.db.read() as conn:
        return Counter(r[0] for r in (await conn.execute(select(t.c.status))).all())


def sent_texts(standin) -> Counter:  # noqa: ANN001
    return Counter(s["body"]["text"]["content"] for s in standin.sent if "text" in s["body"])


async def test_platform_failing_then_slow_sends_each_message_once(two_hubs, standin):
    a, b = two_hubs
    hub_a, hub_b = a.server.app[HUB], b.server.app[HUB]
    for hub in (hub_a, hub_b):  # a failed token fetch answers the sends of the next 5 s: the stand-in's
        hub.outbound.api.fetch_retry = 0.2  # failures are counted, not timed, and met 5 s apart they outlast the test
    # twenty customers (a conversation's messages go one at a time, in order: one customer's would
    # meet the failures one after another, with backoff)
    convs = [await conversation(hub_a, f"wmOutbound{i}") for i in range(20)]
    standin.fail_next = ["http500"] * 12 + [45009] * 4  # down, then rate-limited (transient errcode)
    texts = [f"您好，第{i}条" for i in range(20)]
    for i, text in enumerate(texts):  # enqueued on either process; both senders compete for every row
        hub = hub_a if i % 2 else hub_b
        await hub.outbound.enqueue(OutboundRequest(WECOM["id"], convs[i], text, "agent:1", dedup_key=f"out:{i}"))
    await wait_for(lambda: not standin.fail_next, timeout=20)  # the failures were met, and retried

    async def all_sent() -> bool:
        return (await statuses(hub_a)) == Counter({"sent": 20})

    await wait_for(all_sent, timeout=40, interval=0.2)
    assert sent_texts(standin) == Counter({t: 1 for t in texts})

    standin.delay = 0.3  # slow, within the API timeout: still once each
    more = [f"稍等，第{i}条" for i in range(10)]
    for i, text in enumerate(more):
        hub = hub_b if i % 2 else hub_a
        await hub.outbound.enqueue(OutboundRequest(WECOM["id"], convs[i], text, "agent:1", dedup_key=f"slow:{i}"))
    await wait_for(lambda: all(sent_texts(standin)[t] for t in more), timeout=30, interval=0.2)
    await asyncio.sleep(1.0)  # a second sender would have had time to double up
    assert sent_texts(standin) == Counter({t: 1 for t in texts + more})
    assert (await statuses(hub_b)) == Counter({"sent": 30})


async def test_the_official_accounts_token_is_shared_by_the_processes(two_hubs, standin):
    """A new Official Account token ends the one before it (five minutes later): processes that each
    fetched their own knocked each other's out, one refresh after another. They share one."""
    from tests.conftest import OA
    a, b = (h.server.app[HUB] for h in two_hubs)
    account = await a.accounts.get(OA["id"])
    before = standin.token_requests
    first = await a.outbound.api.access_token(account)
    assert await b.outbound.api.access_token(account) == first  # taken from the store, not fetched
    assert standin.token_requests == before + 1
    # the platform refuses it (40001): one process fetches a new one, the other adopts it
    renewed = await a.outbound.api.access_token(account, force=True, stale=first)
    assert renewed != first and standin.token_requests == before + 2
    assert await b.outbound.api.access_token(account, force=True, stale=first) == renewed
    assert standin.token_requests == before + 2
    # WeCom answers the same token while it is valid: each process keeps its own fetch
    wecom = await a.accounts.get(WECOM["id"])
    await a.outbound.api.access_token(wecom)
    await b.outbound.api.access_token(wecom)
    assert standin.token_requests == before + 4
