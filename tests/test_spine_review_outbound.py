"""Outbound input found by review: what a caller sends is refused with a 400 or stored, never a 500."""
from __future__ import annotations

from tests.conftest import auth
from tests.helpers import messages
from tests.test_outbound import setup


async def test_a_long_client_id_is_queued_once_not_a_500(aiohttp_client, hub_config, standin):
    """The client_id becomes the message's dedup key (160 characters in the archive): a longer one
    made PostgreSQL refuse the row (a 500), and the reply was lost. It is made to fit, like an
    inbound key, and a retry with the same id still finds the first."""
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    client_id = "c" * 300
    ids = []
    for _ in range(2):
        resp = await client.post(f"/api/conversations/{conv}/messages", json={"text": "您好", "client_id": client_id},
                                 headers=auth())
        assert resp.status == 202, await resp.text()
        ids.append((await resp.json())["message_id"])
    assert ids[0] is not None and ids[1] is None
    assert len(await messages(hub, direction="out")) == 1
    other = await client.post(f"/api/conversations/{conv}/messages", json={"text": "再见", "client_id": "c" * 299 + "d"},
                              headers=auth())
    assert other.status == 202 and (await other.json())["message_id"] is not None
    await hub.outbound.drain()
    assert [s["body"]["text"]["content"] for s in standin.sent] == ["您好", "再见"]


async def test_a_text_with_a_nul_or_a_lone_surrogate_is_a_400_not_a_500(aiohttp_client, hub_config, standin):
    """A NUL ("\\u0000" in the JSON), which PostgreSQL cannot store, and a lone surrogate (an emoji
    cut in half, "\\ud83d"), which is not UTF-8 at all (the byte-limit check raised), were each a
    500. They are refused as invalid_text, like any text the channel cannot take; nothing is queued."""
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    for text in ("您好\u0000", "您好\ud83d"):
        resp = await client.post(f"/api/conversations/{conv}/messages", json={"text": text}, headers=auth())
        assert resp.status == 400, await resp.text()
        assert (await resp.json())["error"] == "invalid_text"
    assert await messages(hub, direction="out") == []


async def test_a_message_queued_through_the_api_is_committed_durably(aiohttp_client, hub_config, standin, monkeypatch):
    """The 202 of POST /api/conversations/{id}/messages tells the caller the message is queued, yet its
    archive and outbox rows were committed like derived state (SQLite synchronous=NORMAL, PostgreSQL
    synchronous_commit=off): a power loss (or a PostgreSQL crash) right after it lost the message,
    and no job re-run queues it again. Only an agent's reply was durable."""
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    seen: list[bool] = []

    class Watched:  # the outbound queue's database, its writes watched (nobody else's)
        def __init__(self, db):  # noqa: ANN001
            self._db = db

        def __getattr__(self, name: str):  # noqa: ANN204
            return getattr(self._db, name)

        def write(self, durable: bool = False):  # noqa: ANN202
            seen.append(durable)
            return self._db.write(durable)

    monkeypatch.setattr(hub.outbound, "db", Watched(hub.db))
    resp = await client.post(f"/api/conversations/{conv}/messages", json={"text": "您好"}, headers=auth())
    assert resp.status == 202, await resp.text()
    assert seen == [True]
    await hub.outbound.drain()
    assert [s["body"]["text"]["content"] for s in standin.sent] == ["您好"]
