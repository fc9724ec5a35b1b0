"""FAQ text the database cannot hold (a NUL, which PostgreSQL refuses; a lone surrogate, half an
emoji, which has no UTF-8) is a 400 naming the field, or a rejected import line: never a 500."""
from __future__ import annotations

import json

import pytest

from hub.app import create_app
from hub.clock import FakeClock
from tests.conftest import auth


@pytest.fixture
async def client(aiohttp_client, hub_config):
    return await aiohttp_client(create_app(hub_config, FakeClock(1_732_500_000.0)))


def raw_json(obj: object) -> str:
    return json.dumps(obj)  # ensure_ascii: a lone surrogate goes out as the JSON escape "\ud83d"


@pytest.mark.parametrize("field, value", [
    ("question", "发票\u0000怎么开"), ("question", "发票\ud83d"), ("answer", "下单备注\u0000"),
    ("answer", "好的\ud83d"), ("similar", ["开发票\u0000"]), ("similar", "要发票\ud83d|开票"),
    ("category", "售后\u0000"),
])
async def test_unstorable_faq_text_is_a_400(client, field, value):
    faq = {"question": "发票怎么开", "answer": "下单时备注抬头即可", field: value}
    resp = await client.post("/api/faq", data=raw_json(faq), headers={**auth(), "Content-Type": "application/json"})
    assert resp.status == 400, await resp.text()
    body = await resp.json()
    assert body["error"] == f"invalid_{field}" and body["field"] == field
    created = await client.post("/api/faq", json={"question": "发票怎么开", "answer": "下单时备注抬头即可"},
                                headers=auth())
    assert created.status == 201
    resp = await client.put(f"/api/faq/{(await created.json())['id']}", data=raw_json({field: value}),
                            headers={**auth(), "Content-Type": "application/json"})
    assert resp.status == 400 and (await resp.json())["field"] == field


async def test_import_rejects_the_unstorable_item_and_imports_the_rest(client):
    items = [{"question": "包邮吗", "answer": "全国包邮"}, {"question": "发票\u0000", "answer": "x"},
             {"question": "几天到", "answer": "三天\ud83d"}, {"question": "能退吗", "answer": "七天无理由"}]
    resp = await client.post("/api/faq/import?format=json", data=raw_json(items),
                             headers={**auth(), "Content-Type": "application/json"})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["imported"] == 2
    assert [(r["line"], r["field"]) for r in body["rejected"]] == [(2, "question"), (3, "answer")]
    faqs = (await (await client.get("/api/faq", headers=auth())).json())["faqs"]
    assert [f["question"] for f in faqs] == ["包邮吗", "能退吗"]
