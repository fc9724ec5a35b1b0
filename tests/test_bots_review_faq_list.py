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
