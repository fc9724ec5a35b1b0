"""Keyword rules the keyword_rules table cannot hold (a name over its 128 characters, an account or
channel over 64, a NUL PostgreSQL refuses, half an emoji) are a 400 naming the field: never a 500."""
from __future__ import annotations

import json

import pytest

from hub.app import create_app
from hub.clock import FakeClock
from tests.conftest import auth

RULE = {"name": "退款", "match_type": "contains", "pattern": "退款", "reply": {"type": "text", "text": "七天无理由"}}


@pytest.fixture
async def client(aiohttp_client, hub_config):
    return await aiohttp_client(create_app(hub_config, FakeClock(1_732_500_000.0)))


async def send(client, method: str, url: str, body: dict):  # noqa: ANN201
    return await client.request(method, url, data=json.dumps(body),  # a lone surrogate as "\ud83d"
                                headers={**auth(), "Content-Type": "application/json"})


@pytest.mark.parametrize("change, field", [
    ({"name": "退" * 129}, "name"), ({"account_id": "a" * 65}, "account_id"), ({"channel": "c" * 65}, "channel"),
    ({"pattern": "退\u0000款"}, "pattern"), ({"name": "退款\ud83d"}, "name"),
    ({"reply": {"type": "text", "text": "好的\u0000"}}, "reply"),
    ({"reply": {"type": "text", "text": "好的\ud83d"}}, "reply"),
])
async def test_unstorable_rule_is_a_400_naming_the_field(client, change, field):
    resp = await send(client, "POST", "/api/keyword-rules", {**RULE, **change})
    assert resp.status == 400, await resp.text()
    body = await resp.json()
    assert body["error"] == "invalid_rule" and body["field"] == field
    created = await send(client, "POST", "/api/keyword-rules", RULE)
    assert created.status == 201
    resp = await send(client, "PUT", f"/api/keyword-rules/{(await created.json())['id']}", change)
    assert resp.status == 400 and (await resp.json())["field"] == field
    rules = (await (await client.get("/api/keyword-rules", headers=auth())).json())["rules"]
    assert [r["name"] for r in rules] == ["退款"]


async def test_longest_storable_values_are_saved(client):
    resp = await send(client, "POST", "/api/keyword-rules",
                      {**RULE, "name": "退" * 128, "account_id": "a" * 64, "channel": "c" * 64})
    assert resp.status == 201, await resp.text()
