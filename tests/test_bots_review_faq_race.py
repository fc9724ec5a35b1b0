"""An FAQ deleted (by another admin, or another hub process) between the edit's read of it and its
write: the update touched no row, read None back and failed on it, a 500; it is a 404 now."""
from __future__ import annotations

import pytest

from hub.app import HUB, create_app
from hub.clock import FakeClock
from hub.errors import HubError
from hub.knowledge.store import KnowledgeBase


async def test_update_of_an_faq_deleted_meanwhile_is_a_404(aiohttp_client, hub_config):
    clock = FakeClock(1_732_500_000.0)
    client = await aiohttp_client(create_app(hub_config, clock))
    kb = client.server.app[HUB].kb
    faq = await kb.create({"question": "包邮吗", "answer": "全国包邮"})
    other = KnowledgeBase(kb.db, clock)  # another hub process
    await other.load()
    real_get = kb.get

    async def read_then_deleted_elsewhere(faq_id: int) -> dict:
        current = await real_get(faq_id)
        await other.delete(faq_id)
        return current

    kb.get = read_then_deleted_elsewhere
    with pytest.raises(HubError) as err:
        await kb.update(faq["id"], {"answer": "满99包邮"})
    kb.get = real_get
    assert (err.value.status, err.value.code) == (404, "unknown_faq")
    await kb.refresh_if_changed(every=0.0)
    assert kb.match("包邮吗") == [] and len(kb.matcher) == 0
