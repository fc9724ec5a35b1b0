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


async def test_update_of_a_keyword_rule_deleted_meanwhile_is_a_404(aiohttp_client, hub_config):
    """The same for a keyword rule: the update touched no row and answered 200 with the rule as if saved
    (and the audit log recorded an update of a rule that no longer existed)."""
    from bots.store import KeywordRules
    clock = FakeClock(1_732_500_000.0)
    client = await aiohttp_client(create_app(hub_config, clock))
    rules = client.server.app[HUB].keywords
    rule = await rules.create({"pattern": "退款", "reply": {"type": "text", "text": "七天无理由"}})
    other = KeywordRules(rules.db, clock)  # another hub process
    real_list = rules.list

    async def read_then_deleted_elsewhere() -> list:
        current = await real_list()
        if any(r["id"] == rule["id"] for r in await other.list()):
            await other.delete(rule["id"])
        return current

    rules.list = read_then_deleted_elsewhere
    with pytest.raises(HubError) as err:
        await rules.update(rule["id"], {"priority": 5})
    rules.list = real_list
    assert (err.value.status, err.value.code) == (404, "unknown_rule")
    assert await rules.list() == []
