"""The FAQ list's filters with a NUL (``?q=%00``) were a 500 on PostgreSQL (it cannot compare text
with a NUL): a 400 naming the parameter now."""
from __future__ import annotations

import pytest

from hub.app import create_app
from hub.clock import FakeClock
from tests.conftest import auth


@pytest.mark.parametrize("key", ["q", "category"])
async def test_faq_filter_with_a_nul_is_a_400(aiohttp_client, hub_config, key):
    client = await aiohttp_client(create_app(hub_config, FakeClock(1_732_500_000.0)))
    assert (await client.post("/api/faq", json={"question": "包邮吗", "answer": "全国包邮", "category": "物流"},
                              headers=auth())).status == 201
    assert len((await (await client.get(f"/api/faq?{key}=包邮" if key == "q" else "/api/faq?category=物流",
                                        headers=auth())).json())["faqs"]) == 1
    resp = await client.get(f"/api/faq?{key}=%E5%8C%85%00", headers=auth())
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["field"] == key


async def test_faq_search_takes_percent_and_underscore_as_they_are(aiohttp_client, hub_config):
    """``?q=100%`` listed every FAQ with 100 in it: the % (and _) went into the LIKE pattern as wildcards."""
    client = await aiohttp_client(create_app(hub_config, FakeClock(1_732_500_000.0)))
    for question, answer in (("满100减20怎么用", "结算时自动减。"), ("面料是100%纯棉吗", "是的，100%纯棉。"),
                             ("型号A_1有货吗", "有货。"), ("型号AB1有货吗", "暂时缺货。")):
        assert (await client.post("/api/faq", json={"question": question, "answer": answer},
                                  headers=auth())).status == 201

    async def found(q: str) -> list[str]:
        resp = await client.get("/api/faq", params={"q": q}, headers=auth())
        return [f["question"] for f in (await resp.json())["faqs"]]

    assert await found("100%") == ["面料是100%纯棉吗"]
    assert await found("A_1") == ["型号A_1有货吗"]
    assert await found("100") == ["满100减20怎么用", "面料是100%纯棉吗"]
