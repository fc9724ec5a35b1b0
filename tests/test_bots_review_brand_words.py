"""Brand words changed by another hub process: a word taken out and another put in left the count of
brand words as it was, and the count was all the FAQ version looked at, so this process never
reloaded: the new word stayed cut in pieces here, and the old one whole."""
from __future__ import annotations

import pytest

from hub.app import HUB, create_app
from hub.clock import FakeClock
from hub.knowledge.store import KnowledgeBase


@pytest.fixture
async def hub(aiohttp_client, hub_config):
    clock = FakeClock(1_732_500_000.0)
    client = await aiohttp_client(create_app(hub_config, clock))
    return client.server.app[HUB], clock


async def test_a_word_swapped_by_another_process_is_loaded(hub):
    hub, clock = hub
    kb = hub.kb
    await kb.add_words(["珂润斯"])
    await kb.create({"question": "悦木之源怎么用", "answer": "早晚各一次，洁面后使用。"})
    other = KnowledgeBase(hub.db, clock)  # another hub process on the same database
    await other.load()
    assert kb.tokenizer.tokens("珂润斯怎么用")[0] == "珂润斯"
    clock.advance(5)
    await other.remove_words(["珂润斯"])
    clock.advance(5)
    await other.add_words(["悦木之源"])
    await kb.refresh_if_changed(every=0.0)  # what the config bus's FAQ message does
    assert kb.tokenizer.tokens("悦木之源怎么用")[0] == "悦木之源"
    assert kb.tokenizer.tokens("珂润斯怎么用")[0] != "珂润斯"
    assert kb.matcher.match("悦木之源") and kb.matcher.match("悦木之源")[0].question == "悦木之源怎么用"


@pytest.mark.parametrize("word", ["珂润\u0000斯", "珂润斯\ud83d"])
async def test_a_word_the_table_cannot_hold_is_a_400(aiohttp_client, hub_config, word):
    """A NUL (PostgreSQL refuses it) or a lone surrogate (half an emoji) in a brand word was a 500."""
    import json

    from tests.conftest import auth
    client = await aiohttp_client(create_app(hub_config, FakeClock(1_732_500_000.0)))
    resp = await client.post("/api/brand-words", data=json.dumps({"words": ["悦木之源", word]}),
                             headers={**auth(), "Content-Type": "application/json"})
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["field"] == "words"
    assert (await (await client.get("/api/brand-words", headers=auth())).json())["words"] == []
