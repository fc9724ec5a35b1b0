"""Races between hub processes on one PostgreSQL database (and Redis): a recall and its original's
retry archived at the same moment, a customer merged on one process while another runs their
conversation's jobs."""
from __future__ import annotations

import asyncio
import random

import pytest
from sqlalchemy import func, select, text

from hub.app import HUB
from hub.callbacks import xmlcodec
from hub.models import Job
from tests.conftest import ON_POSTGRES, WECOM
from tests.helpers import post
from tests.scale_helpers import private_redis, two_hubs  # noqa: F401 - fixtures
from tests.wechat_client import PlatformSim, text_xml

pytestmark = pytest.mark.skipif(not ON_POSTGRES, reason="the processes race on PostgreSQL (SQLite has one writer)")


async def settle(hub, timeout: float = 20.0) -> None:  # noqa: ANN001
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with hub.db.read() as conn:
            left = (await conn.execute(select(func.count()).select_from(Job.__table__)
                                       .where(Job.__table__.c.state != "failed"))).scalar()
        if not left:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{left} jobs left"
        await asyncio.sleep(0.05)


async def test_a_recall_and_its_originals_retry_at_the_same_moment_leave_it_recalled(two_hubs):
    """The recall (at B) found no original and left its key; the original's batch (at A) was in flight
    and had looked for such keys before: the message stayed unrecalled (about 1 race in 5)."""
    a, b = two_hubs
    hub_a = a.server.app[HUB]
    sim = PlatformSim("wecom", WECOM["id"], WECOM["token"], WECOM["encoding_aes_key"], WECOM["receive_id"])
    n = 60
    for i in range(n):
        mid = 500000 + 2 * i
        recall = xmlcodec.render({"ToUserName": WECOM["receive_id"], "FromUserName": f"wmRn{i}",
                                  "CreateTime": 1732261200 + i, "MsgType": "revoke", "PreMsgId": str(mid),
                                  "MsgId": str(mid + 1)})
        assert (await post(b if i % 2 else a, sim, recall)).status == 200
        await asyncio.sleep(random.uniform(0, 0.015))
        assert (await post(a, sim, text_xml(WECOM["receive_id"], f"wmRn{i}", "发错了", mid))).status == 200
    await settle(hub_a)
    async with hub_a.db.read() as conn:
        rows = (await conn.execute(text("SELECT dedup_key, recalled_at FROM messages WHERE peer_id LIKE 'wmRn%' "
                                        "AND kind = 'text'"))).all()
    assert len(rows) == n
    assert [r.dedup_key for r in rows if r.recalled_at is None] == []


async def customer_of(hub, peer: str) -> int:  # noqa: ANN001
    async with hub.db.read() as conn:
        return (await conn.execute(text("SELECT customer_id FROM conversations WHERE peer_id = :p"), {"p": peer})).scalar()


async def tag_names(hub, customer_id: int) -> list[str]:  # noqa: ANN001
    async with hub.db.read() as conn:
        return list((await conn.execute(text("SELECT t.name FROM customer_tags ct JOIN tags t ON t.id = ct.tag_id "
                                             "WHERE ct.customer_id = :c"), {"c": customer_id})).scalars())


async def test_a_merge_or_its_undo_on_one_process_is_followed_by_the_others_jobs(two_hubs):
    """B cached which customer the conversation is; A merged it into another (and then undid that):
    B's jobs went on writing keyword tags and the last contact to the customer the conversation had
    left (the surviving profile never showed 过敏)."""
    from hub.config_bus import CONFIG_BUS
    from tests.conftest import OA
    from tests.helpers import wait_for
    a, b = two_hubs
    hub_a, hub_b = a.server.app[HUB], b.server.app[HUB]
    await hub_a.pipeline.stop()  # B runs every job
    await hub_b.settings.set("keyword_tags", {"过敏": "过敏", "母婴": "母婴"})
    sim = PlatformSim("oa", OA["id"], OA["token"], OA["encoding_aes_key"], OA["receive_id"])
    for i, peer in enumerate(("oMergeX", "oMergeY")):
        assert (await post(b, sim, text_xml(OA["receive_id"], peer, "你好", 41 + i))).status == 200
    await settle(hub_b)
    x, y = await customer_of(hub_b, "oMergeX"), await customer_of(hub_b, "oMergeY")
    heard = b.server.app[CONFIG_BUS].received
    merged = await hub_a.customers.merge("user:1", x, y, "same person")
    assert (await post(b, sim, text_xml(OA["receive_id"], "oMergeX", "我过敏了", 43))).status == 200
    await settle(hub_b)
    assert "过敏" in await tag_names(hub_b, y) and await tag_names(hub_b, x) == []
    await wait_for(lambda: b.server.app[CONFIG_BUS].received > heard)  # (the merge's announcement came)
    heard = b.server.app[CONFIG_BUS].received
    await hub_a.customers.unmerge("user:1", merged["merge_id"])
    await wait_for(lambda: b.server.app[CONFIG_BUS].received > heard)
    assert (await post(b, sim, text_xml(OA["receive_id"], "oMergeX", "母婴能用吗", 44))).status == 200
    await settle(hub_b)
    assert "母婴" in await tag_names(hub_b, x) and "母婴" not in await tag_names(hub_b, y)
